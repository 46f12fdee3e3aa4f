/* The analysis record shared by the analysis passes (analyze*.c): work, dependencies, memory,
 * and the DOT writer. */
#ifndef PO_GRAPH_ANALYZE_INTERNAL_H
#define PO_GRAPH_ANALYZE_INTERNAL_H

#include "graph/node.h"
#include "paropt/analyze.h"

struct po_analysis {
    const po_graph *g;
    int n; /* nodes */
    po_node_info *nodes;
    po_dep *deps; /* sorted by (to, from) */
    int n_deps;
    int *pred_start;        /* n + 1: node i's predecessors are deps[pred_start[i] .. pred_start[i + 1]) */
    int *succ_start, *succ; /* n + 1 and n_deps: successors of i are succ[succ_start[i] .. succ_start[i + 1]) */
    int n_levels;
    int *level_start;      /* n_levels + 1 */
    int *level_nodes;      /* n: node ids grouped by level, ascending within one */
    int *path, n_path;     /* critical path, in execution order */
    po_layer_info *layers; /* po_graph_n_layers + 1; [0] is "(none)", layer i is [i + 1] */
    po_totals totals;
};

static inline po_layer_info *po__analysis_layer_of(po_analysis *a, const po_node *n) {
    return &a->layers[n->layer + 1];
}

/* Bytes po_params gives a parameter of numel floats in each of its buffers (values, gradients,
 * and per optimizer-state slot): rounded up to 16 floats, as src/train/params.c lays them out
 * (tests compare the totals with po_params_allocated_bytes). */
static inline size_t po__param_padded_bytes(int64_t numel) { return ((size_t)numel + 15) / 16 * 16 * sizeof(float); }

/* The passes, in this order; each fills its part of a (allocated by po_analysis_new). */
void po__analyze_work(po_analysis *a);
po_status po__analyze_deps(po_analysis *a);
po_status po__analyze_memory(po_analysis *a);

#endif

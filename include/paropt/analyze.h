/* Graph analysis: the work each node does, what it waits for, and the memory a step needs.
 *
 * po_node_cost gives one node's work. po_analysis looks at a whole graph — usually the full
 * training step (forward, po_graph_backward, po_graph_add_optimizer) — and gives, per node,
 * per layer and in total: FLOPs, bytes moved, arithmetic intensity, parameter and output bytes;
 * the dependency graph with topological levels, the critical path by FLOPs and which nodes may
 * run concurrently; and the memory of one step, computed from the same buffer plan
 * (src/graph/memplan.c) the CPU executor allocates from, so that the estimate and the
 * allocation are one computation.
 *
 * Units: FLOPs are floating-point operations (a multiply-add counts 2; see each op's cost in
 * src/ops/ and the README's legend for what element-wise ops count); bytes are bytes;
 * intensity is FLOPs per byte moved (read + written). */
#ifndef PAROPT_ANALYZE_H
#define PAROPT_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "paropt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_cost {
    double flops;         /* floating-point operations; a multiply-add counts 2 */
    double bytes_read;    /* bytes of inputs (and saved state) the kernel reads */
    double bytes_written; /* bytes of outputs (and saved state) it writes */
} po_cost;

/* Work of one node; all zero for nodes that compute nothing (inputs, parameters, views). */
po_cost po_node_cost(const po_node *n);

/* --- whole-graph analysis ------------------------------------------------------------------ */

typedef struct po_analysis po_analysis;

/* Analyses g as it stands. g must stay unchanged and outlive the analysis (records point at
 * its nodes). Fails (PO_ERR_INVALID_ARG) on a graph holding an error, PO_ERR_NO_MEMORY when
 * out of memory. Free with po_analysis_free (NULL is fine). */
po_status po_analysis_new(const po_graph *g, po_analysis **out);
void po_analysis_free(po_analysis *a);

const po_graph *po_analysis_graph(const po_analysis *a);

/* One node of the graph. */
typedef struct po_node_info {
    const po_node *node;  /* the node (po_node_op, po_node_phase, po_node_layer, shape...) */
    double flops;         /* po_node_cost(node).flops */
    double bytes_read;    /* po_node_cost(node).bytes_read */
    double bytes_written; /* po_node_cost(node).bytes_written */
    double intensity;     /* flops / (bytes_read + bytes_written); 0 when no bytes move */
    size_t param_bytes;   /* parameter values the node reads (inputs that are parameters or views of
                           * one); a parameter node: its own size. Exact, no padding */
    size_t output_bytes;  /* bytes of the tensor it produces; 0 for views (they alias another
                           * node's output) */
    size_t arena_bytes;   /* bytes it holds in the executor's arena: its output and its saved
                           * state (aux), each rounded up to 64 bytes as the plan places them; 0
                           * when both live elsewhere (inputs, parameters, gradients, views,
                           * optimizer state) */
    size_t scratch_bytes; /* temporary space while its kernel runs (one buffer shared by all) */
    int live_until;       /* id of the last node reading its arena buffers; po_graph_size(g) when
                           * kept after the run; its own id when it has none or nobody reads them */
    int level;            /* 0 without predecessors, else 1 + the largest level of its predecessors */
    double flops_to;      /* FLOPs of the heaviest dependency path ending at this node (inclusive) */
    double flops_from;    /* FLOPs of the heaviest dependency path starting at it (inclusive) */
    double slack;         /* critical-path FLOPs minus the heaviest path through this node: the
                           * work by which it could be delayed; 0 on a critical path */
    bool critical;        /* on the critical path reported by po_analysis_critical_path */
} po_node_info;

/* Record of node id (0 <= id < po_graph_size), else NULL. */
const po_node_info *po_analysis_node(const po_analysis *a, int id);

/* A dependency: `to` must run after `from`. DATA: `to` reads `from`'s output. WAR (write after
 * read): `from` reads a parameter that `to` (an optimizer update) overwrites in place, so the
 * update must wait for every reader. Edges always go from a lower id to a higher one. */
typedef enum { PO_DEP_DATA, PO_DEP_WAR } po_dep_kind;
typedef struct po_dep {
    int from, to;
    po_dep_kind kind;
} po_dep;

int po_analysis_n_deps(const po_analysis *a);
/* Dependency i (0 <= i < po_analysis_n_deps), ordered by `to` then `from`; NULL out of range.
 * A node reading the same tensor twice has one edge. */
const po_dep *po_analysis_dep(const po_analysis *a, int i);

/* Topological levels: every node of a level depends only on nodes of lower levels, so the nodes
 * of one level never depend on each other and may all run concurrently. (As far as the data
 * goes: the executor's buffer plan lets buffers share bytes when their lifetimes do not overlap
 * in the graph's sequential order, so a concurrent schedule needs a plan of its own.) */
int po_analysis_n_levels(const po_analysis *a);
/* Node ids of `level` (ascending) in *ids (owned by a); returns their count, 0 out of range. */
int po_analysis_level(const po_analysis *a, int level, const int **ids);

/* True when neither node depends, directly or through others, on the other: they may run at
 * the same time (nodes of different levels may too). False for i == j or an id out of range.
 * Cost: a search over the nodes between them. */
bool po_analysis_may_overlap(const po_analysis *a, int i, int j);

/* The critical path: the dependency chain with the most FLOPs, from a node without
 * predecessors to one without successors (among equally heavy predecessors a node's first input
 * is taken, else the higher id). Sets *ids to its node ids in execution order (owned by a;
 * zero-work nodes such as views included) and returns their count; *flops (may be NULL) gets its
 * FLOPs: the least work any schedule must run one node after another. */
int po_analysis_critical_path(const po_analysis *a, const int **ids, double *flops);

/* Totals of a group of nodes: a layer, or the nodes outside every layer. Parameter memory is
 * what po_params allocates for the group's parameters: each parameter padded to 16 floats, so
 * the layers' figures add up to the buffers' sizes. */
typedef struct po_layer_info {
    const char *name;         /* po_graph_layer_name; "(none)" for nodes outside every layer */
    int n_nodes;              /* nodes of every phase */
    int64_t params;           /* parameter elements (parameter nodes of this layer) */
    size_t param_bytes;       /* their values, padded */
    size_t grad_bytes;        /* their gradients, padded */
    size_t optim_state_bytes; /* their optimizer state (momentum, Adam moments), padded */
    double flops_forward;     /* FLOPs of its PO_PHASE_FORWARD nodes */
    double flops_backward;    /* ... PO_PHASE_BACKWARD */
    double flops_optimizer;   /* ... PO_PHASE_OPTIMIZER */
    double bytes_moved;       /* bytes read + written by its nodes, every phase */
    double intensity;         /* (all its FLOPs) / bytes_moved; 0 when nothing moves */
    size_t activation_bytes;  /* arena bytes of its nodes' buffers (outputs and saved state)
                               * live at the step's peak (po_totals.peak_node) */
} po_layer_info;

/* Layer `layer` (0 <= layer < po_graph_n_layers), or with -1 the nodes outside every layer
 * (graph inputs, usually); NULL otherwise. */
const po_layer_info *po_analysis_layer(const po_analysis *a, int layer);

/* Totals of the whole graph. Memory is what one training step holds:
 *   peak_memory_bytes = param_bytes + grad_bytes + optim_state_bytes   (po_params' buffers)
 *                     + input_bytes + arena_bytes + scratch_bytes       (the executor's buffers)
 * which is exactly what po_params_allocated_bytes + po_exec_allocated_bytes report for this
 * graph: everything is allocated once, before the first run, and nothing during a run.
 * arena_bytes is the packing of the buffer plan; live_peak_bytes is the most the buffers live
 * at one moment hold together (arena_bytes - live_peak_bytes is the plan's fragmentation), and
 * peak_live_memory_bytes the total with live_peak_bytes in place of arena_bytes, what a perfect
 * packing would need. */
typedef struct po_totals {
    int n_nodes;
    int n_deps;
    double flops_forward, flops_backward, flops_optimizer; /* by po_node_phase */
    double flops;                                          /* their sum: one training step */
    double bytes_moved;                                    /* read + written, every node */
    int64_t params;                                        /* parameter elements */
    size_t param_bytes;            /* po_params' values buffer (16-float padding per parameter included) */
    size_t grad_bytes;             /* its gradients buffer (same size) */
    size_t optim_state_bytes;      /* its optimizer-state buffer (0, 1 or 2 floats per value float) */
    size_t input_bytes;            /* the executor's input buffers, one per input node */
    size_t arena_bytes;            /* the executor's arena for every intermediate buffer */
    size_t scratch_bytes;          /* the executor's shared kernel scratch (largest need of any node) */
    size_t live_peak_bytes;        /* largest sum of arena buffers live at one node's execution */
    int peak_node;                 /* the first node at which that sum is reached (-1: no arena buffer) */
    size_t peak_memory_bytes;      /* see above: what po_params and the executor allocate */
    size_t peak_live_memory_bytes; /* the same with live_peak_bytes instead of arena_bytes */
    int n_levels;                  /* po_analysis_n_levels */
    int max_level_width;           /* nodes on the widest level */
    double critical_path_flops;    /* FLOPs of the critical path */
} po_totals;

const po_totals *po_analysis_totals(const po_analysis *a);

/* Writes a Graphviz (DOT) drawing of the graph to f: one cluster per layer (labelled with its
 * name), one box per node labelled with its op, shape and FLOPs, filled by arithmetic
 * intensity on a log scale (blue 0.1 FLOP/byte or less, memory-bound, through green and yellow
 * to red, 100 FLOP/byte or more, compute-bound; grey for nodes that move no bytes), wider as
 * FLOPs grow (log scale), the critical path outlined in red, data dependencies as solid arrows
 * and write-after-read ones dashed; a legend explains it. `title` (may be NULL) labels the
 * drawing. Names are escaped, so the output is valid for `dot -Tsvg`. PO_ERR_IO when writing
 * fails. */
po_status po_analysis_write_dot(const po_analysis *a, const char *title, FILE *f);

/* Fill colour of an intensity on the drawing's scale, as Graphviz "H S V" text in buf (at
 * least 32 bytes); returns buf. */
const char *po_analysis_intensity_color(double intensity, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif

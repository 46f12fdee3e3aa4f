/* po_analysis: allocation, the order of the passes, and the accessors. */
#include <stdlib.h>

#include "graph/analyze_internal.h"

void po_analysis_free(po_analysis *a) {
    if (!a) return;
    free(a->nodes);
    free(a->deps);
    free(a->pred_start);
    free(a->succ_start);
    free(a->succ);
    free(a->level_start);
    free(a->level_nodes);
    free(a->path);
    free(a->layers);
    free(a);
}

po_status po_analysis_new(const po_graph *g, po_analysis **out) {
    *out = NULL;
    if (!g) return po_fail(PO_ERR_INVALID_ARG, "analysis: no graph");
    if (g->status) return po_fail(PO_ERR_INVALID_ARG, "analysis: the graph holds an error: %s", g->error);
    po_analysis *a = calloc(1, sizeof *a);
    if (!a) return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing the graph");
    a->g = g;
    a->n = g->n_nodes;
    size_t n1 = (size_t)a->n + 1;
    a->nodes = calloc(n1, sizeof *a->nodes);
    a->layers = calloc((size_t)g->n_layers + 1, sizeof *a->layers);
    if (!a->nodes || !a->layers) {
        po_analysis_free(a);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing the graph");
    }
    po__analyze_work(a);
    po_status st = po__analyze_deps(a);
    if (!st) st = po__analyze_memory(a);
    if (st) {
        po_analysis_free(a);
        return st;
    }
    *out = a;
    return PO_OK;
}

const po_graph *po_analysis_graph(const po_analysis *a) { return a->g; }

const po_node_info *po_analysis_node(const po_analysis *a, int id) {
    return id >= 0 && id < a->n ? &a->nodes[id] : NULL;
}

int po_analysis_n_deps(const po_analysis *a) { return a->n_deps; }
const po_dep *po_analysis_dep(const po_analysis *a, int i) { return i >= 0 && i < a->n_deps ? &a->deps[i] : NULL; }

int po_analysis_n_levels(const po_analysis *a) { return a->n_levels; }

int po_analysis_level(const po_analysis *a, int level, const int **ids) {
    if (level < 0 || level >= a->n_levels) {
        *ids = NULL;
        return 0;
    }
    *ids = a->level_nodes + a->level_start[level];
    return a->level_start[level + 1] - a->level_start[level];
}

int po_analysis_critical_path(const po_analysis *a, const int **ids, double *flops) {
    *ids = a->path;
    if (flops) *flops = a->totals.critical_path_flops;
    return a->n_path;
}

const po_layer_info *po_analysis_layer(const po_analysis *a, int layer) {
    return layer >= -1 && layer < a->g->n_layers ? &a->layers[layer + 1] : NULL;
}

const po_totals *po_analysis_totals(const po_analysis *a) { return &a->totals; }

/* The optimizer's updates shared out among threads by element (runtime/optim_split.h). */
#include "runtime/optim_split.h"

#include <math.h>
#include <stdlib.h>

#include "runtime/exec_internal.h"

int po__optim_split(const int *ids, const int64_t *sizes, const bool *divisible, int n, const double *shares,
                    int n_members, po__opt_piece *out, int *first) {
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += sizes[i];
    double sum = 0.0;
    for (int k = 0; k < n_members; k++)
        sum += shares[k] > 0.0 ? shares[k] : 0.0;
    int pieces = 0;
    int64_t lo = 0; /* the current member's stretch starts here */
    double cum = 0.0;
    for (int k = 0; k < n_members; k++) {
        cum += sum > 0.0 ? (shares[k] > 0.0 ? shares[k] : 0.0) / sum : 1.0 / n_members;
        int64_t hi = k == n_members - 1 ? total : llround(cum * (double)total);
        if (hi < lo) hi = lo;
        if (hi > total) hi = total;
        /* Move the boundary to a 16-element step of the node it falls in (or to an end). */
        for (int64_t start = 0, j = 0; j < n && k < n_members - 1; start += sizes[j], j++) {
            if (hi <= start || hi >= start + sizes[j]) continue;
            int64_t o = hi - start;
            o = divisible[j] ? (o + 8) / 16 * 16 : (2 * o < sizes[j] ? 0 : sizes[j]);
            if (o > sizes[j]) o = sizes[j];
            hi = start + o < lo ? lo : start + o;
            break;
        }
        first[k] = pieces;
        for (int64_t start = 0, j = 0; j < n; start += sizes[j], j++) {
            int64_t b = lo > start ? lo : start, e = hi < start + sizes[j] ? hi : start + sizes[j];
            if (b < e) out[pieces++] = (po__opt_piece){ids[j], b - start, e - start};
        }
        lo = hi;
    }
    first[n_members] = pieces;
    return pieces;
}

po_status po__optim_split_exec(const po_exec *ex, const int *nodes, int n_nodes, const double *shares, int n_members,
                               po__opt_piece **pieces, int **first) {
    const po_graph *g = po_exec_graph(ex);
    int n = po_graph_size(g), count = 0;
    int *ids = calloc((size_t)n + 1, sizeof *ids);
    int64_t *sizes = calloc((size_t)n + 1, sizeof *sizes);
    bool *divisible = calloc((size_t)n + 1, sizeof *divisible);
    *pieces = calloc((size_t)(n + n_members), sizeof **pieces);
    *first = calloc((size_t)n_members + 1, sizeof **first);
    po_status st = ids && sizes && divisible && *pieces && *first ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int j = 0; !st && j < (nodes ? n_nodes : n); j++) {
        int i = nodes ? nodes[j] : j;
        const po_node *node = po_graph_node(g, i);
        if (po_node_phase(node) != PO_PHASE_OPTIMIZER) continue;
        po_shape sh = po_node_shape(node);
        ids[count] = i;
        sizes[count] = po_shape_numel(&sh);
        divisible[count++] = po__exec_has_range(ex, i);
    }
    if (!st) po__optim_split(ids, sizes, divisible, count, shares, n_members, *pieces, *first);
    if (st) {
        free(*pieces), free(*first);
        *pieces = NULL;
        *first = NULL;
    }
    free(ids), free(sizes), free(divisible);
    return st;
}

po_status po__optim_apply(po_exec *ex, const po__opt_piece *pieces, const int *first, int k) {
    for (int p = first[k]; p < first[k + 1]; p++) {
        po_status st = po__exec_has_range(ex, pieces[p].node)
                           ? po__exec_run_range(ex, pieces[p].node, pieces[p].begin, pieces[p].end)
                           : po_exec_run_nodes(ex, &pieces[p].node, 1);
        if (st) return st;
    }
    return PO_OK;
}

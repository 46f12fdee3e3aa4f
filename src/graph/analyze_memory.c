/* Analysis pass 3: the memory of one run, from the executor's own buffer plan (po_memplan).
 *
 * A planned buffer (a node's arena output or saved state) is live from its producer through
 * its last reader, inclusive, as the plan assumes; the live bytes at node t are the sizes of
 * the buffers live at t, rounded as the plan places them. */
#include <stdlib.h>

#include "core/alloc.h"
#include "graph/analyze_internal.h"
#include "graph/memplan.h"

/* Arena bytes of node i's buffers as po_memplan_build places them. */
static size_t planned_bytes(const po_node *c) {
    size_t b = 0;
    if (c->store == PO_STORE_ARENA) b += po_align_up(po__nbytes(c));
    if (c->aux_bytes && c->aux_store == PO_AUX_ARENA) b += po_align_up(c->aux_bytes);
    return b;
}

po_status po__analyze_memory(po_analysis *a) {
    const po_graph *g = a->g;
    int n = a->n;
    po_memplan mp;
    po_status st = po_memplan_build(g, &mp);
    if (st) return st;
    /* delta[t]: bytes that become live at t minus those freed after t - 1. */
    long long *delta = calloc((size_t)n + 2, sizeof *delta);
    if (!delta) {
        po_memplan_free(&mp);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory analysing memory");
    }
    po_totals *t = &a->totals;
    for (int i = 0; i < n; i++) {
        const po_node *c = g->nodes[i];
        po_node_info *r = &a->nodes[i];
        r->arena_bytes = planned_bytes(c);
        r->live_until = r->arena_bytes ? mp.last_use[i] : i;
        if (c->store == PO_STORE_INPUT) t->input_bytes += po__nbytes(c);
        if (!r->arena_bytes) continue;
        delta[i] += (long long)r->arena_bytes;
        delta[r->live_until + 1] -= (long long)r->arena_bytes;
    }
    long long live = 0, peak = 0;
    int peak_at = -1;
    for (int i = 0; i < n; i++) {
        live += delta[i];
        if (live > peak) {
            peak = live;
            peak_at = i;
        }
    }
    free(delta);
    /* What each layer holds at that moment. */
    for (int i = 0; peak_at >= 0 && i <= peak_at; i++) {
        const po_node_info *r = &a->nodes[i];
        if (r->arena_bytes && r->live_until >= peak_at)
            po__analysis_layer_of(a, r->node)->activation_bytes += r->arena_bytes;
    }
    t->arena_bytes = mp.arena_bytes;
    t->scratch_bytes = mp.scratch_bytes;
    t->live_peak_bytes = (size_t)peak;
    t->peak_node = peak_at;
    size_t fixed = t->param_bytes + t->grad_bytes + t->optim_state_bytes + t->input_bytes + t->scratch_bytes;
    t->peak_memory_bytes = fixed + t->arena_bytes;
    t->peak_live_memory_bytes = fixed + t->live_peak_bytes;
    po_memplan_free(&mp);
    return PO_OK;
}

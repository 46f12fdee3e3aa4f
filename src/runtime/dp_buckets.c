#include "runtime/dp_buckets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "graph/node.h"

#define MIN_BUCKET_FLOATS 16384
/* Parameters start at multiples of 16 floats (po_params), so a gap of fewer than 16 floats
 * between two of them is padding: any parameter in between would make it at least 16. */
#define ALIGN_FLOATS 16

typedef struct {
    size_t begin, end;
    int cut;
} piece;

/* By cut, then from the end of the buffer (the backward pass walks the layers backwards). */
static int by_cut(const void *a, const void *b) {
    const piece *x = a, *y = b;
    if (x->cut != y->cut) return x->cut < y->cut ? -1 : 1;
    return (x->begin < y->begin) - (x->begin > y->begin);
}

po_status po__dp_buckets_plan(const po_graph *g, const po_params *p, int workers, po_dp_buckets *out) {
    memset(out, 0, sizeof *out);
    int n = g->n_nodes, np = po_params_count(p);
    int *pos = malloc((size_t)(n + 1) * sizeof *pos);
    out->bwd = malloc((size_t)(n + 1) * sizeof *out->bwd);
    piece *pc = malloc((size_t)(np + 1) * sizeof *pc);
    if (!pos || !out->bwd || !pc) {
        free(pos), free(pc);
        po__dp_buckets_free(out);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        pos[i] = -1;
        if (g->nodes[i]->phase == PO_PHASE_BACKWARD) {
            pos[i] = out->n_bwd;
            out->bwd[out->n_bwd++] = i;
        }
    }
    size_t total = po_params_total(p), pieces = 0;
    size_t target = total / (size_t)(4 * (workers > 0 ? workers : 1));
    if (target < MIN_BUCKET_FLOATS) target = MIN_BUCKET_FLOATS;
    for (int i = 0; i < np; i++) {
        const po_param_info *pi = po_params_info(p, i);
        const po_node *gr = i < g->n_params ? g->params[i]->grad : NULL;
        int cut = gr && pos[gr->id] >= 0 ? pos[gr->id] + 1 : 0;
        pieces += ((size_t)pi->numel + target - 1) / target;
        pc[i] = (piece){pi->offset, pi->offset + (size_t)pi->numel, cut};
    }
    free(pos);
    qsort(pc, (size_t)np, sizeof *pc, by_cut);
    out->b = calloc(pieces + 1, sizeof *out->b);
    if (!out->b) {
        free(pc);
        po__dp_buckets_free(out);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    /* Walk the parameters in the order they become final: a long one is cut into target-sized
     * buckets; short ones join the bucket before when they lie next to it in the buffer (at most
     * alignment padding apart), the bucket growing up or down. */
    for (int i = 0; i < np; i++) {
        size_t len = pc[i].end - pc[i].begin;
        if (!len) continue;
        po_dp_bucket *last = out->n ? &out->b[out->n - 1] : NULL;
        bool below = last && last->begin >= pc[i].end && last->begin - pc[i].end < ALIGN_FLOATS;
        bool above = last && pc[i].begin >= last->end && pc[i].begin - last->end < ALIGN_FLOATS;
        size_t span = below ? last->end - pc[i].begin : above ? pc[i].end - last->begin : 0;
        if ((below || above) && len < target && span <= target) {
            if (below) last->begin = pc[i].begin;
            if (above) last->end = pc[i].end;
            last->cut = pc[i].cut > last->cut ? pc[i].cut : last->cut;
            continue;
        }
        for (size_t e = pc[i].end; e > pc[i].begin;) {
            size_t b = e - pc[i].begin > target ? e - target : pc[i].begin;
            out->b[out->n].begin = b;
            out->b[out->n].end = e;
            out->b[out->n].cut = pc[i].cut;
            out->n++;
            e = b;
        }
    }
    free(pc);
    po__dp_buckets_reset(out);
    return PO_OK;
}

void po__dp_buckets_free(po_dp_buckets *bk) {
    free(bk->bwd);
    free(bk->b);
    memset(bk, 0, sizeof *bk);
}

void po__dp_buckets_reset(po_dp_buckets *bk) {
    for (int i = 0; i < bk->n; i++) {
        atomic_store_explicit(&bk->b[i].ready, 0, memory_order_relaxed);
        atomic_store_explicit(&bk->b[i].claimed, 0, memory_order_relaxed);
    }
}

#include "graph/memplan.h"

#include <stdlib.h>
#include <string.h>

const po_node *po__storage_root(const po_node *n) {
    while (n->store == PO_STORE_VIEW)
        n = n->view_src;
    return n;
}

typedef struct {
    size_t size;
    int first, last; /* live over node ids [first, last] */
    size_t *offset;  /* where to write the result */
} buffer;

static int by_size_desc(const void *a, const void *b) {
    const buffer *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

static int by_offset(const void *a, const void *b) {
    const buffer *x = *(buffer *const *)a, *y = *(buffer *const *)b;
    return (*x->offset > *y->offset) - (*x->offset < *y->offset);
}

void po_memplan_free(po_memplan *mp) {
    free(mp->out_offset);
    free(mp->aux_offset);
    free(mp->last_use);
    memset(mp, 0, sizeof *mp);
}

po_status po_memplan_build(const po_graph *g, po_memplan *mp) {
    memset(mp, 0, sizeof *mp);
    int n = g->n_nodes;
    mp->n_nodes = n;
    mp->out_offset = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
    mp->aux_offset = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
    mp->last_use = malloc(sizeof(int) * (size_t)(n ? n : 1));
    buffer *bufs = malloc(sizeof(buffer) * (size_t)(2 * n + 1));
    buffer **placed = malloc(sizeof(buffer *) * (size_t)(2 * n + 1));
    if (!mp->out_offset || !mp->aux_offset || !mp->last_use || !bufs || !placed) {
        free(bufs);
        free(placed);
        po_memplan_free(mp);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory planning buffers");
    }
    for (int i = 0; i < n; i++) {
        mp->out_offset[i] = mp->aux_offset[i] = PO_NO_OFFSET;
        mp->last_use[i] = g->nodes[i]->keep ? n : i;
    }
    /* A read of a view is a read of its storage root. */
    for (int i = 0; i < n; i++) {
        const po_node *c = g->nodes[i];
        if (c->store == PO_STORE_VIEW) {
            const po_node *r = po__storage_root(c);
            if (mp->last_use[r->id] < mp->last_use[c->id]) mp->last_use[r->id] = mp->last_use[c->id];
        }
        for (int k = 0; k < c->n_in; k++) {
            const po_node *r = po__storage_root(c->in[k]);
            if (mp->last_use[r->id] < i) mp->last_use[r->id] = i;
        }
        if (c->scratch_bytes > mp->scratch_bytes) mp->scratch_bytes = c->scratch_bytes;
    }
    /* Views that are kept keep their root alive; views are visited after their roots, so one
     * more pass settles chains. */
    for (int i = n - 1; i >= 0; i--) {
        const po_node *c = g->nodes[i];
        if (c->store == PO_STORE_VIEW) {
            const po_node *r = po__storage_root(c);
            if (mp->last_use[r->id] < mp->last_use[c->id]) mp->last_use[r->id] = mp->last_use[c->id];
        }
    }
    int nb = 0;
    for (int i = 0; i < n; i++) {
        const po_node *c = g->nodes[i];
        if (c->store == PO_STORE_ARENA)
            bufs[nb++] = (buffer){po_align_up(po__nbytes(c)), i, mp->last_use[i], &mp->out_offset[i]};
        if (c->aux_bytes && c->aux_store == PO_AUX_ARENA)
            bufs[nb++] = (buffer){po_align_up(c->aux_bytes), i, mp->last_use[i], &mp->aux_offset[i]};
    }
    /* Largest first, each at the lowest offset clear of every placed buffer it overlaps in
     * time: simple, and within a few percent of optimal on layer-structured graphs. */
    qsort(bufs, (size_t)nb, sizeof *bufs, by_size_desc);
    size_t total = 0;
    for (int b = 0; b < nb; b++) {
        int np = 0;
        for (int q = 0; q < b; q++)
            if (bufs[q].first <= bufs[b].last && bufs[b].first <= bufs[q].last) placed[np++] = &bufs[q];
        qsort(placed, (size_t)np, sizeof *placed, by_offset);
        size_t off = 0;
        for (int q = 0; q < np; q++) {
            size_t start = *placed[q]->offset, end = start + placed[q]->size;
            if (start >= off + bufs[b].size) break;
            if (end > off) off = end;
        }
        *bufs[b].offset = off;
        if (off + bufs[b].size > total) total = off + bufs[b].size;
    }
    mp->arena_bytes = total;
    free(bufs);
    free(placed);
    return PO_OK;
}

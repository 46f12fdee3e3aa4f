/* EMBEDDING: ids[...] (I32/I64) index rows of table[V, D] -> [..., D].
 * EMBEDDING_GRAD(gy, ids) -> [V, D]: zeros, then each gy row added to its id's row.
 * Attribute of EMBEDDING_GRAD: ai[0] = V. */
#include <string.h>

#include "ops/ops_util.h"

static int64_t id_at(const void *ids, po_dtype t, int64_t i) {
    return t == PO_I64 ? ((const int64_t *)ids)[i] : ((const int32_t *)ids)[i];
}

static po_status emb_infer(po_node *n) {
    po_status st;
    if ((st = po__want_int(n, 0)) || (st = po__want_f32(n, 1))) return st;
    const po_shape *ids = &n->in[0]->shape, *t = &n->in[1]->shape;
    if (t->ndim != 2) return po_fail(PO_ERR_SHAPE, "the table must be [V, D]");
    if (ids->ndim >= PO_MAX_DIMS) return po_fail(PO_ERR_SHAPE, "ids have too many dims");
    n->shape = *ids;
    n->shape.dim[n->shape.ndim++] = t->dim[1];
    return PO_OK;
}

static void emb_grad(po_graph *g, po_node *n, po_node *gy) {
    if (!po__wants_grad(n, 1)) return;
    int64_t ai[PO_ATTR_INTS] = {n->in[1]->shape.dim[0]};
    po_node *in[2] = {gy, n->in[0]};
    po__acc_grad(g, n->in[1], po__node_new(g, PO_OP_EMBEDDING_GRAD, 2, in, ai, NULL));
}

static void emb_cost(const po_node *n, po_op_cost *c) {
    c->bytes_read = (double)(po__nbytes(n) + po__nbytes(n->in[0]));
    c->bytes_written = (double)po__nbytes(n);
}

static po_status bad_id(int64_t id, int64_t v) {
    return po_fail(PO_ERR_RANGE, "embedding: id %lld is outside [0, %lld)", (long long)id, (long long)v);
}

static po_status emb_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t v = n->in[1]->shape.dim[0], d = n->in[1]->shape.dim[1], count = po__numel(n->in[0]);
    const float *table = a->in[1];
    float *y = a->out;
    for (int64_t i = 0; i < count; i++) {
        int64_t id = id_at(a->in[0], n->in[0]->dtype, i);
        if (id < 0 || id >= v) return bad_id(id, v);
        memcpy(y + i * d, table + id * d, (size_t)d * sizeof *y);
    }
    return PO_OK;
}

const po_op_def po_op_def_embedding = {
    .name = "embedding", .infer = emb_infer, .grad = emb_grad, .cost = emb_cost, .cpu_run = emb_run};

static po_status emb_grad_infer(po_node *n) {
    const po_shape *gy = &n->in[0]->shape;
    n->shape = PO_SHAPE(n->ai[0], gy->dim[gy->ndim - 1]);
    return PO_OK;
}

static void emb_grad_cost(const po_node *n, po_op_cost *c) {
    c->flops = (double)po__numel(n->in[0]);
    c->bytes_read = (double)(po__nbytes(n->in[0]) + po__nbytes(n->in[1]));
    c->bytes_written = (double)po__nbytes(n);
}

static po_status emb_grad_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t v = n->shape.dim[0], d = n->shape.dim[1], count = po__numel(n->in[1]);
    const float *gy = a->in[0];
    float *gt = a->out;
    memset(gt, 0, po__nbytes(n));
    for (int64_t i = 0; i < count; i++) {
        int64_t id = id_at(a->in[1], n->in[1]->dtype, i);
        if (id < 0 || id >= v) return bad_id(id, v);
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            gt[id * d + j] += gy[i * d + j];
    }
    return PO_OK;
}

const po_op_def po_op_def_embedding_grad = {
    .name = "embedding_grad", .infer = emb_grad_infer, .cost = emb_grad_cost, .cpu_run = emb_grad_run};

po_node *po_embedding(po_graph *g, po_node *ids, po_node *table) {
    po_node *in[2] = {ids, table};
    return po__node_new(g, PO_OP_EMBEDDING, 2, in, NULL, NULL);
}

/* MATMUL: batched matrix product with transpose flags.
 * Attributes: ai[0] = trans_a, ai[1] = trans_b. */
#include "backend/cpu/gemm.h"
#include "ops/ops_util.h"

typedef struct {
    int64_t batch, M, N, K;
    bool shared_b; /* b is 2-D and shared by every batch index of a */
} mm_dims;

static mm_dims dims_of(const po_node *n) {
    const po_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    bool ta = n->ai[0], tb = n->ai[1];
    mm_dims d;
    d.M = ta ? a->dim[a->ndim - 1] : a->dim[a->ndim - 2];
    d.K = ta ? a->dim[a->ndim - 2] : a->dim[a->ndim - 1];
    d.N = tb ? b->dim[b->ndim - 2] : b->dim[b->ndim - 1];
    d.batch = po__dims_product(a, 0, a->ndim - 2);
    d.shared_b = b->ndim == 2;
    return d;
}

static po_status matmul_infer(po_node *n) {
    po_status st;
    if ((st = po__want_f32(n, 0)) || (st = po__want_f32(n, 1))) return st;
    const po_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
    if (a->ndim < 2 || b->ndim < 2) return po_fail(PO_ERR_SHAPE, "operands need at least 2 dims");
    bool ta = n->ai[0], tb = n->ai[1];
    int64_t kb = tb ? b->dim[b->ndim - 1] : b->dim[b->ndim - 2];
    mm_dims d = dims_of(n);
    if (d.K != kb) return po__shape_error("inner dimensions differ", a, b);
    if (b->ndim > 2) {
        if (b->ndim != a->ndim) return po__shape_error("batch dimensions differ", a, b);
        for (int i = 0; i < a->ndim - 2; i++)
            if (a->dim[i] != b->dim[i]) return po__shape_error("batch dimensions differ", a, b);
    } else if (a->ndim > 2 && ta) {
        return po_fail(PO_ERR_UNSUPPORTED, "a transposed batched operand needs a batched b");
    }
    n->shape = *a;
    n->shape.dim[a->ndim - 2] = d.M;
    n->shape.dim[a->ndim - 1] = d.N;
    return PO_OK;
}

/* Merges all leading dims of x into rows: [..., C] -> [R, C] (a view). */
static po_node *as_rows(po_graph *g, po_node *x) {
    if (x->shape.ndim == 2) return x;
    int64_t c = x->shape.dim[x->shape.ndim - 1];
    return po_reshape(g, x, PO_SHAPE(po__numel(x) / c, c));
}

static void matmul_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *a = n->in[0], *b = n->in[1];
    bool ta = n->ai[0], tb = n->ai[1];
    if (po__wants_grad(n, 0)) {
        po_node *ga = !ta ? po_matmul(g, gy, b, false, !tb) : po_matmul(g, b, gy, tb, true);
        po__acc_grad(g, a, ga);
    }
    if (po__wants_grad(n, 1)) {
        po_node *gb;
        if (b->shape.ndim == 2 && a->shape.ndim > 2) { /* shared b: sum over a's batch */
            po_node *a2 = as_rows(g, a), *g2 = as_rows(g, gy);
            gb = !tb ? po_matmul(g, a2, g2, true, false) : po_matmul(g, g2, a2, true, false);
        } else {
            gb = !tb ? po_matmul(g, a, gy, !ta, false) : po_matmul(g, gy, a, true, ta);
        }
        po__acc_grad(g, b, gb);
    }
}

static void matmul_cost(const po_node *n, po_op_cost *c) {
    mm_dims d = dims_of(n);
    c->flops = 2.0 * (double)d.batch * (double)d.M * (double)d.N * (double)d.K;
    c->bytes_read = (double)(po__nbytes(n->in[0]) + po__nbytes(n->in[1]));
    c->bytes_written = (double)po__nbytes(n);
}

static po_status matmul_run(const po_kargs *a) {
    const po_node *n = a->node;
    mm_dims d = dims_of(n);
    bool ta = n->ai[0], tb = n->ai[1];
    const float *A = a->in[0], *B = a->in[1];
    float *C = a->out;
    int64_t lda = ta ? d.M : d.K, ldb = tb ? d.K : d.N;
    if (d.shared_b && !ta) /* one GEMM over all rows of a */
        return po__sgemm(false, tb, d.batch * d.M, d.N, d.K, 1.0f, A, lda, B, ldb, 0.0f, C, d.N);
    for (int64_t i = 0; i < d.batch; i++) {
        const float *Bi = d.shared_b ? B : B + i * d.K * d.N;
        po_status st =
            po__sgemm(ta, tb, d.M, d.N, d.K, 1.0f, A + i * d.M * d.K, lda, Bi, ldb, 0.0f, C + i * d.M * d.N, d.N);
        if (st) return st;
    }
    return PO_OK;
}

const po_op_def po_op_def_matmul = {
    .name = "matmul", .infer = matmul_infer, .grad = matmul_grad, .cost = matmul_cost, .cpu_run = matmul_run};

po_node *po_matmul(po_graph *g, po_node *a, po_node *b, bool trans_a, bool trans_b) {
    int64_t ai[PO_ATTR_INTS] = {trans_a, trans_b};
    po_node *in[2] = {a, b};
    return po__node_new(g, PO_OP_MATMUL, 2, in, ai, NULL);
}

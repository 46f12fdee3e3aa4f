/* LINEAR: y = x W^T + b, PyTorch's nn.Linear layout (W is [out, in]). Inputs: x, W[, b]. */
#include "backend/cpu/gemm.h"
#include "ops/ops_util.h"

static po_status linear_infer(po_node *n) {
    po_status st;
    for (int i = 0; i < n->n_in; i++)
        if ((st = po__want_f32(n, i))) return st;
    const po_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape;
    if (x->ndim < 1 || w->ndim != 2) return po_fail(PO_ERR_SHAPE, "linear needs x[..., in] and W[out, in]");
    if (x->dim[x->ndim - 1] != w->dim[1]) return po__shape_error("x and W disagree on in_features", x, w);
    if (n->n_in == 3) {
        const po_shape *b = &n->in[2]->shape;
        if (b->ndim != 1 || b->dim[0] != w->dim[0]) return po__shape_error("bias must be [out]", b, w);
    }
    n->shape = *x;
    n->shape.dim[x->ndim - 1] = w->dim[0];
    return PO_OK;
}

static void linear_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *x = n->in[0], *w = n->in[1];
    int64_t in = w->shape.dim[1], out = w->shape.dim[0];
    if (po__wants_grad(n, 0)) {
        /* matmul needs 2 dims: a 1-D x (allowed, as in PyTorch) goes through one [1, in] row. */
        bool row = gy->shape.ndim == 1;
        po_node *gx = po_matmul(g, row ? po_reshape(g, gy, PO_SHAPE(1, out)) : gy, w, false, false);
        po__acc_grad(g, x, row ? po_reshape(g, gx, x->shape) : gx);
    }
    if (po__wants_grad(n, 1)) {
        po_node *x2 = x->shape.ndim == 2 ? x : po_reshape(g, x, PO_SHAPE(po__numel(x) / in, in));
        po_node *g2 = gy->shape.ndim == 2 ? gy : po_reshape(g, gy, PO_SHAPE(po__numel(gy) / out, out));
        po__acc_grad(g, w, po_matmul(g, g2, x2, true, false));
    }
    if (n->n_in == 3 && po__wants_grad(n, 2)) po__acc_grad(g, n->in[2], po_sum_to(g, gy, n->in[2]->shape));
}

static void linear_cost(const po_node *n, po_op_cost *c) {
    double rows = (double)po__numel(n) / (double)n->in[1]->shape.dim[0];
    double out = (double)n->in[1]->shape.dim[0], in = (double)n->in[1]->shape.dim[1];
    c->flops = 2.0 * rows * out * in + (n->n_in == 3 ? rows * out : 0.0);
    c->bytes_read = (double)(po__nbytes(n->in[0]) + po__nbytes(n->in[1])) + (n->n_in == 3 ? out * 4.0 : 0.0);
    c->bytes_written = (double)po__nbytes(n);
}

static po_status linear_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t out = n->in[1]->shape.dim[0], in = n->in[1]->shape.dim[1];
    int64_t rows = po__numel(n) / out;
    if (n->n_in == 3)
        return po__sgemm_bias(false, true, rows, out, in, a->in[0], in, a->in[1], in, a->in[2], a->out, out);
    return po__sgemm(false, true, rows, out, in, 1.0f, a->in[0], in, a->in[1], in, 0.0f, a->out, out);
}

const po_op_def po_op_def_linear = {
    .name = "linear", .infer = linear_infer, .grad = linear_grad, .cost = linear_cost, .cpu_run = linear_run};

po_node *po_linear(po_graph *g, po_node *x, po_node *w, po_node *b) {
    po_node *in[3] = {x, w, b};
    return po__node_new(g, PO_OP_LINEAR, b ? 3 : 2, in, NULL, NULL);
}

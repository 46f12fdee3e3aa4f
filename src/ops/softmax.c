/* SOFTMAX over the last dim, and SOFTMAX_GRAD(gy, y) = y * (gy - sum(gy * y)). */
#include "core/vmath.h"
#include "ops/ops_util.h"

static po_status softmax_infer(po_node *n) {
    po_status st;
    for (int i = 0; i < n->n_in; i++)
        if ((st = po__want_f32(n, i))) return st;
    if (n->in[0]->shape.ndim < 1) return po_fail(PO_ERR_SHAPE, "softmax needs at least one dim");
    if (n->n_in == 2 && !po_shape_equal(&n->in[0]->shape, &n->in[1]->shape))
        return po__shape_error("gradient and value shapes differ", &n->in[0]->shape, &n->in[1]->shape);
    n->shape = n->in[0]->shape;
    return PO_OK;
}

static void softmax_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *in[2] = {gy, n};
    po__acc_grad(g, n->in[0], po__node_new(g, PO_OP_SOFTMAX_GRAD, 2, in, NULL, NULL));
}

static void softmax_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 14.0, 1); }
static void softmax_grad_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 4.0, 2); }

static po_status softmax_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t d = n->shape.dim[n->shape.ndim - 1], rows = po__numel(n) / d;
    const float *x = a->in[0];
    float *y = a->out;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float mx = xr[0];
#pragma omp simd reduction(max : mx)
        for (int64_t j = 1; j < d; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < d; j++) {
            yr[j] = po_expf(xr[j] - mx);
            sum += yr[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            yr[j] *= inv;
    }
    return PO_OK;
}

static po_status softmax_grad_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t d = n->shape.dim[n->shape.ndim - 1], rows = po__numel(n) / d;
    const float *gy = a->in[0], *y = a->in[1];
    float *gx = a->out;
    for (int64_t r = 0; r < rows; r++) {
        const float *g = gy + r * d, *yr = y + r * d;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < d; j++)
            dot += g[j] * yr[j];
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            gx[r * d + j] = yr[j] * (g[j] - dot);
    }
    return PO_OK;
}

const po_op_def po_op_def_softmax = {
    .name = "softmax", .infer = softmax_infer, .grad = softmax_grad, .cost = softmax_cost, .cpu_run = softmax_run};
const po_op_def po_op_def_softmax_grad = {
    .name = "softmax_grad", .infer = softmax_infer, .cost = softmax_grad_cost, .cpu_run = softmax_grad_run};

po_node *po_softmax(po_graph *g, po_node *x) {
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_SOFTMAX, 1, in, NULL, NULL);
}

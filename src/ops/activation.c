/* RELU and GELU (exact, erf-based), with their backward ops.
 * RELU_GRAD(gy, y) = y <= 0 ? 0 : gy, from the output as PyTorch's threshold_backward does.
 * Both compare with `<= 0` so that NaN propagates as in PyTorch (relu(NaN) = NaN, and its
 * gradient passes through); `> 0` would turn NaN into 0 and hide a diverging run.
 * GELU_GRAD(gy, x) = gy * (Phi(x) + x * phi(x)). */
#include <math.h>

#include "core/vmath512.h"
#include "ops/gelu_math.h"
#include "ops/ops_util.h"

static po_status unary_infer(po_node *n) {
    po_status st;
    for (int i = 0; i < n->n_in; i++)
        if ((st = po__want_f32(n, i))) return st;
    if (n->n_in == 2 && !po_shape_equal(&n->in[0]->shape, &n->in[1]->shape))
        return po__shape_error("gradient and value shapes differ", &n->in[0]->shape, &n->in[1]->shape);
    n->shape = n->in[0]->shape;
    return PO_OK;
}

static po_node *binary(po_graph *g, po_op op, po_node *a, po_node *b) {
    po_node *in[2] = {a, b};
    return po__node_new(g, op, 2, in, NULL, NULL);
}

/* --- ReLU --------------------------------------------------------------------------------- */

static void relu_grad(po_graph *g, po_node *n, po_node *gy) {
    po__acc_grad(g, n->in[0], binary(g, PO_OP_RELU_GRAD, gy, n));
}

static void relu_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 1.0, 1); }
static void relu_grad_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 1.0, 2); }

/* Elements [begin, end): operator split runs a ReLU after a split product on the elements each
 * member wrote of it (runtime/opsplit.c), and by units of PO__ELEM_UNIT elements otherwise. */
static po_status relu_range(const po_kargs *a, int64_t lo, int64_t hi) {
    const float *x = a->in[0];
    float *y = a->out;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        y[i] = x[i] <= 0.0f ? 0.0f : x[i];
    return PO_OK;
}

static po_status relu_grad_range(const po_kargs *a, int64_t lo, int64_t hi) {
    const float *gy = a->in[0], *y = a->in[1];
    float *gx = a->out;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        gx[i] = y[i] <= 0.0f ? 0.0f : gy[i];
    return PO_OK;
}

static po_status relu_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    int64_t lo, hi;
    po__elem_range(a->node, begin, end, &lo, &hi);
    return relu_range(a, lo, hi);
}

static po_status relu_grad_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    int64_t lo, hi;
    po__elem_range(a->node, begin, end, &lo, &hi);
    return relu_grad_range(a, lo, hi);
}

const po_op_def po_op_def_relu = {.name = "relu",
                                  .infer = unary_infer,
                                  .grad = relu_grad,
                                  .cost = relu_cost,
                                  .cpu_units = po__elem_units,
                                  .cpu_run_units = relu_run_units,
                                  .cpu_run_range = relu_range};
const po_op_def po_op_def_relu_grad = {.name = "relu_grad",
                                       .infer = unary_infer,
                                       .cost = relu_grad_cost,
                                       .cpu_units = po__elem_units,
                                       .cpu_run_units = relu_grad_run_units,
                                       .cpu_run_range = relu_grad_range};

po_node *po_relu(po_graph *g, po_node *x) {
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_RELU, 1, in, NULL, NULL);
}

/* --- GELU --------------------------------------------------------------------------------- */

static void gelu_grad(po_graph *g, po_node *n, po_node *gy) {
    po__acc_grad(g, n->in[0], binary(g, PO_OP_GELU_GRAD, gy, n->in[0]));
}

static void gelu_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 20.0, 1); }
static void gelu_grad_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 30.0, 2); }

/* Units [begin, end) of runs of PO__ELEM_UNIT elements (operator split; all of them: the node). */
static po_status gelu_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const float *x = a->in[0];
    float *y = a->out;
    int64_t lo, hi;
    po__elem_range(a->node, begin, end, &lo, &hi);
    if (po_cpu_avx512()) {
        po__gelu_avx512(x + lo, y + lo, hi - lo);
        return PO_OK;
    }
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        y[i] = po__gelu(x[i]);
    return PO_OK;
}

static po_status gelu_grad_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const float *gy = a->in[0], *x = a->in[1];
    float *gx = a->out;
    int64_t lo, hi;
    po__elem_range(a->node, begin, end, &lo, &hi);
    if (po_cpu_avx512()) {
        po__gelu_grad_avx512(gy + lo, x + lo, gx + lo, hi - lo);
        return PO_OK;
    }
#pragma omp simd
    for (int64_t i = lo; i < hi; i++)
        gx[i] = po__gelu_grad(gy[i], x[i]);
    return PO_OK;
}

const po_op_def po_op_def_gelu = {.name = "gelu",
                                  .infer = unary_infer,
                                  .grad = gelu_grad,
                                  .cost = gelu_cost,
                                  .cpu_units = po__elem_units,
                                  .cpu_run_units = gelu_run_units};
const po_op_def po_op_def_gelu_grad = {.name = "gelu_grad",
                                       .infer = unary_infer,
                                       .cost = gelu_grad_cost,
                                       .cpu_units = po__elem_units,
                                       .cpu_run_units = gelu_grad_run_units};

po_node *po_gelu(po_graph *g, po_node *x) {
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_GELU, 1, in, NULL, NULL);
}

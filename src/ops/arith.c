/* ADD, MUL (b broadcast over a's leading dims) and SCALE (af[0] = factor). */
#include "ops/ops_util.h"

static po_status binary_infer(po_node *n) {
    po_status st;
    if ((st = po__want_f32(n, 0)) || (st = po__want_f32(n, 1))) return st;
    if (!po__is_suffix(&n->in[1]->shape, &n->in[0]->shape))
        return po__shape_error("b must have a's shape or a suffix of it", &n->in[0]->shape, &n->in[1]->shape);
    n->shape = n->in[0]->shape;
    return PO_OK;
}

static void add_grad(po_graph *g, po_node *n, po_node *gy) {
    po__acc_grad(g, n->in[0], gy);
    if (po__wants_grad(n, 1)) {
        po_node *b = n->in[1];
        po__acc_grad(g, b, po_shape_equal(&b->shape, &gy->shape) ? gy : po_sum_to(g, gy, b->shape));
    }
}

static void mul_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *a = n->in[0], *b = n->in[1];
    if (po__wants_grad(n, 0)) po__acc_grad(g, a, po_mul(g, gy, b));
    if (po__wants_grad(n, 1)) {
        po_node *prod = po_mul(g, gy, a);
        po__acc_grad(g, b, po_shape_equal(&b->shape, &gy->shape) ? prod : po_sum_to(g, prod, b->shape));
    }
}

static void binary_cost(const po_node *n, po_op_cost *c) {
    po__cost_elementwise(n, c, 1.0, 1);
    c->bytes_read += (double)po__nbytes(n->in[1]);
}

static po_status add_run(const po_kargs *a) {
    const float *x = a->in[0], *b = a->in[1];
    float *y = a->out;
    int64_t n = po__numel(a->node), inner = po__numel(a->node->in[1]);
    for (int64_t r = 0; r < n; r += inner)
#pragma omp simd
        for (int64_t j = 0; j < inner; j++)
            y[r + j] = x[r + j] + b[j];
    return PO_OK;
}

static po_status mul_run(const po_kargs *a) {
    const float *x = a->in[0], *b = a->in[1];
    float *y = a->out;
    int64_t n = po__numel(a->node), inner = po__numel(a->node->in[1]);
    for (int64_t r = 0; r < n; r += inner)
#pragma omp simd
        for (int64_t j = 0; j < inner; j++)
            y[r + j] = x[r + j] * b[j];
    return PO_OK;
}

const po_op_def po_op_def_add = {
    .name = "add", .infer = binary_infer, .grad = add_grad, .cost = binary_cost, .cpu_run = add_run};
const po_op_def po_op_def_mul = {
    .name = "mul", .infer = binary_infer, .grad = mul_grad, .cost = binary_cost, .cpu_run = mul_run};

po_node *po_add(po_graph *g, po_node *a, po_node *b) {
    po_node *in[2] = {a, b};
    return po__node_new(g, PO_OP_ADD, 2, in, NULL, NULL);
}

po_node *po_mul(po_graph *g, po_node *a, po_node *b) {
    po_node *in[2] = {a, b};
    return po__node_new(g, PO_OP_MUL, 2, in, NULL, NULL);
}

static po_status scale_infer(po_node *n) {
    po_status st = po__want_f32(n, 0);
    n->shape = n->in[0]->shape;
    return st;
}

static void scale_grad(po_graph *g, po_node *n, po_node *gy) { po__acc_grad(g, n->in[0], po_scale(g, gy, n->af[0])); }

static void scale_cost(const po_node *n, po_op_cost *c) { po__cost_elementwise(n, c, 1.0, 1); }

static po_status scale_run(const po_kargs *a) {
    const float *x = a->in[0];
    float *y = a->out, s = a->node->af[0];
    int64_t n = po__numel(a->node);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * s;
    return PO_OK;
}

const po_op_def po_op_def_scale = {
    .name = "scale", .infer = scale_infer, .grad = scale_grad, .cost = scale_cost, .cpu_run = scale_run};

po_node *po_scale(po_graph *g, po_node *x, float s) {
    float af[PO_ATTR_FLOATS] = {s};
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_SCALE, 1, in, NULL, af);
}

/* In-place parameter updates, PyTorch's single-tensor code paths (torch/optim/sgd.py, adam.py,
 * adamw.py). Inputs: param, grad. The output aliases the parameter (a view), the aux buffer is
 * the parameter's optimizer state in po_params. Attributes (set in src/train/optim.c):
 *   SGD_STEP:  af = {lr, weight_decay, momentum, dampening}, ai[0] = nesterov
 *   ADAM_STEP: af = {lr, weight_decay, beta1, beta2, eps},   ai[0] = decoupled decay (AdamW) */
#include <math.h>

#include "ops/ops_util.h"

static po_status step_infer(po_node *n) {
    po_status st;
    if ((st = po__want_f32(n, 0)) || (st = po__want_f32(n, 1))) return st;
    if (!po_shape_equal(&n->in[0]->shape, &n->in[1]->shape))
        return po__shape_error("parameter and gradient shapes differ", &n->in[0]->shape, &n->in[1]->shape);
    n->shape = n->in[0]->shape;
    n->store = PO_STORE_VIEW;
    n->view_src = n->in[0];
    n->view_offset = 0;
    int slots = n->op == PO_OP_ADAM_STEP ? 2 : (n->af[2] > 0.0f ? 1 : 0);
    n->aux_bytes = (size_t)slots * po__nbytes(n);
    return PO_OK;
}

static void step_cost(const po_node *n, po_op_cost *c) {
    double e = (double)po__numel(n);
    int slots = (int)(n->aux_bytes / (po__nbytes(n) ? po__nbytes(n) : 1));
    c->flops = e * (n->op == PO_OP_ADAM_STEP ? 12.0 : 4.0);
    c->bytes_read = e * 4.0 * (2 + slots);
    c->bytes_written = e * 4.0 * (1 + slots);
}

static po_status sgd_range(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    float *p = a->out, *buf = a->aux;
    const float *g = a->in[1];
    float lr = n->af[0] * a->step->lr_scale, wd = n->af[1], mom = n->af[2], damp = n->af[3];
    bool nesterov = n->ai[0], first = a->step->t == 1;
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        if (mom != 0.0f) {
            /* PyTorch starts the buffer as a copy of the first gradient. */
            buf[i] = first ? d : mom * buf[i] + (1.0f - damp) * d;
            d = nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] += -lr * d;
    }
    return PO_OK;
}

static po_status adam_range(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    int64_t count = po__numel(n);
    float *p = a->out, *m = a->aux, *v = m + count;
    const float *g = a->in[1];
    float lr = n->af[0] * a->step->lr_scale, wd = n->af[1], b1 = n->af[2], b2 = n->af[3], eps = n->af[4];
    bool decoupled = n->ai[0];
    /* Python computes these scalars in double. */
    double t = (double)a->step->t;
    double bc1 = 1.0 - pow((double)b1, t), bc2 = 1.0 - pow((double)b2, t);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float decay = decoupled ? 1.0f - lr * wd : 1.0f, l2 = decoupled ? 0.0f : wd;
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float pi = p[i] * decay, gi = g[i] + l2 * pi;
        m[i] = m[i] * b1 + gi * (1.0f - b1);
        v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi + -step_size * (m[i] / denom);
    }
    return PO_OK;
}

const po_op_def po_op_def_sgd_step = {
    .name = "sgd_step", .infer = step_infer, .cost = step_cost, .cpu_run_range = sgd_range};
const po_op_def po_op_def_adam_step = {
    .name = "adam_step", .infer = step_infer, .cost = step_cost, .cpu_run_range = adam_range};

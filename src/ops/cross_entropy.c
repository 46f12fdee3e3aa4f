/* CROSS_ENTROPY(logits[..., C], targets[...]) = mean over rows of logsumexp(row) - row[target],
 * as torch.nn.CrossEntropyLoss (mean reduction, no weights, no ignore index).
 * The aux buffer keeps softmax(logits) for
 * CROSS_ENTROPY_GRAD(gloss, targets, ce) = (softmax - onehot(target)) * gloss / rows. */
#include <math.h>

#include "core/vmath.h"
#include "ops/ops_util.h"

static int64_t classes(const po_node *logits) { return logits->shape.dim[logits->shape.ndim - 1]; }

static int64_t target_at(const void *t, po_dtype dt, int64_t i) {
    return dt == PO_I64 ? ((const int64_t *)t)[i] : ((const int32_t *)t)[i];
}

static po_status bad_target(int64_t t, int64_t c) {
    return po_fail(PO_ERR_RANGE, "cross_entropy: target %lld is outside [0, %lld)", (long long)t, (long long)c);
}

static po_status ce_infer(po_node *n) {
    po_status st;
    if ((st = po__want_f32(n, 0)) || (st = po__want_int(n, 1))) return st;
    const po_shape *l = &n->in[0]->shape, *t = &n->in[1]->shape;
    bool ok = l->ndim == t->ndim + 1;
    for (int i = 0; ok && i < t->ndim; i++)
        ok = l->dim[i] == t->dim[i];
    if (!ok) return po__shape_error("logits must be targets' shape plus a class dim", l, t);
    n->shape = po_shape_make(0, NULL);
    n->aux_bytes = po__nbytes(n->in[0]);
    return PO_OK;
}

static void ce_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *in[3] = {gy, n->in[1], n};
    po__acc_grad(g, n->in[0], po__node_new(g, PO_OP_CROSS_ENTROPY_GRAD, 3, in, NULL, NULL));
}

/* Reads the logits and the targets; writes the probabilities (aux) and the loss. */
static void ce_cost(const po_node *n, po_op_cost *c) {
    double e = (double)po__numel(n->in[0]);
    c->flops = 14.0 * e;
    c->bytes_read = 4.0 * e + (double)po__nbytes(n->in[1]);
    c->bytes_written = 4.0 * e + 4.0;
}

static po_status ce_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t c = classes(n->in[0]), rows = po__numel(n->in[0]) / c;
    const float *x = a->in[0];
    float *p = a->aux;
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = target_at(a->in[1], n->in[1]->dtype, r);
        if (t < 0 || t >= c) return bad_target(t, c);
        const float *xr = x + r * c;
        float *pr = p + r * c;
        float mx = xr[0];
#pragma omp simd reduction(max : mx)
        for (int64_t j = 1; j < c; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < c; j++) {
            pr[j] = po_expf(xr[j] - mx);
            sum += pr[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            pr[j] *= inv;
        /* sum >= 1: the maximum contributes exp(0), and infer guarantees C >= 1. */
        // cppcheck-suppress invalidFunctionArg
        total += (double)(logf(sum) + mx - xr[t]);
    }
    *(float *)a->out = (float)(total / (double)rows);
    return PO_OK;
}

const po_op_def po_op_def_cross_entropy = {
    .name = "cross_entropy", .infer = ce_infer, .grad = ce_grad, .cost = ce_cost, .cpu_run = ce_run};

static po_status ce_grad_infer(po_node *n) {
    n->shape = n->in[2]->in[0]->shape;
    return PO_OK;
}

/* One multiply per logit and one subtraction per row; reads the saved probabilities, the
 * targets and the loss gradient. */
static void ce_grad_cost(const po_node *n, po_op_cost *c) {
    double e = (double)po__numel(n);
    c->flops = e + (double)po__numel(n->in[1]);
    c->bytes_read = 4.0 * e + (double)po__nbytes(n->in[1]) + 4.0;
    c->bytes_written = 4.0 * e;
}

static po_status ce_grad_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t c = classes(n), rows = po__numel(n) / c;
    const float *p = a->in_aux[2];
    float *gx = a->out, scale = *(const float *)a->in[0] / (float)rows;
    for (int64_t r = 0; r < rows; r++) {
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            gx[r * c + j] = p[r * c + j] * scale;
        /* Targets were range-checked by the forward op that saved p. */
        gx[r * c + target_at(a->in[1], n->in[1]->dtype, r)] -= scale;
    }
    return PO_OK;
}

const po_op_def po_op_def_cross_entropy_grad = {
    .name = "cross_entropy_grad", .infer = ce_grad_infer, .cost = ce_grad_cost, .cpu_run = ce_grad_run};

po_node *po_cross_entropy(po_graph *g, po_node *logits, po_node *targets) {
    po_node *in[2] = {logits, targets};
    return po__node_new(g, PO_OP_CROSS_ENTROPY, 2, in, NULL, NULL);
}

/* LAYER_NORM over the last dim, as torch.nn.LayerNorm (biased variance, eps inside the root).
 * Inputs x[..., D], w[D], b[D]; af[0] = eps. The aux buffer keeps each row's mean and
 * 1/sqrt(var + eps) for the backward ops:
 *   LAYER_NORM_GRAD_INPUT(gy, x, w, ln)  = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)),
 *                                          gw = gy * w, xhat = (x - mean) * rstd
 *   LAYER_NORM_GRAD_WEIGHT(gy, x, ln)    = sum over rows of gy * xhat
 * and the bias gradient is po_sum_to(gy, [D]). */
#include <math.h>
#include <string.h>

#include "ops/ops_util.h"

static int64_t row_len(const po_node *x) { return x->shape.dim[x->shape.ndim - 1]; }

static po_status ln_infer(po_node *n) {
    po_status st;
    for (int i = 0; i < 3; i++)
        if ((st = po__want_f32(n, i))) return st;
    const po_shape *x = &n->in[0]->shape;
    if (x->ndim < 1) return po_fail(PO_ERR_SHAPE, "layer_norm needs at least one dim");
    po_shape d = po_shape_make(1, &x->dim[x->ndim - 1]);
    if (!po_shape_equal(&n->in[1]->shape, &d) || !po_shape_equal(&n->in[2]->shape, &d))
        return po__shape_error("weight and bias must be [D] for input", &n->in[1]->shape, x);
    if (!(n->af[0] > 0.0f)) return po_fail(PO_ERR_INVALID_ARG, "eps must be > 0");
    n->shape = *x;
    n->aux_bytes = (size_t)(po__numel(n->in[0]) / d.dim[0]) * 2 * sizeof(float);
    return PO_OK;
}

static void ln_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *x = n->in[0], *w = n->in[1], *b = n->in[2];
    if (po__wants_grad(n, 0)) {
        po_node *in[4] = {gy, x, w, n};
        po__acc_grad(g, x, po__node_new(g, PO_OP_LAYER_NORM_GRAD_INPUT, 4, in, NULL, NULL));
    }
    if (po__wants_grad(n, 1)) {
        po_node *in[3] = {gy, x, n};
        po__acc_grad(g, w, po__node_new(g, PO_OP_LAYER_NORM_GRAD_WEIGHT, 3, in, NULL, NULL));
    }
    if (po__wants_grad(n, 2)) po__acc_grad(g, b, po_sum_to(g, gy, b->shape));
}

static void ln_cost(const po_node *n, po_op_cost *c) {
    po__cost_elementwise(n, c, 8.0, 1);
    c->bytes_read += (double)(po__nbytes(n->in[1]) + po__nbytes(n->in[2])); /* w, b */
    c->bytes_written += (double)n->aux_bytes;
}

/* Operator split's units: rows, normalised (and differentiated) independently. */
static int64_t ln_rows(const po_node *n) { return po__numel(n) / row_len(n); }

static po_status ln_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    int64_t d = row_len(n);
    const float *x = a->in[0], *w = a->in[1], *b = a->in[2];
    float *y = a->out, *stats = a->aux, eps = n->af[0];
    for (int64_t r = begin; r < end; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < d; j++)
            sum += xr[j];
        float mean = sum / (float)d, sq = 0.0f;
#pragma omp simd reduction(+ : sq)
        for (int64_t j = 0; j < d; j++)
            sq += (xr[j] - mean) * (xr[j] - mean);
        float rstd = 1.0f / sqrtf(sq / (float)d + eps);
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
    }
    return PO_OK;
}

const po_op_def po_op_def_layer_norm = {.name = "layer_norm",
                                        .infer = ln_infer,
                                        .grad = ln_grad,
                                        .cost = ln_cost,
                                        .cpu_units = ln_rows,
                                        .cpu_run_units = ln_run_units};

po_node *po_layer_norm(po_graph *g, po_node *x, po_node *w, po_node *b, float eps) {
    float af[PO_ATTR_FLOATS] = {eps};
    po_node *in[3] = {x, w, b};
    return po__node_new(g, PO_OP_LAYER_NORM, 3, in, NULL, af);
}

/* --- backward ------------------------------------------------------------------------------ */

static po_status ln_grad_input_infer(po_node *n) {
    n->shape = n->in[1]->shape;
    return po_shape_equal(&n->in[0]->shape, &n->shape)
               ? PO_OK
               : po__shape_error("gy and x differ", &n->in[0]->shape, &n->shape);
}

/* Reads gy, x, w and the forward's saved row statistics. */
static void ln_grad_input_cost(const po_node *n, po_op_cost *c) {
    po__cost_elementwise(n, c, 10.0, 2);
    c->bytes_read += (double)(po__nbytes(n->in[2]) + n->in[3]->aux_bytes);
}

static po_status ln_grad_input_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    int64_t d = row_len(n);
    const float *gy = a->in[0], *x = a->in[1], *w = a->in[2], *stats = a->in_aux[3];
    float *gx = a->out;
    for (int64_t r = begin; r < end; r++) {
        const float *g = gy + r * d, *xr = x + r * d;
        float mean = stats[2 * r], rstd = stats[2 * r + 1];
        float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t j = 0; j < d; j++) {
            float gw = g[j] * w[j];
            s1 += gw;
            s2 += gw * (xr[j] - mean) * rstd;
        }
        s1 /= (float)d;
        s2 /= (float)d;
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            gx[r * d + j] = rstd * (g[j] * w[j] - s1 - (xr[j] - mean) * rstd * s2);
    }
    return PO_OK;
}

const po_op_def po_op_def_layer_norm_grad_input = {.name = "layer_norm_grad_input",
                                                   .infer = ln_grad_input_infer,
                                                   .cost = ln_grad_input_cost,
                                                   .cpu_units = ln_rows,
                                                   .cpu_run_units = ln_grad_input_run_units};

static po_status ln_grad_weight_infer(po_node *n) {
    n->shape = po_shape_make(1, &n->in[1]->shape.dim[n->in[1]->shape.ndim - 1]);
    return PO_OK;
}

static void ln_grad_weight_cost(const po_node *n, po_op_cost *c) {
    double e = (double)po__numel(n->in[0]);
    c->flops = 3.0 * e;
    c->bytes_read = 8.0 * e + (double)n->in[2]->aux_bytes; /* gy, x, row statistics */
    c->bytes_written = (double)po__nbytes(n);
}

static po_status ln_grad_weight_run(const po_kargs *a) {
    const po_node *n = a->node;
    int64_t d = n->shape.dim[0], rows = po__numel(n->in[0]) / d;
    const float *gy = a->in[0], *x = a->in[1], *stats = a->in_aux[2];
    float *gw = a->out;
    memset(gw, 0, (size_t)d * sizeof *gw);
    for (int64_t r = 0; r < rows; r++) {
        float mean = stats[2 * r], rstd = stats[2 * r + 1];
#pragma omp simd
        for (int64_t j = 0; j < d; j++)
            gw[j] += gy[r * d + j] * (x[r * d + j] - mean) * rstd;
    }
    return PO_OK;
}

const po_op_def po_op_def_layer_norm_grad_weight = {.name = "layer_norm_grad_weight",
                                                    .infer = ln_grad_weight_infer,
                                                    .cost = ln_grad_weight_cost,
                                                    .cpu_run = ln_grad_weight_run};

/* MAX_POOL2D over x[N, C, H, W] with a square window, as torch.nn.functional.max_pool2d
 * (dilation 1, ceil_mode false), and its backward op.
 *
 *   MAX_POOL2D(x)             -> y[N, C, OH, OW], OH = (H + 2 * padding - kernel) / stride + 1
 *   MAX_POOL2D_GRAD(gy, pool) -> dx of x's shape
 * Attributes of both: ai[0] kernel, ai[1] stride, ai[2] padding (padding counts as -inf).
 *
 * The forward saves in its aux buffer, per output element, the int32 flat index (h * W + w)
 * within its input plane of the element it picked; the backward reads it through the forward
 * node (its second input) and scatters gy there. The pick follows PyTorch's CPU kernel: the
 * first maximum in row-major window order, except that a NaN always takes over, so a window
 * holding NaNs yields NaN with the index of its last NaN. */
#include <stdint.h>
#include <string.h>

#include "ops/ops_util.h"

/* PyTorch's update rule: a strictly larger value or any NaN. */
static inline bool takes_over(float v, float best) { return v > best || v != v; }

static po_status pool_infer(po_node *n) {
    po_status st = po__want_f32(n, 0);
    if (st) return st;
    const po_shape *x = &n->in[0]->shape;
    if (x->ndim != 4) return po_fail(PO_ERR_SHAPE, "max_pool2d input must be 4-D [N, C, H, W], got rank %d", x->ndim);
    int64_t k = n->ai[0], s = n->ai[1], p = n->ai[2];
    if (k < 1) return po_fail(PO_ERR_INVALID_ARG, "kernel must be at least 1, got %lld", (long long)k);
    if (s < 1) return po_fail(PO_ERR_INVALID_ARG, "stride must be at least 1, got %lld", (long long)s);
    if (p < 0 || p > k / 2)
        return po_fail(PO_ERR_INVALID_ARG, "padding must be between 0 and kernel/2 = %lld, got %lld",
                       (long long)(k / 2), (long long)p);
    if (x->dim[2] + 2 * p < k || x->dim[3] + 2 * p < k)
        return po_fail(PO_ERR_SHAPE, "kernel %lld is larger than the padded input %lldx%lld", (long long)k,
                       (long long)(x->dim[2] + 2 * p), (long long)(x->dim[3] + 2 * p));
    if (x->dim[2] * x->dim[3] > INT32_MAX) return po_fail(PO_ERR_UNSUPPORTED, "max_pool2d planes over 2^31 elements");
    n->shape = PO_SHAPE(x->dim[0], x->dim[1], (x->dim[2] + 2 * p - k) / s + 1, (x->dim[3] + 2 * p - k) / s + 1);
    n->aux_bytes = (size_t)po__numel(n) * sizeof(int32_t);
    return PO_OK;
}

static po_status pool_grad_infer(po_node *n) {
    po_status st;
    if ((st = po__want_f32(n, 0))) return st;
    const po_node *pool = n->in[1];
    if (pool->op != PO_OP_MAX_POOL2D) return po_fail(PO_ERR_INVALID_ARG, "second input must be the max_pool2d node");
    if (!po_shape_equal(&n->in[0]->shape, &pool->shape))
        return po__shape_error("output gradient does not match the pooling output", &n->in[0]->shape, &pool->shape);
    memcpy(n->ai, pool->ai, 3 * sizeof n->ai[0]);
    n->shape = pool->in[0]->shape;
    return PO_OK;
}

static void pool_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *in[2] = {gy, n};
    po__acc_grad(g, n->in[0], po__node_new(g, PO_OP_MAX_POOL2D_GRAD, 2, in, n->ai, NULL));
}

static void pool_cost(const po_node *n, po_op_cost *c) {
    double k = (double)n->ai[0], out = (double)po__numel(n);
    c->flops = out * k * k; /* comparisons */
    c->bytes_read = (double)po__nbytes(n->in[0]);
    c->bytes_written = (double)po__nbytes(n) + (double)n->aux_bytes;
}

static void pool_grad_cost(const po_node *n, po_op_cost *c) {
    double out = (double)po__numel(n->in[0]);
    c->flops = out;
    c->bytes_read = (double)po__nbytes(n->in[0]) + (double)n->in[1]->aux_bytes;
    c->bytes_written = (double)po__nbytes(n);
}

/* The common 2x2, stride 2, unpadded window: every window lies inside the plane, so a row of
 * outputs is a branch-free pass over two input rows. */
static void pool_2x2(const float *x, float *y, int32_t *idx, int64_t planes, int64_t h, int64_t w, int64_t oh,
                     int64_t ow) {
    for (int64_t pl = 0; pl < planes; pl++, x += h * w, y += oh * ow, idx += oh * ow) {
        for (int64_t i = 0; i < oh; i++) {
            const float *r0 = x + 2 * i * w, *r1 = r0 + w;
            float *yr = y + i * ow;
            int32_t *ir = idx + i * ow;
            int32_t base = (int32_t)(2 * i * w), wd = (int32_t)w;
#pragma omp simd
            for (int64_t j = 0; j < ow; j++) {
                float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
                float m = a;
                int32_t k = 0;
                if (takes_over(b, m)) m = b, k = 1;
                if (takes_over(c, m)) m = c, k = wd;
                if (takes_over(d, m)) m = d, k = wd + 1;
                yr[j] = m;
                ir[j] = base + 2 * (int32_t)j + k;
            }
        }
    }
}

static void pool_any(const float *x, float *y, int32_t *idx, int64_t planes, int64_t h, int64_t w, int64_t oh,
                     int64_t ow, int64_t k, int64_t s, int64_t p) {
    for (int64_t pl = 0; pl < planes; pl++, x += h * w, y += oh * ow, idx += oh * ow) {
        for (int64_t i = 0; i < oh; i++) {
            int64_t h0 = i * s - p, h1 = h0 + k < h ? h0 + k : h;
            if (h0 < 0) h0 = 0;
            for (int64_t j = 0; j < ow; j++) {
                int64_t w0 = j * s - p, w1 = w0 + k < w ? w0 + k : w;
                if (w0 < 0) w0 = 0;
                int64_t best = h0 * w + w0;
                float m = x[best];
                for (int64_t r = h0; r < h1; r++)
                    for (int64_t c = w0; c < w1; c++)
                        if (takes_over(x[r * w + c], m)) m = x[r * w + c], best = r * w + c;
                y[i * ow + j] = m;
                idx[i * ow + j] = (int32_t)best;
            }
        }
    }
}

/* Operator split's units, forward and backward: planes (sample, channel), pooled apart. */
static int64_t pool_planes(const po_node *n) { return n->shape.dim[0] * n->shape.dim[1]; }

static po_status pool_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    const po_shape *xs = &n->in[0]->shape;
    int64_t h = xs->dim[2], w = xs->dim[3];
    int64_t oh = n->shape.dim[2], ow = n->shape.dim[3], k = n->ai[0], s = n->ai[1], p = n->ai[2];
    const float *x = (const float *)a->in[0] + begin * h * w;
    float *y = (float *)a->out + begin * oh * ow;
    int32_t *idx = (int32_t *)a->aux + begin * oh * ow;
    if (k == 2 && s == 2 && p == 0)
        pool_2x2(x, y, idx, end - begin, h, w, oh, ow);
    else
        pool_any(x, y, idx, end - begin, h, w, oh, ow, k, s, p);
    return PO_OK;
}

/* 2x2, stride 2, unpadded: windows tile the plane, so each input element is written once, gy
 * where the window picked it and zero elsewhere; rows and columns no window covers are zeroed. */
static void pool_grad_2x2(const float *gy, const int32_t *idx, float *dx, int64_t planes, int64_t h, int64_t w,
                          int64_t oh, int64_t ow) {
    for (int64_t pl = 0; pl < planes; pl++, gy += oh * ow, idx += oh * ow, dx += h * w) {
        for (int64_t i = 0; i < oh; i++) {
            float *r0 = dx + 2 * i * w, *r1 = r0 + w;
            const float *g = gy + i * ow;
            const int32_t *ix = idx + i * ow;
            int32_t base = (int32_t)(2 * i * w), wd = (int32_t)w;
#pragma omp simd
            for (int64_t j = 0; j < ow; j++) {
                int32_t k = ix[j] - base - 2 * (int32_t)j;
                r0[2 * j] = k == 0 ? g[j] : 0.0f;
                r0[2 * j + 1] = k == 1 ? g[j] : 0.0f;
                r1[2 * j] = k == wd ? g[j] : 0.0f;
                r1[2 * j + 1] = k == wd + 1 ? g[j] : 0.0f;
            }
            if (w > 2 * ow) r0[w - 1] = r1[w - 1] = 0.0f;
        }
        if (h > 2 * oh) memset(dx + (h - 1) * w, 0, (size_t)w * sizeof *dx);
    }
}

/* Zero, then add each output gradient at its saved index, output by output in order, as
 * PyTorch does (overlapping windows accumulate in the same order). */
static po_status pool_grad_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    int64_t h = n->shape.dim[2], w = n->shape.dim[3], planes = end - begin;
    int64_t oh = n->in[0]->shape.dim[2], ow = n->in[0]->shape.dim[3], ohw = oh * ow;
    const float *gy = (const float *)a->in[0] + begin * ohw;
    const int32_t *idx = (const int32_t *)a->in_aux[1] + begin * ohw;
    float *dx = (float *)a->out + begin * h * w;
    if (n->ai[0] == 2 && n->ai[1] == 2 && n->ai[2] == 0) {
        pool_grad_2x2(gy, idx, dx, planes, h, w, oh, ow);
        return PO_OK;
    }
    memset(dx, 0, (size_t)(planes * h * w) * sizeof *dx);
    for (int64_t pl = 0; pl < planes; pl++, gy += ohw, idx += ohw, dx += h * w)
        for (int64_t j = 0; j < ohw; j++)
            dx[idx[j]] += gy[j];
    return PO_OK;
}

const po_op_def po_op_def_max_pool2d = {.name = "max_pool2d",
                                        .infer = pool_infer,
                                        .grad = pool_grad,
                                        .cost = pool_cost,
                                        .cpu_units = pool_planes,
                                        .cpu_run_units = pool_run_units};
const po_op_def po_op_def_max_pool2d_grad = {.name = "max_pool2d_grad",
                                             .infer = pool_grad_infer,
                                             .cost = pool_grad_cost,
                                             .cpu_units = pool_planes,
                                             .cpu_run_units = pool_grad_run_units};

po_node *po_max_pool2d(po_graph *g, po_node *x, int kernel, int stride, int padding) {
    int64_t ai[PO_ATTR_INTS] = {kernel, stride, padding};
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_MAX_POOL2D, 1, in, ai, NULL);
}

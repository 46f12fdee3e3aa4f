/* CAUSAL_ATTENTION: fused multi-head causal self-attention on packed projections.
 * Input qkv[B, T, 3D] (q, k, v side by side, as one Linear(D, 3D) writes them); ai[0] = heads.
 * Output [B, T, D] with heads merged, exactly PyTorch's
 *   softmax(q k^T / sqrt(hd) with the future masked to -inf) v, transposed back and reshaped.
 * Heads are strided views of qkv (row stride 3D), so no split, transpose or copy is needed:
 * every product is one GEMM with leading dimensions. The aux buffer keeps the attention
 * probabilities P[B, H, T, T] (zero above the diagonal) for
 * CAUSAL_ATTENTION_GRAD(gy, qkv, attn) -> dqkv[B, T, 3D]:
 *   dV = P^T dY,  dP = dY V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = dS K s,  dK = dS^T Q s.
 * Causality halves the work: rows are taken in blocks of BLOCK, and a block of rows only meets
 * the keys up to its last row, so the products skip most of the masked upper triangle. On
 * AVX-512 CPUs, heads of 16-multiple sizes run on kernels of their own instead
 * (ops/attention_kernels.h), which skip more of it and waste less on small products. */
#include <math.h>

#include "backend/cpu/gemm.h"
#include "core/vmath.h"
#include "ops/attention_kernels.h"
#include "ops/ops_util.h"

typedef struct {
    int64_t B, T, D, H, hd;
    float scale;
} attn_dims;

/* Rows per block: small enough to skip most of the triangle, large enough for efficient GEMMs
 * (measured on tiny_gpt: 32 beats 64 and 128). A multiple of 8 (see row_keys). */
#define BLOCK 32

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* (row, key) pairs the blocked products compute for T positions. */
static double causal_pairs(int64_t T) {
    double pairs = 0.0;
    for (int64_t r0 = 0; r0 < T; r0 += BLOCK)
        pairs += (double)min64(BLOCK, T - r0) * (double)min64(r0 + BLOCK, T);
    return pairs;
}

/* How far row i's loops run: keys 0..i rounded up to a whole number of 8-float vectors (and
 * masked past i), so no loop has a scalar tail. BLOCK is a multiple of 8, so these keys were
 * computed by the blocked products. */
static int64_t row_keys(int64_t i, int64_t T) { return min64((i + 8) & ~(int64_t)7, T); }

/* P[i, :] = softmax of S[i, 0..i]; 0 above the diagonal. */
static void softmax_causal_rows(float *p, int64_t T) {
    for (int64_t i = 0; i < T; i++) {
        float *row = p + i * T, mx = -INFINITY, sum = 0.0f;
        int64_t n = row_keys(i, T);
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < n; j++)
            mx = j <= i && row[j] > mx ? row[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            float e = po_expf(row[j] - mx);
            row[j] = j <= i ? e : 0.0f;
            sum += row[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            row[j] *= inv;
        for (int64_t j = n; j < T; j++)
            row[j] = 0.0f;
    }
}

/* dS = P * (dP - <dP, P>) row by row, in place over dP. P is 0 above the diagonal, which
 * masks the keys a row does not see; the rest of the row is cleared. */
static void softmax_grad_causal_rows(float *ds, const float *p, int64_t T) {
    for (int64_t i = 0; i < T; i++) {
        const float *pr = p + i * T;
        float *r = ds + i * T, dot = 0.0f;
        int64_t n = row_keys(i, T);
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < n; j++)
            dot += r[j] * pr[j];
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            r[j] = pr[j] * (r[j] - dot);
        for (int64_t j = n; j < T; j++)
            r[j] = 0.0f;
    }
}

static attn_dims dims_of(const po_node *qkv_node, int64_t heads) {
    const po_shape *s = &qkv_node->shape;
    attn_dims d = {s->dim[0], s->dim[1], s->dim[2] / 3, heads, 0, 0.0f};
    d.hd = d.D / heads;
    d.scale = (float)(1.0 / sqrt((double)d.hd));
    return d;
}

static po_status attn_infer(po_node *n) {
    po_status st = po__want_f32(n, 0);
    if (st) return st;
    const po_shape *s = &n->in[0]->shape;
    int64_t h = n->ai[0];
    if (s->ndim != 3 || s->dim[2] % 3) return po_fail(PO_ERR_SHAPE, "qkv must be [B, T, 3D]");
    if (h < 1 || (s->dim[2] / 3) % h)
        return po_fail(PO_ERR_SHAPE, "%lld heads do not divide d_model %lld", (long long)h, (long long)(s->dim[2] / 3));
    attn_dims d = dims_of(n->in[0], h);
    n->shape = PO_SHAPE(d.B, d.T, d.D);
    n->aux_bytes = (size_t)(d.B * d.H * d.T * d.T) * sizeof(float);
    n->scratch_bytes = (size_t)(d.T * d.hd) * sizeof(float); /* K transposed, for the kernels */
    return PO_OK;
}

static void attn_grad(po_graph *g, po_node *n, po_node *gy) {
    int64_t ai[PO_ATTR_INTS] = {n->ai[0]};
    po_node *in[3] = {gy, n->in[0], n};
    po__acc_grad(g, n->in[0], po__node_new(g, PO_OP_CAUSAL_ATTENTION_GRAD, 3, in, ai, NULL));
}

static void attn_cost(const po_node *n, po_op_cost *c) {
    attn_dims d = dims_of(n->in[0], n->ai[0]);
    double bh = (double)(d.B * d.H), pairs = causal_pairs(d.T);
    c->flops = bh * (4.0 * pairs * (double)d.hd + 6.0 * pairs);
    c->bytes_read = (double)po__nbytes(n->in[0]);
    c->bytes_written = (double)po__nbytes(n) + (double)n->aux_bytes;
}

/* Operator split's units, forward and backward: one per (sample, head) pair, b * H + h. qkv is
 * the forward's input 0 and the backward's input 1. */
static int64_t attn_units(const po_node *n) {
    attn_dims d = dims_of(n->in[n->op == PO_OP_CAUSAL_ATTENTION_GRAD ? 1 : 0], n->ai[0]);
    return d.B * d.H;
}

static po_status attn_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    attn_dims d = dims_of(n->in[0], n->ai[0]);
    int64_t ld = 3 * d.D, T = d.T;
    const float *qkv = a->in[0];
    float *y = a->out, *P = a->aux;
    bool own = po__attn_kernels_ok(T, d.hd);
    for (int64_t u = begin; u < end; u++) {
        int64_t b = u / d.H, h = u % d.H;
        const float *q = qkv + b * T * ld + h * d.hd, *k = q + d.D, *v = q + 2 * d.D;
        float *p = P + u * T * T, *yh = y + b * T * d.D + h * d.hd;
        if (own) {
            po__attn_scores(q, ld, k, ld, T, d.hd, d.scale, p, a->scratch);
            po__attn_softmax_rows(p, T);
            po__attn_weighted_rows(p, false, v, ld, T, d.hd, 1.0f, yh, d.D);
            continue;
        }
        po_status st;
        for (int64_t r0 = 0; r0 < T; r0 += BLOCK) { /* S = Q K^T s, rows r0.. against keys ..r0+rows */
            int64_t rows = min64(BLOCK, T - r0);
            st = po__sgemm(false, true, rows, r0 + rows, d.hd, d.scale, q + r0 * ld, ld, k, ld, 0.0f, p + r0 * T, T);
            if (st) return st;
        }
        softmax_causal_rows(p, T);
        for (int64_t r0 = 0; r0 < T; r0 += BLOCK) { /* Y = P V */
            int64_t rows = min64(BLOCK, T - r0);
            st = po__sgemm(false, false, rows, d.hd, r0 + rows, 1.0f, p + r0 * T, T, v, ld, 0.0f, yh + r0 * d.D, d.D);
            if (st) return st;
        }
    }
    return PO_OK;
}

const po_op_def po_op_def_causal_attention = {.name = "causal_attention",
                                              .infer = attn_infer,
                                              .grad = attn_grad,
                                              .cost = attn_cost,
                                              .cpu_units = attn_units,
                                              .cpu_run_units = attn_run_units};

po_node *po_causal_attention(po_graph *g, po_node *qkv, int heads) {
    int64_t ai[PO_ATTR_INTS] = {heads};
    po_node *in[1] = {qkv};
    return po__node_new(g, PO_OP_CAUSAL_ATTENTION, 1, in, ai, NULL);
}

/* --- backward ------------------------------------------------------------------------------ */

static po_status attn_grad_infer(po_node *n) {
    attn_dims d = dims_of(n->in[1], n->ai[0]);
    n->shape = n->in[1]->shape;
    n->scratch_bytes = (size_t)(d.T * d.T + d.T * d.hd) * sizeof(float); /* dS, and V transposed */
    return PO_OK;
}

static void attn_grad_cost(const po_node *n, po_op_cost *c) {
    attn_dims d = dims_of(n->in[1], n->ai[0]);
    double bh = (double)(d.B * d.H), pairs = causal_pairs(d.T);
    c->flops = bh * (8.0 * pairs * (double)d.hd + 4.0 * pairs);
    c->bytes_read = (double)(po__nbytes(n->in[0]) + po__nbytes(n->in[1])) + bh * (double)(d.T * d.T) * 4.0;
    c->bytes_written = (double)po__nbytes(n);
}

static po_status attn_grad_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const po_node *n = a->node;
    attn_dims d = dims_of(n->in[1], n->ai[0]);
    int64_t ld = 3 * d.D, T = d.T;
    const float *gy = a->in[0], *qkv = a->in[1], *P = a->in_aux[2];
    float *dqkv = a->out, *ds = a->scratch;
    bool own = po__attn_kernels_ok(T, d.hd);
    for (int64_t u = begin; u < end; u++) {
        int64_t b = u / d.H, h = u % d.H, off = b * T * ld + h * d.hd;
        const float *q = qkv + off, *k = q + d.D, *v = q + 2 * d.D;
        const float *p = P + u * T * T, *dy = gy + b * T * d.D + h * d.hd;
        float *dq = dqkv + off, *dk = dq + d.D, *dv = dq + 2 * d.D;
        if (own) {
            po__attn_weighted_rows(p, true, dy, d.D, T, d.hd, 1.0f, dv, ld); /* dV = P^T dY */
            po__attn_scores(dy, d.D, v, ld, T, d.hd, 1.0f, ds, ds + T * T);  /* dP = dY V^T */
            softmax_grad_causal_rows(ds, p, T);
            po__attn_weighted_rows(ds, false, k, ld, T, d.hd, d.scale, dq, ld); /* dQ = dS K s */
            po__attn_weighted_rows(ds, true, q, ld, T, d.hd, d.scale, dk, ld);  /* dK = dS^T Q s */
            continue;
        }
        po_status st;
        for (int64_t r0 = 0; r0 < T; r0 += BLOCK) {
            int64_t rows = min64(BLOCK, T - r0);
            /* dV for keys r0.. = P[r0.., keys]^T dY[r0..]: only rows at or after a key see it. */
            st = po__sgemm(true, false, rows, d.hd, T - r0, 1.0f, p + r0 * T + r0, T, dy + r0 * d.D, d.D, 0.0f,
                           dv + r0 * ld, ld);
            if (st) return st;
            /* dP for rows r0.. = dY V^T over the keys they see. */
            st = po__sgemm(false, true, rows, r0 + rows, d.hd, 1.0f, dy + r0 * d.D, d.D, v, ld, 0.0f, ds + r0 * T, T);
            if (st) return st;
        }
        softmax_grad_causal_rows(ds, p, T);
        for (int64_t r0 = 0; r0 < T; r0 += BLOCK) {
            int64_t rows = min64(BLOCK, T - r0);
            st = po__sgemm(false, false, rows, d.hd, r0 + rows, d.scale, ds + r0 * T, T, k, ld, 0.0f, dq + r0 * ld, ld);
            if (st) return st;
            st = po__sgemm(true, false, rows, d.hd, T - r0, d.scale, ds + r0 * T + r0, T, q + r0 * ld, ld, 0.0f,
                           dk + r0 * ld, ld);
            if (st) return st;
        }
    }
    return PO_OK;
}

const po_op_def po_op_def_causal_attention_grad = {.name = "causal_attention_grad",
                                                   .infer = attn_grad_infer,
                                                   .cost = attn_grad_cost,
                                                   .cpu_units = attn_units,
                                                   .cpu_run_units = attn_grad_run_units};

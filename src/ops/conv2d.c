/* CONV2D and its backward ops, PyTorch's nn.Conv2d layout (x NCHW, w OIHW), on oneDNN.
 *
 * Attributes, all four ops: ai[0] stride_h, ai[1] stride_w, ai[2] pad_h, ai[3] pad_w (zero
 * padding on each side). The backward ops also store the shape they produce, so the forward
 * tensors they do not read need not stay alive:
 *   CONV2D(x, w[, b])           -> y[N, O, OH, OW]
 *   CONV2D_GRAD_INPUT(gy, w)    -> dx; ai[4..7] = N, C, H, W
 *   CONV2D_GRAD_WEIGHT(gy, x)   -> dw; ai[4..7] = O, C, KH, KW
 *   CONV2D_GRAD_BIAS(gy)        -> db[O] = sum of gy over N, OH, OW
 *
 * Layouts. On plain nchw/oihw buffers oneDNN (2.6) runs convolutions only with its im2col +
 * GEMM kernels ("x64:gemm:jit"); given format_tag_any it picks its direct JIT kernels
 * ("jit:avx2" on Zen 3, "jit:avx512_core" where available) on channel-blocked layouts
 * (nChw8c, OIhw8i8o). Best-of-40 times on one Zen 3 core for the cifar_cnn layers at batch 64
 * (bench/bench_conv.c; ms, plain vs any with the reorders from and to nchw included):
 *   3->32 on 32x32:   fwd 3.6 vs 2.4   bwd_data 4.6 vs 5.7   bwd_weights 4.2 vs 2.8
 *   32->64 on 16x16:  fwd 10.7 vs 8.4  bwd_data 12.5 vs 7.9  bwd_weights 13.1 vs 10.2
 * So primitives are created with format_tag_any, and each argument whose chosen layout is not
 * plain goes through a reorder (made with the primitive) into a buffer carved from the node's
 * scratch space, which infer sizes for the widest channel blocking. The exception is the input
 * gradient of a layer with fewer than 8 input channels (an image): the blocked diff_src pads
 * the channels to 8, so most of that work is padding, and plain GEMM wins (the 3->32 bwd_data
 * above). Where oneDNN has only its reference kernel for the preferred layouts, the other
 * layouts are used if they get a real one (make_prim). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_util.h"
#include "ops/ops_util.h"

/* Geometry of one convolution, whichever op of the family describes it. */
typedef struct geom {
    int64_t n, c, h, w; /* input */
    int64_t o, kh, kw;  /* weight (o, c, kh, kw) */
    int64_t oh, ow;     /* output */
    int64_t sh, sw, ph, pw;
} geom;

static int64_t out_extent(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

static geom make_geom(const int64_t *x, const int64_t *w, const int64_t *attr) {
    geom g = {x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, attr[0], attr[1], attr[2], attr[3]};
    g.oh = out_extent(g.h, g.kh, g.sh, g.ph);
    g.ow = out_extent(g.w, g.kw, g.sw, g.pw);
    return g;
}

/* The geometry of n from its inputs and attributes (inference has validated them). */
static geom node_geom(const po_node *n) {
    switch (n->op) {
    case PO_OP_CONV2D: return make_geom(n->in[0]->shape.dim, n->in[1]->shape.dim, n->ai);
    case PO_OP_CONV2D_GRAD_INPUT: return make_geom(&n->ai[4], n->in[1]->shape.dim, n->ai);
    default: return make_geom(n->in[1]->shape.dim, &n->ai[4], n->ai);
    }
}

/* Checks a convolution's attributes and shapes; the caller has checked ranks and dtypes. */
static po_status check_geom(const int64_t *x, const int64_t *w, const int64_t *attr) {
    if (attr[0] < 1 || attr[1] < 1)
        return po_fail(PO_ERR_INVALID_ARG, "stride must be at least 1, got %lldx%lld", (long long)attr[0],
                       (long long)attr[1]);
    if (attr[2] < 0 || attr[3] < 0)
        return po_fail(PO_ERR_INVALID_ARG, "padding must not be negative, got %lldx%lld", (long long)attr[2],
                       (long long)attr[3]);
    if (x[1] != w[1])
        return po_fail(PO_ERR_SHAPE, "input has %lld channels but the weight expects %lld", (long long)x[1],
                       (long long)w[1]);
    if (w[2] > x[2] + 2 * attr[2] || w[3] > x[3] + 2 * attr[3])
        return po_fail(PO_ERR_SHAPE, "kernel %lldx%lld is larger than the padded input %lldx%lld", (long long)w[2],
                       (long long)w[3], (long long)(x[2] + 2 * attr[2]), (long long)(x[3] + 2 * attr[3]));
    return PO_OK;
}

static po_status want_rank4(const po_node *n, int i, const char *what) {
    po_status st = po__want_f32(n, i);
    if (st) return st;
    if (n->in[i]->shape.ndim != 4)
        return po_fail(PO_ERR_SHAPE, "%s must be 4-D, got rank %d", what, n->in[i]->shape.ndim);
    return PO_OK;
}

/* Scratch for the reorders of the three tensors a primitive of this family touches: a bound
 * on each one's channel-blocked size (dims 0 and 1 of weights, dim 1 of activations). */
static size_t reorder_scratch(const geom *g) {
    int64_t x[4] = {g->n, g->c, g->h, g->w}, w[4] = {g->o, g->c, g->kh, g->kw}, y[4] = {g->n, g->o, g->oh, g->ow};
    return po__dnnl_blocked_bound(4, x, 2u) + po__dnnl_blocked_bound(4, w, 3u) + po__dnnl_blocked_bound(4, y, 2u);
}

/* The gradient for y must have the forward output's shape. */
static po_status check_gy(const po_node *n, const geom *g) {
    const po_shape *gy = &n->in[0]->shape;
    po_shape want = PO_SHAPE(g->n, g->o, g->oh, g->ow);
    if (!po_shape_equal(gy, &want)) return po__shape_error("output gradient does not match the convolution", gy, &want);
    return PO_OK;
}

static po_status conv_infer(po_node *n) {
    po_status st;
    if ((st = want_rank4(n, 0, "conv2d input x")) || (st = want_rank4(n, 1, "conv2d weight"))) return st;
    if (n->n_in == 3) {
        if ((st = po__want_f32(n, 2))) return st;
        const po_shape *b = &n->in[2]->shape;
        if (b->ndim != 1 || b->dim[0] != n->in[1]->shape.dim[0])
            return po__shape_error("bias must be [out_channels]", b, &n->in[1]->shape);
    }
    if ((st = check_geom(n->in[0]->shape.dim, n->in[1]->shape.dim, n->ai))) return st;
    geom g = node_geom(n);
    n->shape = PO_SHAPE(g.n, g.o, g.oh, g.ow);
    n->scratch_bytes = reorder_scratch(&g);
    return PO_OK;
}

static po_status grad_input_infer(po_node *n) {
    po_status st;
    if ((st = want_rank4(n, 0, "output gradient")) || (st = want_rank4(n, 1, "conv2d weight"))) return st;
    for (int i = 4; i < 8; i++)
        if (n->ai[i] < 1) return po_fail(PO_ERR_SHAPE, "input shape attribute must be positive");
    if ((st = check_geom(&n->ai[4], n->in[1]->shape.dim, n->ai))) return st;
    geom g = node_geom(n);
    if ((st = check_gy(n, &g))) return st;
    n->shape = po_shape_make(4, &n->ai[4]);
    n->scratch_bytes = reorder_scratch(&g);
    return PO_OK;
}

static po_status grad_weight_infer(po_node *n) {
    po_status st;
    if ((st = want_rank4(n, 0, "output gradient")) || (st = want_rank4(n, 1, "conv2d input x"))) return st;
    for (int i = 4; i < 8; i++)
        if (n->ai[i] < 1) return po_fail(PO_ERR_SHAPE, "weight shape attribute must be positive");
    if ((st = check_geom(n->in[1]->shape.dim, &n->ai[4], n->ai))) return st;
    geom g = node_geom(n);
    if ((st = check_gy(n, &g))) return st;
    n->shape = po_shape_make(4, &n->ai[4]);
    n->scratch_bytes = reorder_scratch(&g);
    return PO_OK;
}

static po_status grad_bias_infer(po_node *n) {
    po_status st = want_rank4(n, 0, "output gradient");
    if (st) return st;
    n->shape = PO_SHAPE(n->in[0]->shape.dim[1]);
    n->scratch_bytes = (size_t)n->shape.dim[0] * sizeof(double);
    return PO_OK;
}

static void conv_grad(po_graph *g, po_node *n, po_node *gy) {
    po_node *x = n->in[0], *w = n->in[1];
    int64_t ai[PO_ATTR_INTS] = {n->ai[0], n->ai[1], n->ai[2], n->ai[3]};
    if (po__wants_grad(n, 0)) {
        memcpy(&ai[4], x->shape.dim, 4 * sizeof ai[0]);
        po_node *in[2] = {gy, w};
        po__acc_grad(g, x, po__node_new(g, PO_OP_CONV2D_GRAD_INPUT, 2, in, ai, NULL));
    }
    if (po__wants_grad(n, 1)) {
        memcpy(&ai[4], w->shape.dim, 4 * sizeof ai[0]);
        po_node *in[2] = {gy, x};
        po__acc_grad(g, w, po__node_new(g, PO_OP_CONV2D_GRAD_WEIGHT, 2, in, ai, NULL));
    }
    if (n->n_in == 3 && po__wants_grad(n, 2)) {
        po_node *in[1] = {gy};
        po__acc_grad(g, n->in[2], po__node_new(g, PO_OP_CONV2D_GRAD_BIAS, 1, in, NULL, NULL));
    }
}

/* --- cost ----------------------------------------------------------------------------------- */

static double macs(const geom *g) {
    return (double)g->n * (double)g->o * (double)g->oh * (double)g->ow * (double)g->c * (double)g->kh * (double)g->kw;
}

static void conv_cost(const po_node *n, po_op_cost *c) {
    geom g = node_geom(n);
    double out = (double)po__numel(n);
    c->flops = 2.0 * macs(&g) + (n->n_in == 3 ? out : 0.0);
    c->bytes_read = 0.0;
    for (int i = 0; i < n->n_in; i++)
        c->bytes_read += (double)po__nbytes(n->in[i]);
    c->bytes_written = (double)po__nbytes(n);
}

static void conv_bwd_cost(const po_node *n, po_op_cost *c) {
    geom g = node_geom(n);
    c->flops = 2.0 * macs(&g);
    c->bytes_read = (double)(po__nbytes(n->in[0]) + po__nbytes(n->in[1]));
    c->bytes_written = (double)po__nbytes(n);
}

static void grad_bias_cost(const po_node *n, po_op_cost *c) {
    c->flops = (double)po__numel(n->in[0]);
    c->bytes_read = (double)po__nbytes(n->in[0]);
    c->bytes_written = (double)po__nbytes(n);
}

/* --- oneDNN kernels --------------------------------------------------------------------------- */

typedef enum { KIND_FWD, KIND_BWD_DATA, KIND_BWD_WEIGHTS } prim_kind;

/* Primitive descriptor of one kind for g, with blocked (`any`) or plain layouts. Backward
 * descriptors need the forward one as a hint; it is made here and dropped. */
static po_status make_pd(const geom *g, prim_kind kind, bool bias, bool any, dnnl_primitive_desc_t *pd) {
    int64_t xd[4] = {g->n, g->c, g->h, g->w}, wd[4] = {g->o, g->c, g->kh, g->kw};
    int64_t yd[4] = {g->n, g->o, g->oh, g->ow}, bd[1] = {g->o};
    dnnl_memory_desc_t x, w, y, b;
    po_status st;
    if ((st = po__dnnl_md(&x, 4, xd, any)) || (st = po__dnnl_md(&w, 4, wd, any)) ||
        (st = po__dnnl_md(&y, 4, yd, any)) || (st = po__dnnl_md(&b, 1, bd, false)))
        return st;
    /* Symmetric padding: with the output extent floored as PyTorch does, oneDNN accepts it
     * and simply leaves the input rows and columns that no window reaches unread. */
    dnnl_dims_t strides = {g->sh, g->sw}, pad = {g->ph, g->pw};
    dnnl_convolution_desc_t fwd, bwd;
    st = po__dnnl_check(dnnl_convolution_forward_desc_init(&fwd, dnnl_forward_training, dnnl_convolution_direct, &x, &w,
                                                           bias ? &b : NULL, &y, strides, pad, pad),
                        "convolution descriptor");
    if (st) return st;
    if (kind == KIND_FWD) return po__dnnl_pd(pd, &fwd, NULL, false);
    dnnl_primitive_desc_t hint;
    if ((st = po__dnnl_pd(&hint, &fwd, NULL, false))) return st;
    if (kind == KIND_BWD_DATA)
        st = po__dnnl_check(
            dnnl_convolution_backward_data_desc_init(&bwd, dnnl_convolution_direct, &x, &w, &y, strides, pad, pad),
            "convolution descriptor");
    else
        st = po__dnnl_check(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &x, &w, NULL, &y,
                                                                        strides, pad, pad),
                            "convolution descriptor");
    if (!st) st = po__dnnl_pd(pd, &bwd, hint, false);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static bool is_ref(const_dnnl_primitive_desc_t pd) { return strncmp(po__dnnl_impl(pd), "ref", 3) == 0; }

/* Builds *out, the primitive of kind for node n at `batch` samples (the node's own or a slice
 * of it), on the layouts the header comment explains, except where oneDNN would run its
 * reference kernel on them and has a real one for the other layouts. */
static po_status make_prim(const po_node *n, prim_kind kind, int64_t batch, po_dnnl_prim *out) {
    geom g = node_geom(n);
    g.n = batch;
    bool bias = kind == KIND_FWD && n->n_in == 3;
    bool any = !(kind == KIND_BWD_DATA && g.c < 8);
    dnnl_primitive_desc_t pd, other;
    po_status st = make_pd(&g, kind, bias, any, &pd);
    if (st) return st;
    if (is_ref(pd) && !make_pd(&g, kind, bias, !any, &other)) {
        if (is_ref(other)) {
            dnnl_primitive_desc_destroy(other);
        } else {
            dnnl_primitive_desc_destroy(pd);
            pd = other;
        }
    }
    int64_t xd[4] = {g.n, g.c, g.h, g.w}, wd[4] = {g.o, g.c, g.kh, g.kw}, yd[4] = {g.n, g.o, g.oh, g.ow};
    int64_t bd[1] = {g.o};
    dnnl_memory_desc_t x, w, y, b;
    po_dnnl_arg_spec spec[4];
    int n_args = 0;
    if (!(st = po__dnnl_md(&x, 4, xd, false)) && !(st = po__dnnl_md(&w, 4, wd, false)) &&
        !(st = po__dnnl_md(&y, 4, yd, false)) && !(st = po__dnnl_md(&b, 1, bd, false))) {
        /* Argument order = order of the node's buffers at run time (inputs, then output). */
        switch (kind) {
        case KIND_FWD:
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_SRC, x, false};
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_WEIGHTS, w, false};
            if (bias) spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_BIAS, b, false};
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_DST, y, true};
            break;
        case KIND_BWD_DATA:
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_DST, y, false};
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_WEIGHTS, w, false};
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_SRC, x, true};
            break;
        case KIND_BWD_WEIGHTS:
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_DST, y, false};
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_SRC, x, false};
            spec[n_args++] = (po_dnnl_arg_spec){DNNL_ARG_DIFF_WEIGHTS, w, true};
            break;
        }
        st = po__dnnl_prim_init(out, pd, n_args, spec, n->scratch_bytes);
    }
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* A primitive for a slice of the batch (operator split), in use by at most one thread. */
typedef struct slice_prim {
    int64_t n; /* samples */
    bool busy;
    po_dnnl_prim p;
} slice_prim;

/* A node's kernels: the primitive for its whole batch and, made when operator split first asks
 * for them, primitives for the slices its members take (oneDNN fixes the batch size when it
 * makes a convolution primitive). A wrapped primitive runs on one thread at a time, so members
 * that take slices of the same size at once each get one of their own. */
typedef struct conv_state {
    po_dnnl_prim whole;
    prim_kind kind;
    pthread_mutex_t lock; /* guards the pool */
    slice_prim **pool;
    int n_pool, cap_pool;
} conv_state;

static void state_free(void *state) {
    conv_state *s = state;
    if (!s) return;
    po__dnnl_prim_free(&s->whole);
    for (int i = 0; i < s->n_pool; i++) {
        po__dnnl_prim_free(&s->pool[i]->p);
        free(s->pool[i]);
    }
    free(s->pool);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static po_status state_new(const po_node *n, prim_kind kind, void **state) {
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return po_fail(PO_ERR_NO_MEMORY, "out of memory for a convolution primitive");
    s->kind = kind;
    pthread_mutex_init(&s->lock, NULL);
    po_status st = make_prim(n, kind, node_geom(n).n, &s->whole);
    if (st) {
        state_free(s);
        return st;
    }
    *state = s;
    return PO_OK;
}

/* A free primitive for slices of `samples`, marked busy: found in the pool or made and added. */
static po_status slice_acquire(conv_state *s, const po_node *n, int64_t samples, slice_prim **out) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_pool; i++)
        if (s->pool[i]->n == samples && !s->pool[i]->busy) {
            s->pool[i]->busy = true;
            *out = s->pool[i];
            pthread_mutex_unlock(&s->lock);
            return PO_OK;
        }
    pthread_mutex_unlock(&s->lock);
    slice_prim *sp = calloc(1, sizeof *sp);
    if (!sp) return po_fail(PO_ERR_NO_MEMORY, "out of memory for a convolution primitive");
    po_status st = make_prim(n, s->kind, samples, &sp->p); /* slow (milliseconds): outside the lock */
    if (st) {
        free(sp);
        return st;
    }
    sp->n = samples;
    sp->busy = true;
    pthread_mutex_lock(&s->lock);
    if (s->n_pool == s->cap_pool) {
        int cap = s->cap_pool ? 2 * s->cap_pool : 4;
        slice_prim **grown = realloc(s->pool, (size_t)cap * sizeof *grown);
        if (grown) s->pool = grown, s->cap_pool = cap;
    }
    bool kept = s->n_pool < s->cap_pool;
    if (kept) s->pool[s->n_pool++] = sp;
    pthread_mutex_unlock(&s->lock);
    if (!kept) {
        po__dnnl_prim_free(&sp->p);
        free(sp);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for a convolution primitive");
    }
    *out = sp;
    return PO_OK;
}

static void slice_release(conv_state *s, slice_prim *sp) {
    pthread_mutex_lock(&s->lock);
    sp->busy = false;
    pthread_mutex_unlock(&s->lock);
}

static po_status conv_init(const po_node *n, void **state) { return state_new(n, KIND_FWD, state); }
static po_status grad_input_init(const po_node *n, void **state) { return state_new(n, KIND_BWD_DATA, state); }
static po_status grad_weight_init(const po_node *n, void **state) { return state_new(n, KIND_BWD_WEIGHTS, state); }

/* Runs p on the node's buffers, the first `n_sliced` inputs and the output replaced by in[] and
 * out (slices of them). */
static po_status run_on(po_dnnl_prim *p, const po_kargs *a, const float *const *in, int n_sliced, float *out) {
    void *bufs[4];
    int k = 0;
    for (int i = 0; i < a->node->n_in; i++)
        bufs[k++] = (void *)(i < n_sliced ? in[i] : a->in[i]);
    bufs[k] = out;
    return po__dnnl_prim_run(p, bufs, a->scratch);
}

static po_status prim_run(const po_kargs *a) {
    conv_state *s = a->state;
    return run_on(&s->whole, a, NULL, 0, a->out);
}

/* Operator split's units: samples. The forward and input-gradient convolutions compute theirs
 * independently; the weight gradient sums over them (units_sum: each slice's is added up). */
static int64_t conv_units(const po_node *n) { return node_geom(n).n; }

/* Samples [begin, end): slices of the per-sample tensors (forward: x in, y out; input gradient:
 * gy in, dx out; weight gradient: gy and x in, the whole dw out), the rest whole. */
static po_status conv_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    conv_state *s = a->state;
    geom g = node_geom(a->node);
    if (begin == 0 && end == g.n) return prim_run(a);
    int64_t xs = g.c * g.h * g.w, ys = g.o * g.oh * g.ow;
    const float *in0 = a->in[0], *in1 = a->in[1];
    const float *in[2];
    int n_sliced = 1;
    float *out = a->out;
    switch (s->kind) {
    case KIND_FWD: in[0] = in0 + begin * xs, out += begin * ys; break;
    case KIND_BWD_DATA: in[0] = in0 + begin * ys, out += begin * xs; break;
    case KIND_BWD_WEIGHTS: in[0] = in0 + begin * ys, in[1] = in1 + begin * xs, n_sliced = 2; break;
    }
    slice_prim *sp = NULL;
    po_status st = slice_acquire(s, a->node, end - begin, &sp);
    if (st) return st;
    st = run_on(&sp->p, a, in, n_sliced, out);
    slice_release(s, sp);
    return st;
}

/* Walks gy once in memory order; each OH*OW plane is summed into 32 float lanes (independent
 * vector chains, so the adds pipeline) and the plane sums are added up per channel in double
 * (the scratch space), so the result does not drift with the batch size. */
static po_status grad_bias_run(const po_kargs *a) {
    enum { LANES = 32 };
    const po_shape *s = &a->node->in[0]->shape;
    int64_t n = s->dim[0], o = s->dim[1], hw = s->dim[2] * s->dim[3];
    const float *gy = a->in[0];
    double *acc = a->scratch;
    float *db = a->out;
    memset(acc, 0, (size_t)o * sizeof *acc);
    for (int64_t b = 0; b < n; b++)
        for (int64_t c = 0; c < o; c++) {
            const float *p = gy + (b * o + c) * hw;
            float lane[LANES] = {0}, sum = 0.0f;
            int64_t i = 0;
            for (; i + LANES <= hw; i += LANES)
#pragma omp simd
                for (int l = 0; l < LANES; l++)
                    lane[l] += p[i + l];
            for (; i < hw; i++)
                sum += p[i];
            for (int l = 0; l < LANES; l++)
                sum += lane[l];
            acc[c] += sum;
        }
    for (int64_t c = 0; c < o; c++)
        db[c] = (float)acc[c];
    return PO_OK;
}

const po_op_def po_op_def_conv2d = {.name = "conv2d",
                                    .infer = conv_infer,
                                    .grad = conv_grad,
                                    .cost = conv_cost,
                                    .cpu_init = conv_init,
                                    .cpu_free = state_free,
                                    .cpu_run = prim_run,
                                    .cpu_units = conv_units,
                                    .cpu_run_units = conv_run_units};
const po_op_def po_op_def_conv2d_grad_input = {.name = "conv2d_grad_input",
                                               .infer = grad_input_infer,
                                               .cost = conv_bwd_cost,
                                               .cpu_init = grad_input_init,
                                               .cpu_free = state_free,
                                               .cpu_run = prim_run,
                                               .cpu_units = conv_units,
                                               .cpu_run_units = conv_run_units};
const po_op_def po_op_def_conv2d_grad_weight = {.name = "conv2d_grad_weight",
                                                .infer = grad_weight_infer,
                                                .cost = conv_bwd_cost,
                                                .cpu_init = grad_weight_init,
                                                .cpu_free = state_free,
                                                .cpu_run = prim_run,
                                                .cpu_units = conv_units,
                                                .cpu_run_units = conv_run_units,
                                                .units_sum = true};
const po_op_def po_op_def_conv2d_grad_bias = {
    .name = "conv2d_grad_bias", .infer = grad_bias_infer, .cost = grad_bias_cost, .cpu_run = grad_bias_run};

po_conv2d_opts po_conv2d_opts_default(void) {
    po_conv2d_opts o = {1, 1, 0, 0};
    return o;
}

po_node *po_conv2d(po_graph *g, po_node *x, po_node *w, po_node *b, po_conv2d_opts opts) {
    int64_t ai[PO_ATTR_INTS] = {opts.stride_h, opts.stride_w, opts.pad_h, opts.pad_w};
    po_node *in[3] = {x, w, b};
    return po__node_new(g, PO_OP_CONV2D, b ? 3 : 2, in, ai, NULL);
}

/* conv2d and max_pool2d: forward and every gradient against naive double-precision loops for
 * many shapes, gradients also against central differences, pooling's tie and NaN rules against
 * values PyTorch 1.13 produced, costs, and argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "runtime/exec_internal.h"
#include "ops/op_def.h"
#include "po_test.h"

/* ---- conv2d ------------------------------------------------------------------------------ */

typedef struct conv_case {
    int n, c, h, w, o, kh, kw, sh, sw, ph, pw;
    bool bias;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0, true},     /* 1x1, the smallest */
    {3, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, true},     /* 3x3 same padding, non-square image */
    {2, 3, 9, 8, 5, 5, 5, 2, 2, 2, 2, true},     /* 5x5, stride 2, padding 2 */
    {1, 3, 6, 7, 2, 2, 3, 1, 2, 0, 1, false},    /* 2x3 kernel, per-axis stride and padding */
    {3, 1, 8, 5, 3, 3, 3, 2, 1, 1, 0, true},     /* C = 1 */
    {2, 4, 5, 5, 3, 1, 1, 2, 2, 0, 0, true},     /* 1x1, stride 2 */
    {1, 2, 4, 4, 2, 5, 5, 1, 1, 2, 2, true},     /* kernel larger than the unpadded image */
    {2, 3, 8, 8, 4, 3, 3, 2, 2, 0, 0, false},    /* last row and column reached by no window */
    {1, 1, 3, 3, 1, 1, 1, 1, 1, 2, 2, true},     /* padding wider than the kernel */
    {2, 17, 6, 6, 9, 3, 3, 1, 1, 1, 1, true},    /* channels not a multiple of the block */
    {2, 3, 32, 32, 32, 3, 3, 1, 1, 1, 1, true},  /* cifar_cnn layer 1 */
    {2, 32, 16, 16, 64, 3, 3, 1, 1, 1, 1, true}, /* cifar_cnn layer 2 */
};

static int64_t oh_of(const conv_case *k) { return (k->h + 2 * k->ph - k->kh) / k->sh + 1; }
static int64_t ow_of(const conv_case *k) { return (k->w + 2 * k->pw - k->kw) / k->sw + 1; }

/* Naive convolution and its gradients for loss sum(y * gy), in double, with the sums of
 * absolute terms (for a rounding-aware tolerance). */
typedef struct conv_ref {
    double *y, *y_abs, *dx, *dx_abs, *dw, *dw_abs, *db, *db_abs;
} conv_ref;

static void conv_reference(const conv_case *k, const float *x, const float *w, const float *b, const float *gy,
                           conv_ref *r) {
    int64_t oh = oh_of(k), ow = ow_of(k);
    size_t ny = (size_t)k->n * k->o * oh * ow, nx = (size_t)k->n * k->c * k->h * k->w;
    size_t nw = (size_t)k->o * k->c * k->kh * k->kw;
    r->y = calloc(ny, sizeof(double));
    r->y_abs = calloc(ny, sizeof(double));
    r->dx = calloc(nx, sizeof(double));
    r->dx_abs = calloc(nx, sizeof(double));
    r->dw = calloc(nw, sizeof(double));
    r->dw_abs = calloc(nw, sizeof(double));
    r->db = calloc((size_t)k->o, sizeof(double));
    r->db_abs = calloc((size_t)k->o, sizeof(double));
    for (int n = 0; n < k->n; n++)
        for (int o = 0; o < k->o; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    size_t yi = (((size_t)n * k->o + o) * oh + i) * ow + j;
                    double acc = b ? b[o] : 0.0, abs_acc = b ? fabs(b[o]) : 0.0, g = gy[yi];
                    r->db[o] += g;
                    r->db_abs[o] += fabs(g);
                    for (int c = 0; c < k->c; c++)
                        for (int u = 0; u < k->kh; u++)
                            for (int v = 0; v < k->kw; v++) {
                                int64_t hh = i * k->sh - k->ph + u, ww = j * k->sw - k->pw + v;
                                if (hh < 0 || hh >= k->h || ww < 0 || ww >= k->w) continue;
                                size_t xi = (((size_t)n * k->c + c) * k->h + hh) * k->w + ww;
                                size_t wi = (((size_t)o * k->c + c) * k->kh + u) * k->kw + v;
                                acc += (double)x[xi] * w[wi];
                                abs_acc += fabs((double)x[xi] * w[wi]);
                                r->dx[xi] += g * w[wi];
                                r->dx_abs[xi] += fabs(g * w[wi]);
                                r->dw[wi] += g * x[xi];
                                r->dw_abs[wi] += fabs(g * x[xi]);
                            }
                    r->y[yi] = acc;
                    r->y_abs[yi] = abs_acc;
                }
}

static void conv_ref_free(conv_ref *r) {
    free(r->y), free(r->y_abs), free(r->dx), free(r->dx_abs);
    free(r->dw), free(r->dw_abs), free(r->db), free(r->db_abs);
}

/* Largest |got - want| / (tolerance at that element), > 1 is a failure. */
static double rel_excess(const float *got, const double *want, const double *abs_sum, size_t n, const char *what,
                         int case_no) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double tol = 2e-5 * abs_sum[i] + 1e-6, e = fabs((double)got[i] - want[i]) / tol;
        if (!(e <= worst)) worst = e;
        if (!(e <= 1.0) && worst == e)
            print_message("case %d %s[%zu]: got %.9g want %.9g\n", case_no, what, i, got[i], want[i]);
    }
    return worst;
}

static int count_op(po_graph *g, po_op op) {
    int k = 0;
    for (int i = 0; i < po_graph_size(g); i++)
        k += po_node_op(po_graph_node(g, i)) == op;
    return k;
}

/* Builds y = conv(x, w, b) with x, w, b parameters, loss = sum(y * R), and checks y and every
 * gradient against the reference. */
static void check_conv_case(int case_no, const conv_case *k) {
    po_graph *g = po_graph_new();
    po_node *x = po_param(g, "x", PO_SHAPE(k->n, k->c, k->h, k->w), po_init_uniform_fan_in(1));
    po_node *w = po_param(g, "w", PO_SHAPE(k->o, k->c, k->kh, k->kw), po_init_uniform_fan_in(1));
    po_node *b = k->bias ? po_param(g, "b", PO_SHAPE(k->o), po_init_uniform_fan_in(1)) : NULL;
    po_conv2d_opts opts = {k->sh, k->sw, k->ph, k->pw};
    po_node *y = po_conv2d(g, x, w, b, opts);
    assert_non_null(y);
    po_shape ys = po_node_shape(y), want_shape = PO_SHAPE(k->n, k->o, oh_of(k), ow_of(k));
    assert_true(po_shape_equal(&ys, &want_shape));
    po_graph_keep(g, y);
    po_node *R = po_input(g, "R", PO_F32, ys);
    po_node *loss = po_sum_to(g, po_mul(g, y, R), po_shape_make(0, NULL));
    PO_CHECK(po_graph_backward(g, loss));
    assert_int_equal(count_op(g, PO_OP_CONV2D_GRAD_INPUT), 1);
    assert_int_equal(count_op(g, PO_OP_CONV2D_GRAD_WEIGHT), 1);
    assert_int_equal(count_op(g, PO_OP_CONV2D_GRAD_BIAS), k->bias ? 1 : 0);

    po_test_run r;
    po_test_run_new(g, 100 + (uint64_t)case_no, &r);
    float *gy = po_exec_input_data(r.exec, R);
    po_test_fill_uniform(gy, po_shape_numel(&ys), -1.0f, 1.0f, 200 + (uint64_t)case_no);
    /* Run twice: the second run must not depend on what the first left in shared buffers. */
    PO_CHECK(po_exec_run(r.exec));
    PO_CHECK(po_exec_run(r.exec));

    conv_ref ref;
    conv_reference(k, po_test_param(&r, "x"), po_test_param(&r, "w"), k->bias ? po_test_param(&r, "b") : NULL, gy,
                   &ref);
    size_t nx = (size_t)k->n * k->c * k->h * k->w, nw = (size_t)k->o * k->c * k->kh * k->kw;
    double e = rel_excess(po_exec_output(r.exec, y), ref.y, ref.y_abs, (size_t)po_shape_numel(&ys), "y", case_no);
    e = fmax(e, rel_excess(po_test_grad(&r, "x"), ref.dx, ref.dx_abs, nx, "dx", case_no));
    e = fmax(e, rel_excess(po_test_grad(&r, "w"), ref.dw, ref.dw_abs, nw, "dw", case_no));
    if (k->bias) e = fmax(e, rel_excess(po_test_grad(&r, "b"), ref.db, ref.db_abs, (size_t)k->o, "db", case_no));
    if (!(e <= 1.0)) fail_msg("conv case %d exceeds the tolerance %.2f times", case_no, e);
    conv_ref_free(&ref);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void test_conv_against_naive(void **state) {
    (void)state;
    for (int i = 0; i < (int)(sizeof conv_cases / sizeof conv_cases[0]); i++)
        check_conv_case(i, &conv_cases[i]);
}

/* Central differences of L = sum(conv(x, w, b) * R) for x, w and b. */
static void test_conv_gradcheck(void **state) {
    (void)state;
    static const int picks[] = {1, 2, 3, 7, 9};
    for (int p = 0; p < (int)(sizeof picks / sizeof picks[0]); p++) {
        const conv_case *k = &conv_cases[picks[p]];
        po_graph *g = po_graph_new();
        po_node *x = po_param(g, "x", PO_SHAPE(k->n, k->c, k->h, k->w), po_init_uniform_fan_in(1));
        po_node *w = po_param(g, "w", PO_SHAPE(k->o, k->c, k->kh, k->kw), po_init_uniform_fan_in(1));
        po_node *b = k->bias ? po_param(g, "b", PO_SHAPE(k->o), po_init_uniform_fan_in(1)) : NULL;
        po_conv2d_opts opts = {k->sh, k->sw, k->ph, k->pw};
        po_node *y = po_conv2d(g, x, w, b, opts);
        po_gradcheck_opts o = po_gradcheck_defaults();
        o.h = 0.1; /* the loss is linear in each parameter: a wide step is exact and rounds less */
        o.tol = 1e-2;
        double err = po_gradcheck(g, y, NULL, NULL, &o);
        if (!(err <= o.tol)) fail_msg("conv case %d: gradient error %g", picks[p], err);
        po_graph_free(g);
    }
}

/* An image input gets no input-gradient node; weight and bias gradients are still right. */
static void test_conv_input_without_grad(void **state) {
    (void)state;
    const conv_case *k = &conv_cases[1];
    po_graph *g = po_graph_new();
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(k->n, k->c, k->h, k->w));
    po_node *w = po_param(g, "w", PO_SHAPE(k->o, k->c, k->kh, k->kw), po_init_uniform_fan_in(1));
    po_node *b = po_param(g, "b", PO_SHAPE(k->o), po_init_uniform_fan_in(1));
    po_conv2d_opts opts = {k->sh, k->sw, k->ph, k->pw};
    po_node *y = po_conv2d(g, x, w, b, opts);
    po_shape ys = po_node_shape(y);
    po_node *R = po_input(g, "R", PO_F32, ys);
    PO_CHECK(po_graph_backward(g, po_sum_to(g, po_mul(g, y, R), po_shape_make(0, NULL))));
    assert_int_equal(count_op(g, PO_OP_CONV2D_GRAD_INPUT), 0);
    po_test_run r;
    po_test_run_new(g, 7, &r);
    float *xv = po_exec_input_data(r.exec, x), *gy = po_exec_input_data(r.exec, R);
    po_test_fill_uniform(xv, k->n * k->c * k->h * k->w, -1.0f, 1.0f, 8);
    po_test_fill_uniform(gy, po_shape_numel(&ys), -1.0f, 1.0f, 9);
    PO_CHECK(po_exec_run(r.exec));
    conv_ref ref;
    conv_reference(k, xv, po_test_param(&r, "w"), po_test_param(&r, "b"), gy, &ref);
    double e = rel_excess(po_test_grad(&r, "w"), ref.dw, ref.dw_abs, (size_t)k->o * k->c * k->kh * k->kw, "dw", 1);
    e = fmax(e, rel_excess(po_test_grad(&r, "b"), ref.db, ref.db_abs, (size_t)k->o, "db", 1));
    assert_true(e <= 1.0);
    conv_ref_free(&ref);
    po_test_run_free(&r);
    po_graph_free(g);
}

/* With less scratch space than its reorders need (a caller that sized it differently), the
 * kernel allocates its own buffers and still computes the right thing. */
static void test_conv_without_scratch(void **state) {
    (void)state;
    const conv_case *k = &conv_cases[9];
    po_graph *g = po_graph_new();
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(k->n, k->c, k->h, k->w));
    po_node *w = po_param(g, "w", PO_SHAPE(k->o, k->c, k->kh, k->kw), po_init_uniform_fan_in(1));
    po_conv2d_opts opts = {k->sh, k->sw, k->ph, k->pw};
    po_node *y = po_conv2d(g, x, w, NULL, opts);
    assert_non_null(y);
    assert_true(y->scratch_bytes > 0);
    y->scratch_bytes = 0;
    size_t nx = (size_t)k->n * k->c * k->h * k->w, nw = (size_t)k->o * k->c * k->kh * k->kw;
    size_t ny = (size_t)po__numel(y);
    float *xv = malloc(nx * sizeof *xv), *wv = malloc(nw * sizeof *wv), *yv = malloc(ny * 4);
    float *gy = calloc(ny, sizeof *gy);
    po_test_fill_uniform(xv, (int64_t)nx, -1.0f, 1.0f, 11);
    po_test_fill_uniform(wv, (int64_t)nw, -1.0f, 1.0f, 12);
    const po_op_def *def = po__op_def(PO_OP_CONV2D);
    void *st = NULL;
    PO_CHECK(def->cpu_init(y, &st));
    const void *in[2] = {xv, wv};
    void *in_aux[2] = {NULL, NULL};
    po_kargs a = {.node = y, .out = yv, .in = in, .in_aux = in_aux, .state = st};
    PO_CHECK(po__op_run(def, &a));
    def->cpu_free(st);
    conv_ref ref;
    conv_reference(k, xv, wv, NULL, gy, &ref);
    assert_true(rel_excess(yv, ref.y, ref.y_abs, ny, "y", 9) <= 1.0);
    conv_ref_free(&ref);
    free(xv), free(wv), free(yv), free(gy);
    po_graph_free(g);
}

/* Operator split deals the forward and input-gradient convolutions out by sample
 * (cpu_run_units): slices of any size, each with a scratch area of its own and the same size
 * twice (two primitives of that size in the node's pool), agree with the naive reference and
 * with the whole node; the weight gradient's slices, added up, agree with the reference. */
static void run_conv_units(po_op op, const po_node *nd, const void **in, float *out, size_t n_out,
                           const int64_t (*cuts)[2], int n_cuts, const float *whole) {
    const po_op_def *def = po__op_def(op);
    assert_non_null(def->cpu_units);
    void *st = NULL;
    PO_CHECK(def->cpu_init(nd, &st));
    void *in_aux[3] = {NULL, NULL, NULL};
    for (int c = 0; c < n_cuts; c++) {
        for (size_t i = 0; i < n_out; i++)
            out[i] = NAN;
        for (int64_t b = cuts[c][0], r = 0; b < def->cpu_units(nd); b += cuts[c][1], r++) {
            int64_t e = b + cuts[c][1] < def->cpu_units(nd) ? b + cuts[c][1] : def->cpu_units(nd);
            void *scratch = nd->scratch_bytes ? po_aligned_calloc(nd->scratch_bytes) : NULL;
            po_kargs a = {.node = nd, .out = out, .in = in, .in_aux = in_aux, .state = st, .scratch = scratch};
            PO_CHECK(def->cpu_run_units(&a, b, e));
            po_aligned_free(scratch);
        }
        if (cuts[c][0] > 0) { /* the first samples, as one more slice */
            void *scratch = nd->scratch_bytes ? po_aligned_calloc(nd->scratch_bytes) : NULL;
            po_kargs a = {.node = nd, .out = out, .in = in, .in_aux = in_aux, .state = st, .scratch = scratch};
            PO_CHECK(def->cpu_run_units(&a, 0, cuts[c][0]));
            po_aligned_free(scratch);
        }
        double worst = 0.0;
        for (size_t i = 0; i < n_out; i++)
            worst = fmax(worst, isnan(out[i]) ? INFINITY : fabs(out[i] - whole[i]) / (1e-6 + 1e-5 * fabs(whole[i])));
        if (!(worst <= 1.0))
            fail_msg("%s by slices of %lld from %lld: %.3g of the tolerance off the whole node", po_op_name(op),
                     (long long)cuts[c][1], (long long)cuts[c][0], worst);
    }
    def->cpu_free(st);
}

static void test_conv_units(void **state) {
    (void)state;
    const conv_case cases[] = {
        {5, 32, 16, 16, 64, 3, 3, 1, 1, 1, 1, true}, /* cifar_cnn layer 2 */
        {4, 3, 9, 8, 5, 5, 5, 2, 2, 2, 2, false},    /* 5x5, stride 2, an image's 3 channels */
    };
    const int64_t cuts[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 2}, {0, 5}};
    for (size_t kc = 0; kc < sizeof cases / sizeof cases[0]; kc++) {
        const conv_case *k = &cases[kc];
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(k->n, k->c, k->h, k->w));
        po_node *w = po_input(g, "w", PO_F32, PO_SHAPE(k->o, k->c, k->kh, k->kw));
        po_node *b = k->bias ? po_input(g, "b", PO_F32, PO_SHAPE(k->o)) : NULL;
        po_conv2d_opts opts = {k->sh, k->sw, k->ph, k->pw};
        po_node *y = po_conv2d(g, x, w, b, opts);
        po_shape ys = po_node_shape(y);
        po_node *gy = po_input(g, "gy", PO_F32, ys);
        int64_t ai[PO_ATTR_INTS] = {k->sh, k->sw, k->ph, k->pw, k->n, k->c, k->h, k->w};
        po_node *gin[2] = {gy, w};
        po_node *dx = po__node_new(g, PO_OP_CONV2D_GRAD_INPUT, 2, gin, ai, NULL);
        assert_non_null(dx);
        size_t nx = (size_t)k->n * k->c * k->h * k->w, nw = (size_t)k->o * k->c * k->kh * k->kw;
        size_t ny = (size_t)po_shape_numel(&ys);
        float *xv = malloc(nx * 4), *wv = malloc(nw * 4), *bv = malloc((size_t)k->o * 4), *gyv = malloc(ny * 4);
        float *yv = malloc(ny * 4), *dxv = malloc(nx * 4), *whole_y = malloc(ny * 4), *whole_dx = malloc(nx * 4);
        po_test_fill_uniform(xv, (int64_t)nx, -1.0f, 1.0f, 21 + kc);
        po_test_fill_uniform(wv, (int64_t)nw, -1.0f, 1.0f, 22 + kc);
        po_test_fill_uniform(bv, k->o, -1.0f, 1.0f, 23 + kc);
        po_test_fill_uniform(gyv, (int64_t)ny, -1.0f, 1.0f, 24 + kc);
        conv_ref ref;
        conv_reference(k, xv, wv, k->bias ? bv : NULL, gyv, &ref);
        /* The whole nodes, against the naive reference. */
        void *in_aux[3] = {NULL, NULL, NULL};
        const void *fin[3] = {xv, wv, bv}, *bin[2] = {gyv, wv};
        for (int which = 0; which < 2; which++) {
            const po_node *nd = which ? dx : y;
            const po_op_def *def = po__op_def(po_node_op(nd));
            void *st = NULL, *scratch = nd->scratch_bytes ? po_aligned_calloc(nd->scratch_bytes) : NULL;
            PO_CHECK(def->cpu_init(nd, &st));
            po_kargs a = {.node = nd, .out = which ? whole_dx : whole_y, .in = which ? bin : fin, .in_aux = in_aux,
                          .state = st, .scratch = scratch};
            PO_CHECK(po__op_run(def, &a));
            def->cpu_free(st);
            po_aligned_free(scratch);
        }
        assert_true(rel_excess(whole_y, ref.y, ref.y_abs, ny, "y", (int)kc) <= 1.0);
        assert_true(rel_excess(whole_dx, ref.dx, ref.dx_abs, nx, "dx", (int)kc) <= 1.0);
        int n_cuts = (int)(sizeof cuts / sizeof cuts[0]);
        run_conv_units(PO_OP_CONV2D, y, fin, yv, ny, cuts, n_cuts, whole_y);
        run_conv_units(PO_OP_CONV2D_GRAD_INPUT, dx, bin, dxv, nx, cuts, n_cuts, whole_dx);
        /* The weight gradient: each slice's part into a buffer of its own, added up, against the
         * naive reference. */
        int64_t wai[PO_ATTR_INTS] = {k->sh, k->sw, k->ph, k->pw, k->o, k->c, k->kh, k->kw};
        po_node *win[2] = {gy, x};
        po_node *dw = po__node_new(g, PO_OP_CONV2D_GRAD_WEIGHT, 2, win, wai, NULL);
        const po_op_def *wdef = po__op_def(PO_OP_CONV2D_GRAD_WEIGHT);
        assert_true(wdef->units_sum);
        assert_int_equal(wdef->cpu_units(dw), k->n);
        void *wst = NULL;
        PO_CHECK(wdef->cpu_init(dw, &wst));
        const void *win_bufs[2] = {gyv, xv};
        float *sum = calloc(nw, sizeof *sum), *part = malloc(nw * sizeof *part);
        for (int64_t lo = 0, step = 2; lo < k->n; lo += step, step = 3 - step) { /* slices of 2, 1, 2, ... */
            int64_t hi = lo + step < k->n ? lo + step : k->n;
            void *scratch = dw->scratch_bytes ? po_aligned_calloc(dw->scratch_bytes) : NULL;
            po_kargs a = {.node = dw, .out = part, .in = win_bufs, .in_aux = in_aux, .state = wst, .scratch = scratch};
            PO_CHECK(wdef->cpu_run_units(&a, lo, hi));
            for (size_t i = 0; i < nw; i++)
                sum[i] += part[i];
            po_aligned_free(scratch);
        }
        assert_true(rel_excess(sum, ref.dw, ref.dw_abs, nw, "dw by slices", (int)kc) <= 1.0);
        wdef->cpu_free(wst);
        free(sum), free(part);
        conv_ref_free(&ref);
        free(xv), free(wv), free(bv), free(gyv), free(yv), free(dxv), free(whole_y), free(whole_dx);
        po_graph_free(g);
    }
}

static void test_conv_cost(void **state) {
    (void)state;
    po_graph *g = po_graph_new();
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(64, 3, 32, 32));
    po_node *w = po_param(g, "w", PO_SHAPE(32, 3, 3, 3), po_init_uniform_fan_in(27));
    po_node *b = po_param(g, "b", PO_SHAPE(32), po_init_uniform_fan_in(27));
    po_conv2d_opts opts = {1, 1, 1, 1};
    po_node *y = po_conv2d(g, x, w, b, opts);
    assert_non_null(y);
    po_op_cost c = {0};
    po__op_def(PO_OP_CONV2D)->cost((const po_node *)y, &c);
    double out = 64.0 * 32 * 32 * 32;
    assert_true(c.flops == 2.0 * out * 27 + out);
    assert_true(c.bytes_read == 4.0 * (64 * 3 * 32 * 32 + 32 * 27 + 32));
    assert_true(c.bytes_written == 4.0 * out);
    po_node *p = po_max_pool2d(g, y, 2, 2, 0);
    po__op_def(PO_OP_MAX_POOL2D)->cost((const po_node *)p, &c);
    assert_true(c.flops == out / 4 * 4);
    assert_true(c.bytes_written == 4.0 * out / 4 * 2); /* values and indices */
    po_graph_free(g);
}

/* ---- max_pool2d --------------------------------------------------------------------------- */

typedef struct pool_case {
    int n, c, h, w, k, s, p;
} pool_case;

static const pool_case pool_cases[] = {
    {2, 3, 8, 8, 2, 2, 0}, /* the fast path */
    {1, 2, 7, 9, 2, 2, 0}, /* fast path, odd extents (last row and column unused) */
    {1, 2, 7, 9, 3, 2, 1}, {2, 1, 5, 5, 3, 1, 1}, {1, 1, 6, 5, 2, 1, 0}, {1, 2, 9, 7, 3, 3, 0},
    {1, 1, 4, 4, 1, 1, 0}, {2, 2, 7, 7, 2, 2, 1}, {1, 1, 3, 3, 5, 1, 2},
};

/* PyTorch's rule: the first maximum in row-major window order; a NaN always takes over. */
static void pool_reference(const pool_case *k, const float *x, float *y, int32_t *idx) {
    int oh = (k->h + 2 * k->p - k->k) / k->s + 1, ow = (k->w + 2 * k->p - k->k) / k->s + 1;
    for (int pl = 0; pl < k->n * k->c; pl++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                float m = -INFINITY;
                int best = -1;
                for (int u = 0; u < k->k; u++)
                    for (int v = 0; v < k->k; v++) {
                        int hh = i * k->s - k->p + u, ww = j * k->s - k->p + v;
                        if (hh < 0 || hh >= k->h || ww < 0 || ww >= k->w) continue;
                        float val = x[(size_t)pl * k->h * k->w + (size_t)hh * k->w + ww];
                        if (best < 0 || val > m || isnan(val)) {
                            m = val;
                            best = hh * k->w + ww;
                        }
                    }
                y[((size_t)pl * oh + i) * ow + j] = m;
                idx[((size_t)pl * oh + i) * ow + j] = best;
            }
}

/* Runs the MAX_POOL2D kernel directly (to see its saved indices). */
static void run_pool_kernel(const pool_case *k, const float *x, float *y, int32_t *idx) {
    po_graph *g = po_graph_new();
    po_node *xn = po_input(g, "x", PO_F32, PO_SHAPE(k->n, k->c, k->h, k->w));
    po_node *pn = po_max_pool2d(g, xn, k->k, k->s, k->p);
    assert_non_null(pn);
    const void *in[1] = {x};
    void *in_aux[1] = {NULL};
    po_kargs a = {.node = pn, .out = y, .aux = idx, .in = in, .in_aux = in_aux};
    PO_CHECK(po__op_run(po__op_def(PO_OP_MAX_POOL2D), &a));
    po_graph_free(g);
}

/* Runs the MAX_POOL2D_GRAD kernel directly on saved indices idx. */
static void run_pool_grad_kernel(const pool_case *k, const float *gy, const int32_t *idx, float *dx) {
    po_graph *g = po_graph_new();
    po_node *xn = po_input(g, "x", PO_F32, PO_SHAPE(k->n, k->c, k->h, k->w));
    po_node *pn = po_max_pool2d(g, xn, k->k, k->s, k->p);
    po_node *gn = po_input(g, "gy", PO_F32, po_node_shape(pn));
    po_node *in[2] = {gn, pn};
    po_node *dn = po__node_new(g, PO_OP_MAX_POOL2D_GRAD, 2, in, NULL, NULL);
    assert_non_null(dn);
    const void *ins[2] = {gy, NULL};
    void *in_aux[2] = {NULL, (void *)idx};
    po_kargs a = {.node = dn, .out = dx, .in = ins, .in_aux = in_aux};
    PO_CHECK(po__op_run(po__op_def(PO_OP_MAX_POOL2D_GRAD), &a));
    po_graph_free(g);
}

static void test_pool_against_naive(void **state) {
    (void)state;
    for (int ci = 0; ci < (int)(sizeof pool_cases / sizeof pool_cases[0]); ci++) {
        const pool_case *k = &pool_cases[ci];
        int oh = (k->h + 2 * k->p - k->k) / k->s + 1, ow = (k->w + 2 * k->p - k->k) / k->s + 1;
        size_t nx = (size_t)k->n * k->c * k->h * k->w, ny = (size_t)k->n * k->c * oh * ow;
        float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y), *ry = malloc(ny * sizeof *y);
        int32_t *idx = malloc(ny * sizeof *idx), *ridx = malloc(ny * sizeof *idx);
        /* Few distinct values, so windows hold ties. */
        po_test_fill_uniform(x, (int64_t)nx, 0.0f, 4.0f, 50 + (uint64_t)ci);
        for (size_t i = 0; i < nx; i++)
            x[i] = floorf(x[i]);
        run_pool_kernel(k, x, y, idx);
        pool_reference(k, x, ry, ridx);
        for (size_t i = 0; i < ny; i++)
            if (y[i] != ry[i] || idx[i] != ridx[i])
                fail_msg("pool case %d output %zu: got %g at %d, want %g at %d", ci, i, y[i], idx[i], ry[i], ridx[i]);

        /* Through a graph: the gradient of sum(pool(x) * R) is R scattered to the picks. */
        po_graph *g = po_graph_new();
        po_node *xp = po_param(g, "x", PO_SHAPE(k->n, k->c, k->h, k->w), po_init_uniform_fan_in(1));
        po_node *yn = po_max_pool2d(g, xp, k->k, k->s, k->p);
        po_graph_keep(g, yn);
        po_node *R = po_input(g, "R", PO_F32, po_node_shape(yn));
        PO_CHECK(po_graph_backward(g, po_sum_to(g, po_mul(g, yn, R), po_shape_make(0, NULL))));
        po_test_run r;
        po_test_run_new(g, 1, &r);
        memcpy(po_test_param(&r, "x"), x, nx * sizeof *x);
        float *gy = po_exec_input_data(r.exec, R);
        po_test_fill_uniform(gy, (int64_t)ny, -1.0f, 1.0f, 60 + (uint64_t)ci);
        PO_CHECK(po_exec_run(r.exec));
        PO_CHECK(po_exec_run(r.exec));
        assert_memory_equal(po_exec_output(r.exec, yn), ry, ny * sizeof *ry);
        float *want = calloc(nx, sizeof *want);
        for (size_t i = 0; i < ny; i++) {
            size_t plane = i / ((size_t)oh * ow);
            want[plane * k->h * k->w + (size_t)ridx[i]] += gy[i];
        }
        assert_memory_equal(po_test_grad(&r, "x"), want, nx * sizeof *want);
        /* The backward kernel alone, into a buffer full of garbage: it must write every element. */
        float *dx = malloc(nx * sizeof *dx);
        for (size_t i = 0; i < nx; i++)
            dx[i] = NAN;
        run_pool_grad_kernel(k, gy, ridx, dx);
        assert_memory_equal(dx, want, nx * sizeof *want);
        free(dx);
        free(want);
        po_test_run_free(&r);
        po_graph_free(g);
        free(x), free(y), free(ry), free(idx), free(ridx);
    }
}

/* Ties, NaN and -inf windows, with the outputs and indices PyTorch 1.13 returns
 * (F.max_pool2d(..., return_indices=True)) on the same inputs. */
static void test_pool_ties_and_nan(void **state) {
    (void)state;
    const float nan = NAN, inf = INFINITY;
    { /* fast path: a NaN takes over; the later of two NaNs wins; ties take the first */
        pool_case k = {1, 1, 4, 4, 2, 2, 0};
        float x[16] = {1, nan, 3, nan, 2, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0};
        float y[4];
        int32_t idx[4], want_idx[4] = {1, 3, 8, 10};
        run_pool_kernel(&k, x, y, idx);
        assert_true(isnan(y[0]) && isnan(y[1]) && y[2] == 0.0f && y[3] == 0.0f);
        assert_memory_equal(idx, want_idx, sizeof idx);
        float x2[16] = {nan, 1, nan, 2, 3, nan, 7, 7, 5, 5, 1, 2, 5, 5, 3, 3};
        int32_t want2[4] = {5, 2, 8, 14};
        run_pool_kernel(&k, x2, y, idx);
        assert_true(isnan(y[0]) && isnan(y[1]) && y[2] == 5.0f && y[3] == 3.0f);
        assert_memory_equal(idx, want2, sizeof idx);
    }
    { /* general path, padded: all-equal and all -inf windows pick their first valid element */
        pool_case k = {1, 1, 4, 4, 3, 1, 1};
        int32_t want[16] = {0, 0, 1, 2, 0, 0, 1, 2, 4, 4, 5, 6, 8, 8, 9, 10};
        float x[16], y[16];
        int32_t idx[16];
        for (int i = 0; i < 16; i++)
            x[i] = 0.0f;
        run_pool_kernel(&k, x, y, idx);
        assert_memory_equal(idx, want, sizeof want);
        for (int i = 0; i < 16; i++)
            x[i] = -inf;
        run_pool_kernel(&k, x, y, idx);
        assert_memory_equal(idx, want, sizeof want);
        for (int i = 0; i < 16; i++)
            assert_true(y[i] == -inf);
    }
    { /* general path, stride 2, padding 1, NaNs inside a clipped window */
        pool_case k = {1, 1, 3, 5, 3, 2, 1};
        float x[15] = {1, nan, nan, 2, 0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0};
        float y[6];
        int32_t idx[6], want[6] = {1, 2, 9, 6, 8, 9};
        run_pool_kernel(&k, x, y, idx);
        assert_memory_equal(idx, want, sizeof want);
        assert_true(isnan(y[0]) && isnan(y[1]) && y[2] == 5.0f && y[3] == 2.0f && y[4] == 4.0f && y[5] == 5.0f);
    }
}

/* Central differences for the pooling gradient, on values spaced wider than the step so that
 * no perturbation changes a window's pick. */
static void test_pool_gradcheck(void **state) {
    (void)state;
    static const pool_case cases[] = {{2, 2, 6, 6, 2, 2, 0}, {1, 2, 5, 7, 3, 2, 1}, {1, 1, 5, 5, 3, 1, 1}};
    for (int ci = 0; ci < 3; ci++) {
        const pool_case *k = &cases[ci];
        po_graph *g = po_graph_new();
        po_node *x = po_param(g, "x", PO_SHAPE(k->n, k->c, k->h, k->w), po_init_uniform_fan_in(1));
        po_node *y = po_max_pool2d(g, x, k->k, k->s, k->p);
        po_node *R = po_input(g, "R", PO_F32, po_node_shape(y));
        po_node *loss = po_sum_to(g, po_mul(g, y, R), po_shape_make(0, NULL));
        PO_CHECK(po_graph_backward(g, loss));
        po_test_run r;
        po_test_run_new(g, 3, &r);
        po_shape ys = po_node_shape(y);
        po_test_fill_uniform(po_exec_input_data(r.exec, R), po_shape_numel(&ys), -1.0f, 1.0f, 4);
        int64_t nx = (int64_t)k->n * k->c * k->h * k->w;
        float *xv = po_test_param(&r, "x");
        for (int64_t i = 0; i < nx; i++)
            xv[i] = 0.05f * (float)((i * 37) % nx) - 1.0f; /* distinct */
        PO_CHECK(po_exec_run(r.exec));
        float *analytic = malloc((size_t)nx * sizeof *analytic);
        memcpy(analytic, po_test_grad(&r, "x"), (size_t)nx * sizeof *analytic);
        const float h = 0.01f;
        for (int64_t i = 0; i < nx; i++) {
            float saved = xv[i];
            xv[i] = saved + h;
            PO_CHECK(po_exec_run(r.exec));
            double up = *(const float *)po_exec_output(r.exec, loss);
            xv[i] = saved - h;
            PO_CHECK(po_exec_run(r.exec));
            double down = *(const float *)po_exec_output(r.exec, loss);
            xv[i] = saved;
            double numeric = (up - down) / (2.0 * h);
            if (fabs(numeric - analytic[i]) > 1e-3 * fmax(1.0, fabs(numeric)))
                fail_msg("pool case %d dx[%lld]: analytic %g numeric %g", ci, (long long)i, analytic[i], numeric);
        }
        free(analytic);
        po_test_run_free(&r);
        po_graph_free(g);
    }
}

/* ---- bad arguments ------------------------------------------------------------------------ */

typedef enum { X_F32, X_I32, X_RANK3 } x_kind;

static po_status try_conv(x_kind xk, int64_t c_w, int64_t kh, int64_t kw, int64_t bias_len, po_conv2d_opts o) {
    po_graph *g = po_graph_new();
    po_node *x = xk == X_I32     ? po_input(g, "x", PO_I32, PO_SHAPE(1, 3, 5, 5))
                 : xk == X_RANK3 ? po_input(g, "x", PO_F32, PO_SHAPE(3, 5, 5))
                                 : po_input(g, "x", PO_F32, PO_SHAPE(1, 3, 5, 5));
    po_node *w = po_param(g, "w", PO_SHAPE(4, c_w, kh, kw), po_init_uniform_fan_in(1));
    po_node *b = bias_len ? po_param(g, "b", PO_SHAPE(bias_len), po_init_uniform_fan_in(1)) : NULL;
    po_node *y = po_conv2d(g, x, w, b, o);
    po_status st = po_graph_status(g);
    assert_true((y == NULL) == (st != PO_OK));
    if (st) assert_true(strlen(po_graph_error(g)) > 0 && !strchr(po_graph_error(g), '\n'));
    po_graph_free(g);
    return st;
}

static po_status try_pool(x_kind xk, int k, int s, int p) {
    po_graph *g = po_graph_new();
    po_node *x = xk == X_I32     ? po_input(g, "x", PO_I32, PO_SHAPE(1, 3, 5, 5))
                 : xk == X_RANK3 ? po_input(g, "x", PO_F32, PO_SHAPE(3, 5, 5))
                                 : po_input(g, "x", PO_F32, PO_SHAPE(1, 3, 5, 5));
    po_node *y = po_max_pool2d(g, x, k, s, p);
    po_status st = po_graph_status(g);
    assert_true((y == NULL) == (st != PO_OK));
    po_graph_free(g);
    return st;
}

/* Operator split deals ReLU out by runs of elements and pooling by planes, forward and backward:
 * each such node, cut three ways (the middle stretch from unit 1 to the last), equals the whole
 * node bit for bit, for the 2x2 window and a padded 3x3 one. */
static void test_relu_pool_units(void **state) {
    (void)state;
    const int kinds[][3] = {{2, 2, 0}, {3, 2, 1}}; /* kernel, stride, padding */
    for (int c = 0; c < 2; c++) {
        po_graph *g = po_graph_new();
        po_node *x = po_param(g, "x", PO_SHAPE(3, 5, 33, 34), po_init_uniform_fan_in(1)); /* 16830 elements */
        po_node *y = po_max_pool2d(g, po_relu(g, x), kinds[c][0], kinds[c][1], kinds[c][2]);
        po_graph_keep(g, y);
        po_node *R = po_input(g, "R", PO_F32, po_node_shape(y));
        PO_CHECK(po_graph_backward(g, po_sum_to(g, po_mul(g, y, R), po_shape_make(0, NULL))));
        po_test_run r;
        po_test_run_new(g, 91 + (uint64_t)c, &r);
        po_shape rs = po_node_shape(R);
        po_test_fill_uniform(po_exec_input_data(r.exec, R), po_shape_numel(&rs), -1.0f, 1.0f, 92);
        PO_CHECK(po_exec_run(r.exec));
        int found = 0;
        for (int i = 0; i < po_graph_size(g); i++) {
            po_op op = po_node_op(po_graph_node(g, i));
            if (op != PO_OP_RELU && op != PO_OP_RELU_GRAD && op != PO_OP_MAX_POOL2D && op != PO_OP_MAX_POOL2D_GRAD)
                continue;
            int64_t units = po__exec_units(r.exec, i);
            assert_true(units >= 3);
            found++;
            size_t bytes = po__exec_output_bytes(r.exec, i);
            float *out = po__exec_node_buffer(r.exec, i), *whole = malloc(bytes);
            memcpy(whole, out, bytes);
            for (size_t e = 0; e < bytes / sizeof(float); e++)
                out[e] = NAN;
            PO_CHECK(po__exec_run_units(r.exec, i, 1, units - 1, NULL, NULL));
            PO_CHECK(po__exec_run_units(r.exec, i, 0, 1, NULL, NULL));
            PO_CHECK(po__exec_run_units(r.exec, i, units - 1, units, NULL, NULL));
            if (memcmp(out, whole, bytes) != 0) fail_msg("%s by units differs from the whole node", po_op_name(op));
            free(whole);
        }
        assert_int_equal(found, 4);
        po_test_run_free(&r);
        po_graph_free(g);
    }
}

static void test_bad_arguments(void **state) {
    (void)state;
    po_conv2d_opts d = po_conv2d_opts_default();
    assert_int_equal(d.stride_h, 1);
    assert_int_equal(d.pad_w, 0);
    assert_int_equal(try_conv(X_F32, 3, 3, 3, 4, d), PO_OK);
    assert_int_equal(try_conv(X_I32, 3, 3, 3, 4, d), PO_ERR_DTYPE);
    assert_int_not_equal(try_conv(X_RANK3, 3, 3, 3, 4, d), PO_OK);
    assert_int_not_equal(try_conv(X_F32, 2, 3, 3, 4, d), PO_OK); /* channel mismatch */
    assert_int_not_equal(try_conv(X_F32, 3, 6, 3, 4, d), PO_OK); /* kernel taller than input */
    assert_int_not_equal(try_conv(X_F32, 3, 3, 3, 5, d), PO_OK); /* bias length */
    po_conv2d_opts o = d;
    o.pad_w = 1;
    assert_int_equal(try_conv(X_F32, 3, 3, 7, 0, o), PO_OK); /* 7 wide fits 5 + 2 */
    assert_int_not_equal(try_conv(X_F32, 3, 3, 8, 0, o), PO_OK);
    o = d, o.stride_h = 0;
    assert_int_not_equal(try_conv(X_F32, 3, 3, 3, 0, o), PO_OK);
    o = d, o.stride_w = -1;
    assert_int_not_equal(try_conv(X_F32, 3, 3, 3, 0, o), PO_OK);
    o = d, o.pad_h = -1;
    assert_int_not_equal(try_conv(X_F32, 3, 3, 3, 0, o), PO_OK);

    assert_int_equal(try_pool(X_F32, 2, 2, 0), PO_OK);
    assert_int_equal(try_pool(X_F32, 3, 2, 1), PO_OK);
    assert_int_equal(try_pool(X_I32, 2, 2, 0), PO_ERR_DTYPE);
    assert_int_not_equal(try_pool(X_RANK3, 2, 2, 0), PO_OK);
    assert_int_not_equal(try_pool(X_F32, 0, 1, 0), PO_OK);
    assert_int_not_equal(try_pool(X_F32, 2, 0, 0), PO_OK);
    assert_int_not_equal(try_pool(X_F32, 2, 2, -1), PO_OK);
    assert_int_not_equal(try_pool(X_F32, 2, 2, 2), PO_OK); /* padding over half the kernel */
    assert_int_not_equal(try_pool(X_F32, 6, 1, 0), PO_OK); /* kernel larger than the image */
    assert_int_equal(try_pool(X_F32, 7, 1, 1), PO_OK);     /* fits once padded */

    /* Backward ops built by hand with inconsistent inputs are rejected too. */
    {
        po_graph *g2 = po_graph_new();
        po_node *x = po_input(g2, "x", PO_F32, PO_SHAPE(1, 3, 5, 5));
        po_node *wt = po_param(g2, "w", PO_SHAPE(4, 3, 3, 3), po_init_uniform_fan_in(1));
        po_node *gy = po_input(g2, "gy", PO_F32, PO_SHAPE(1, 4, 4, 4)); /* conv gives 3x3 */
        int64_t ai[PO_ATTR_INTS] = {1, 1, 0, 0, 1, 3, 5, 5};
        po_node *in[2] = {gy, wt};
        assert_null(po__node_new(g2, PO_OP_CONV2D_GRAD_INPUT, 2, in, ai, NULL));
        assert_int_equal(po_graph_status(g2), PO_ERR_SHAPE);
        po_graph_free(g2);
        g2 = po_graph_new();
        x = po_input(g2, "x", PO_F32, PO_SHAPE(1, 3, 4, 4));
        po_node *in2[2] = {x, x}; /* second input is not a max_pool2d node */
        assert_null(po__node_new(g2, PO_OP_MAX_POOL2D_GRAD, 2, in2, NULL, NULL));
        assert_int_not_equal(po_graph_status(g2), PO_OK);
        po_graph_free(g2);
    }

    /* A NULL input propagates as NULL without a crash. */
    po_graph *g = po_graph_new();
    po_node *w = po_param(g, "w", PO_SHAPE(4, 3, 3, 3), po_init_uniform_fan_in(1));
    assert_null(po_conv2d(g, NULL, w, NULL, d));
    assert_null(po_max_pool2d(g, NULL, 2, 2, 0));
    po_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_against_naive),
        cmocka_unit_test(test_conv_gradcheck),
        cmocka_unit_test(test_conv_input_without_grad),
        cmocka_unit_test(test_conv_without_scratch),
        cmocka_unit_test(test_conv_units),
        cmocka_unit_test(test_relu_pool_units),
        cmocka_unit_test(test_conv_cost),
        cmocka_unit_test(test_pool_against_naive),
        cmocka_unit_test(test_pool_ties_and_nan),
        cmocka_unit_test(test_pool_gradcheck),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

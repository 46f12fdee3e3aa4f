/* Neural-network ops: layer_norm, embedding, softmax, causal_attention and cross_entropy.
 * Forward and backward against naive double-precision loops written here, gradients also against
 * central differences, argument errors at graph time and bad ids/targets at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "po_test.h"
#include "op_check.h"
#include "ops/attention_kernels.h"
#include "runtime/exec_internal.h"

static po_init any_init(void) { return po_init_uniform_fan_in(1); }

/* Fills an integer input (I32 or I64) from int64 values; the gradcheck setup callback. */
typedef struct int_fill {
    const po_node *node;
    const int64_t *values;
} int_fill;

static void fill_ints(po_exec *ex, void *ctx) {
    const int_fill *f = ctx;
    void *dst = po_exec_input_data(ex, f->node);
    assert_non_null(dst);
    po_shape s = po_node_shape(f->node);
    for (int64_t i = 0; i < po_shape_numel(&s); i++) {
        if (po_node_dtype(f->node) == PO_I32)
            ((int32_t *)dst)[i] = (int32_t)f->values[i];
        else
            ((int64_t *)dst)[i] = f->values[i];
    }
}

/* ---- layer_norm --------------------------------------------------------------------------- */

/* y = (x - mean) / sqrt(var + eps) * w + b per row (biased variance), and for loss sum(y * R)
 * the gradients of x, w and b. */
static void ln_reference(const float *x, const float *w, const float *b, const float *R, int64_t rows, int64_t d,
                         double eps, double *y, double *gx, double *gw, double *gb) {
    for (int64_t j = 0; j < d; j++)
        gw[j] = gb[j] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d, *gr = R + r * d;
        double mean = 0.0, var = 0.0, s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < d; j++)
            mean += xr[j];
        mean /= (double)d;
        for (int64_t j = 0; j < d; j++)
            var += (xr[j] - mean) * (xr[j] - mean);
        var /= (double)d;
        double rstd = 1.0 / sqrt(var + eps);
        for (int64_t j = 0; j < d; j++) {
            double xhat = (xr[j] - mean) * rstd, g = (double)gr[j] * w[j];
            y[r * d + j] = xhat * w[j] + b[j];
            gw[j] += gr[j] * xhat;
            gb[j] += gr[j];
            s1 += g;
            s2 += g * xhat;
        }
        for (int64_t j = 0; j < d; j++) {
            double xhat = (xr[j] - mean) * rstd;
            gx[r * d + j] = rstd * ((double)gr[j] * w[j] - s1 / (double)d - xhat * s2 / (double)d);
        }
    }
}

static po_node *ln_build(po_graph *g, po_shape xs, float eps) {
    int64_t d = xs.dim[xs.ndim - 1];
    po_node *x = po_param(g, "x", xs, any_init());
    po_node *w = po_param(g, "w", PO_SHAPE(d), any_init());
    po_node *b = po_param(g, "b", PO_SHAPE(d), any_init());
    return po_layer_norm(g, x, w, b, eps);
}

/* offset: added to every x (a large common offset tests the variance's cancellation). */
static void ln_check(po_shape xs, float eps, float offset, double rtol) {
    int64_t d = xs.dim[xs.ndim - 1], n = po_shape_numel(&xs), rows = n / d;
    po_graph *g = po_graph_new();
    po_node *y = ln_build(g, xs, eps);
    po_graph_keep(g, y);
    po_node *R = po_dot_loss_backward(g, y);
    po_test_run r;
    po_test_run_new(g, 31, &r);
    float *x = po_test_param(&r, "x");
    for (int64_t i = 0; i < n; i++)
        x[i] += offset;
    const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 32);
    const float *got = po_run_output(&r, y);
    double *want = po_zeros_double(n), *gx = po_zeros_double(n);
    double *gw = po_zeros_double(d), *gb = po_zeros_double(d);
    ln_reference(x, po_test_param(&r, "w"), po_test_param(&r, "b"), rv, rows, d, eps, want, gx, gw, gb);
    char what[64];
    snprintf(what, sizeof what, "layer_norm D=%lld eps=%g offset=%g", (long long)d, (double)eps, (double)offset);
    PO_ASSERT_CLOSE(what, got, want, NULL, n, rtol, rtol);
    /* Gradients sum over a row or over rows: measure them against their largest entry. */
    PO_ASSERT_CLOSE("layer_norm dx", po_test_grad(&r, "x"), gx, NULL, n, rtol, rtol * 10);
    PO_ASSERT_CLOSE("layer_norm dw", po_test_grad(&r, "w"), gw, NULL, d, rtol, rtol * rows);
    PO_ASSERT_CLOSE("layer_norm db", po_test_grad(&r, "b"), gb, NULL, d, 1e-6, 1e-6 * rows);
    for (int64_t i = 0; i < n; i++)
        assert_false(isnan(got[i]) || isnan(po_test_grad(&r, "x")[i]));
    free(want), free(gx), free(gw), free(gb);
    po_test_run_free(&r);
    po_graph_free(g);

    if (offset != 0.0f) return; /* central differences of offset data measure rounding only */
    g = po_graph_new();
    y = ln_build(g, xs, eps);
    po_gradcheck_ok(what, g, y, NULL, NULL, NULL);
    po_graph_free(g);
}

static void layer_norm_sizes(void **st) {
    (void)st;
    ln_check(PO_SHAPE(4, 1), 1e-5f, 0.0f, 1e-5); /* zero variance: y = b, dx = 0, no NaN */
    ln_check(PO_SHAPE(4, 2), 1e-5f, 0.0f, 1e-5);
    ln_check(PO_SHAPE(4, 7), 1e-5f, 0.0f, 1e-5);
    ln_check(PO_SHAPE(3, 64), 1e-5f, 0.0f, 1e-5);
    ln_check(PO_SHAPE(2, 3, 12), 1e-5f, 0.0f, 1e-5);
    ln_check(PO_SHAPE(4, 7), 0.5f, 0.0f, 1e-5);      /* eps inside the root, not added to the std */
    ln_check(PO_SHAPE(3, 64), 1e-5f, 1000.0f, 5e-4); /* a naive E[x^2] - E[x]^2 loses it all */
}

/* Constant rows: zero variance, so the output is exactly the bias, the weight gets no gradient,
 * and x's gradient is finite ((gw - mean(gw)) / sqrt(eps)), never NaN. */
static void layer_norm_constant_rows(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *y = ln_build(g, PO_SHAPE(3, 8), 1e-5f);
    po_graph_keep(g, y);
    po_node *R = po_dot_loss_backward(g, y);
    po_test_run r;
    po_test_run_new(g, 33, &r);
    float *x = po_test_param(&r, "x");
    for (int i = 0; i < 24; i++)
        x[i] = (float)(i / 8) * 3.0f - 2.0f;
    const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 34);
    const float *got = po_run_output(&r, y), *b = po_test_param(&r, "b");
    double want[24], gx[24], gw[8], gb[8];
    ln_reference(x, po_test_param(&r, "w"), b, rv, 3, 8, 1e-5, want, gx, gw, gb);
    for (int i = 0; i < 24; i++)
        assert_true(got[i] == b[i % 8]);
    PO_ASSERT_CLOSE("layer_norm dx, zero variance", po_test_grad(&r, "x"), gx, NULL, 24, 1e-5, 1e-5);
    for (int i = 0; i < 8; i++)
        assert_true(po_test_grad(&r, "w")[i] == 0.0f);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void layer_norm_errors(void **st) {
    (void)st;
    const struct {
        po_shape x, w, b;
        float eps;
        po_status status;
        const char *msg;
    } bad[] = {
        {PO_SHAPE(4, 7), PO_SHAPE(8), PO_SHAPE(7), 1e-5f, PO_ERR_SHAPE, "must be [D]"},
        {PO_SHAPE(4, 7), PO_SHAPE(7), PO_SHAPE(6), 1e-5f, PO_ERR_SHAPE, "must be [D]"},
        {PO_SHAPE(4, 7), PO_SHAPE(1, 7), PO_SHAPE(7), 1e-5f, PO_ERR_SHAPE, "must be [D]"},
        {PO_SHAPE(4, 7), PO_SHAPE(4), PO_SHAPE(4), 1e-5f, PO_ERR_SHAPE, "must be [D]"},
        {po_shape_make(0, NULL), PO_SHAPE(1), PO_SHAPE(1), 1e-5f, PO_ERR_SHAPE, "at least one dim"},
        {PO_SHAPE(4, 7), PO_SHAPE(7), PO_SHAPE(7), 0.0f, PO_ERR_INVALID_ARG, "eps must be > 0"},
        {PO_SHAPE(4, 7), PO_SHAPE(7), PO_SHAPE(7), -1e-5f, PO_ERR_INVALID_ARG, "eps must be > 0"},
        {PO_SHAPE(4, 7), PO_SHAPE(7), PO_SHAPE(7), NAN, PO_ERR_INVALID_ARG, "eps must be > 0"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", PO_F32, bad[k].x), *w = po_input(g, "w", PO_F32, bad[k].w);
        po_node *b = po_input(g, "b", PO_F32, bad[k].b);
        assert_null(po_layer_norm(g, x, w, b, bad[k].eps));
        assert_int_equal(po_graph_status(g), bad[k].status);
        po_expect_graph_error(g, bad[k].msg);
        po_graph_free(g);
    }
    for (int which = 0; which < 3; which++) {
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", which == 0 ? PO_I32 : PO_F32, PO_SHAPE(4, 7));
        po_node *w = po_input(g, "w", which == 1 ? PO_I32 : PO_F32, PO_SHAPE(7));
        po_node *b = po_input(g, "b", which == 2 ? PO_I64 : PO_F32, PO_SHAPE(7));
        assert_null(po_layer_norm(g, x, w, b, 1e-5f));
        assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
        po_expect_graph_error(g, "must be F32");
        po_graph_free(g);
    }
}

/* ---- embedding ---------------------------------------------------------------------------- */

#define V_  6
#define ED_ 5

static void embedding_lookup_and_grad(void **st) {
    (void)st;
    const int64_t ids[] = {1, 3, 1, 0, 5, 3, 3, 2}; /* repeated ids accumulate gradient */
    const po_shape id_shapes[] = {PO_SHAPE(2, 4), PO_SHAPE(8), po_shape_make(0, NULL), PO_SHAPE(2, 2, 2)};
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof id_shapes / sizeof id_shapes[0]; k++) {
            po_dtype type = dt ? PO_I64 : PO_I32;
            po_shape is = id_shapes[k];
            int64_t n = po_shape_numel(&is);
            po_graph *g = po_graph_new();
            po_node *idn = po_input(g, "ids", type, is);
            po_node *y = po_embedding(g, idn, po_param(g, "table", PO_SHAPE(V_, ED_), any_init()));
            po_shape ys = is;
            ys.dim[ys.ndim++] = ED_;
            po_shape got_shape = po_node_shape(y);
            assert_true(po_shape_equal(&got_shape, &ys));
            po_graph_keep(g, y);
            po_node *R = po_dot_loss_backward(g, y);
            po_test_run r;
            po_test_run_new(g, 41, &r);
            int_fill f = {idn, ids};
            fill_ints(r.exec, &f);
            const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 42);
            const float *got = po_run_output(&r, y), *table = po_test_param(&r, "table");
            double want_g[V_ * ED_] = {0};
            for (int64_t i = 0; i < n; i++)
                for (int j = 0; j < ED_; j++) {
                    if (got[i * ED_ + j] != table[ids[i] * ED_ + j]) fail_msg("embedding row %lld", (long long)i);
                    want_g[ids[i] * ED_ + j] += rv[i * ED_ + j];
                }
            PO_ASSERT_CLOSE("embedding dtable", po_test_grad(&r, "table"), want_g, NULL, V_ * ED_, 1e-6, 1e-6);
            po_test_run_free(&r);
            po_graph_free(g);

            g = po_graph_new();
            idn = po_input(g, "ids", type, is);
            y = po_embedding(g, idn, po_param(g, "table", PO_SHAPE(V_, ED_), any_init()));
            int_fill f2 = {idn, ids};
            po_gradcheck_opts o = po_gradcheck_defaults(); /* linear in the table: exact */
            o.h = 0.25;
            o.tol = 1e-3;
            po_gradcheck_ok("embedding", g, y, fill_ints, &f2, &o);
            po_graph_free(g);
        }
}

/* Ids outside [0, V) fail the run with PO_ERR_RANGE (forward, and with a backward pass); the
 * executor stays usable once the ids are fixed. */
static void embedding_bad_ids(void **st) {
    (void)st;
    const int64_t bad[] = {V_, -1, (int64_t)1 << 40, INT64_MIN};
    for (int dt = 0; dt < 2; dt++)
        for (int backward = 0; backward <= 1; backward++)
            for (int k = 0; k < 4; k++) {
                po_dtype type = dt ? PO_I64 : PO_I32;
                if (type == PO_I32 && (bad[k] > INT32_MAX || bad[k] < INT32_MIN)) continue;
                po_graph *g = po_graph_new();
                po_node *idn = po_input(g, "ids", type, PO_SHAPE(4));
                po_node *y = po_embedding(g, idn, po_param(g, "table", PO_SHAPE(V_, ED_), any_init()));
                po_graph_keep(g, y);
                if (backward) po_dot_loss_backward(g, y);
                po_test_run r;
                po_test_run_new(g, 43, &r);
                int64_t ids[4] = {0, 2, bad[k], 1};
                int_fill f = {idn, ids};
                fill_ints(r.exec, &f);
                assert_int_equal(po_exec_run(r.exec), PO_ERR_RANGE);
                ids[2] = V_ - 1;
                fill_ints(r.exec, &f);
                PO_CHECK(po_exec_run(r.exec));
                po_test_run_free(&r);
                po_graph_free(g);
            }
}

static void embedding_errors(void **st) {
    (void)st;
    const struct {
        po_dtype ids_type, table_type;
        po_shape ids, table;
        po_status status;
        const char *msg;
    } bad[] = {
        {PO_F32, PO_F32, PO_SHAPE(4), PO_SHAPE(V_, ED_), PO_ERR_DTYPE, "integer ids"},
        {PO_I32, PO_I32, PO_SHAPE(4), PO_SHAPE(V_, ED_), PO_ERR_DTYPE, "must be F32"},
        {PO_I32, PO_F32, PO_SHAPE(4), PO_SHAPE(V_), PO_ERR_SHAPE, "[V, D]"},
        {PO_I64, PO_F32, PO_SHAPE(4), PO_SHAPE(2, V_, ED_), PO_ERR_SHAPE, "[V, D]"},
        {PO_I64, PO_F32, PO_SHAPE(1, 1, 1, 1, 1, 1, 1, 2), PO_SHAPE(V_, ED_), PO_ERR_SHAPE, "too many dims"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *ids = po_input(g, "ids", bad[k].ids_type, bad[k].ids);
        po_node *table = po_input(g, "table", bad[k].table_type, bad[k].table);
        assert_null(po_embedding(g, ids, table));
        assert_int_equal(po_graph_status(g), bad[k].status);
        po_expect_graph_error(g, bad[k].msg);
        po_graph_free(g);
    }
}

/* ---- softmax ------------------------------------------------------------------------------ */

static void softmax_rows(void **st) {
    (void)st;
    enum { ROWS = 6, C = 7 };
    /* Row 0 random; 1 huge values (would overflow a naive exp); 2 huge negative; 3 constant;
     * 4 one dominant entry (others underflow to 0); 5 random with a wide spread. */
    const float special[4][C] = {
        {1000.0f, 999.0f, 998.5f, 1000.0f, 990.0f, 1001.0f, 995.0f},
        {-1000.0f, -999.0f, -998.5f, -1000.0f, -990.0f, -1001.0f, -995.0f},
        {3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f},
        {0.0f, 200.0f, 0.0f, -50.0f, 1.0f, 2.0f, 3.0f},
    };
    const po_shape shapes[] = {PO_SHAPE(ROWS, C), PO_SHAPE(2, 3, C)};
    for (int s = 0; s < 2; s++) {
        po_graph *g = po_graph_new();
        po_node *y = po_softmax(g, po_param(g, "x", shapes[s], any_init()));
        po_graph_keep(g, y);
        po_node *R = po_dot_loss_backward(g, y);
        po_test_run r;
        po_test_run_new(g, 51, &r);
        float *x = po_test_param(&r, "x");
        memcpy(x + C, special, sizeof special);
        for (int j = 0; j < C; j++)
            x[5 * C + j] *= 30.0f;
        const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 52);
        const float *got = po_run_output(&r, y), *gx = po_test_grad(&r, "x");
        double want[ROWS * C], want_g[ROWS * C];
        for (int i = 0; i < ROWS; i++) {
            double mx = -INFINITY, sum = 0.0, dot = 0.0;
            for (int j = 0; j < C; j++)
                mx = fmax(mx, x[i * C + j]);
            for (int j = 0; j < C; j++)
                sum += exp((double)x[i * C + j] - mx);
            for (int j = 0; j < C; j++) {
                want[i * C + j] = exp((double)x[i * C + j] - mx) / sum;
                dot += want[i * C + j] * rv[i * C + j];
            }
            for (int j = 0; j < C; j++)
                want_g[i * C + j] = want[i * C + j] * (rv[i * C + j] - dot);
        }
        PO_ASSERT_CLOSE("softmax", got, want, NULL, ROWS * C, 1e-5, 1e-7);
        PO_ASSERT_CLOSE("softmax dx", gx, want_g, NULL, ROWS * C, 1e-5, 1e-6);
        po_test_run_free(&r);
        po_graph_free(g);

        g = po_graph_new();
        y = po_softmax(g, po_param(g, "x", shapes[s], any_init()));
        po_gradcheck_opts o = po_gradcheck_defaults();
        o.lo = -2.0f;
        o.hi = 2.0f;
        po_gradcheck_ok("softmax", g, y, NULL, NULL, &o);
        po_graph_free(g);
    }
    /* One class: always 1. */
    po_graph *g = po_graph_new();
    po_node *y = po_softmax(g, po_param(g, "x", PO_SHAPE(3, 1), any_init()));
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 53, &r);
    const float *got = po_run_output(&r, y);
    for (int i = 0; i < 3; i++)
        assert_true(got[i] == 1.0f);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void softmax_errors(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    assert_null(po_softmax(g, po_input(g, "x", PO_I32, PO_SHAPE(2, 3))));
    assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
    po_expect_graph_error(g, "must be F32");
    po_graph_free(g);
    g = po_graph_new();
    assert_null(po_softmax(g, po_input(g, "x", PO_F32, po_shape_make(0, NULL))));
    assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
    po_expect_graph_error(g, "at least one dim");
    po_graph_free(g);
}

/* ---- causal_attention --------------------------------------------------------------------- */

#define AB 2
#define AT 5
#define AD 12

/* Per head: S = q k^T / sqrt(hd) with j > i masked, P = softmax(S), O = P v; and for loss
 * sum(O * R) the gradient of qkv. Also the sums of |terms| of O for the tolerance. */
static void attn_reference(const float *qkv, const float *R, int64_t B, int64_t T, int64_t D, int H, double *out,
                           double *out_abs, double *dqkv) {
    int64_t hd = D / H, ld = 3 * D;
    double s = 1.0 / sqrt((double)hd);
    double *P = malloc(sizeof(double) * (size_t)(T * T)), *dS = malloc(sizeof(double) * (size_t)(T * T));
    for (int64_t i = 0; i < B * T * ld; i++)
        dqkv[i] = 0.0;
    for (int64_t b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
#define Q(t, c)          ((double)qkv[(b * T + (t)) * ld + h * hd + (c)])
#define K(t, c)          ((double)qkv[(b * T + (t)) * ld + D + h * hd + (c)])
#define VV(t, c)         ((double)qkv[(b * T + (t)) * ld + 2 * D + h * hd + (c)])
#define GO(t, c)         ((double)R[(b * T + (t)) * D + h * hd + (c)])
#define DQKV(t, part, c) dqkv[(b * T + (t)) * ld + (part)*D + h * hd + (c)]
            for (int64_t i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < T; j++) {
                    double acc = 0.0;
                    for (int64_t c = 0; c < hd; c++)
                        acc += Q(i, c) * K(j, c);
                    P[i * T + j] = j > i ? -INFINITY : acc * s;
                    mx = fmax(mx, P[i * T + j]);
                }
                for (int64_t j = 0; j < T; j++)
                    sum += P[i * T + j] = exp(P[i * T + j] - mx);
                for (int64_t j = 0; j < T; j++)
                    P[i * T + j] /= sum;
                for (int64_t c = 0; c < hd; c++) {
                    double acc = 0.0, abs_acc = 0.0;
                    for (int64_t j = 0; j < T; j++) {
                        acc += P[i * T + j] * VV(j, c);
                        abs_acc += fabs(P[i * T + j] * VV(j, c));
                    }
                    out[(b * T + i) * D + h * hd + c] = acc;
                    out_abs[(b * T + i) * D + h * hd + c] = abs_acc;
                }
            }
            for (int64_t i = 0; i < T; i++) { /* dP = dO v^T; dS = P (dP - rowsum(dP P)) */
                double dot = 0.0;
                for (int64_t j = 0; j < T; j++) {
                    double dp = 0.0;
                    for (int64_t c = 0; c < hd; c++)
                        dp += GO(i, c) * VV(j, c);
                    dS[i * T + j] = dp;
                    dot += dp * P[i * T + j];
                }
                for (int64_t j = 0; j < T; j++)
                    dS[i * T + j] = P[i * T + j] * (dS[i * T + j] - dot);
            }
            for (int64_t i = 0; i < T; i++)
                for (int64_t j = 0; j < T; j++)
                    for (int64_t c = 0; c < hd; c++) {
                        DQKV(i, 0, c) += dS[i * T + j] * K(j, c) * s;
                        DQKV(j, 1, c) += dS[i * T + j] * Q(i, c) * s;
                        DQKV(j, 2, c) += P[i * T + j] * GO(i, c);
                    }
#undef Q
#undef K
#undef VV
#undef GO
#undef DQKV
        }
    free(P);
    free(dS);
}

/* Forward and exact backward for T and heads; central differences too for short sequences
 * (over thousands of outputs, the float rounding of the loss swamps a difference quotient). */
static void attention_case_d(int64_t T, int64_t D, int heads, uint64_t seed) {
    int64_t n_in = AB * T * 3 * D, n_out = AB * T * D;
    po_graph *g = po_graph_new();
    po_node *y = po_causal_attention(g, po_param(g, "qkv", PO_SHAPE(AB, T, 3 * D), any_init()), heads);
    po_shape ys = po_node_shape(y);
    assert_true(po_shape_equal(&ys, &(po_shape){3, {AB, T, D}}));
    po_graph_keep(g, y);
    po_node *R = po_dot_loss_backward(g, y);
    po_test_run r;
    po_test_run_new(g, seed, &r);
    float *qkv = po_test_param(&r, "qkv");
    for (int64_t i = 0; i < n_in; i++)
        qkv[i] *= 2.0f; /* sharper attention than U(-1, 1) */
    const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, seed + 1);
    const float *got = po_run_output(&r, y);
    double *want = po_zeros_double(n_out), *want_abs = po_zeros_double(n_out), *dqkv = po_zeros_double(n_in);
    attn_reference(qkv, rv, AB, T, D, heads, want, want_abs, dqkv);
    char what[64];
    snprintf(what, sizeof what, "causal_attention T=%lld D=%lld heads=%d", (long long)T, (long long)D, heads);
    PO_ASSERT_CLOSE(what, got, want, want_abs, n_out, 2e-5, 1e-6);
    double gmax = 0.0;
    for (int64_t i = 0; i < n_in; i++)
        gmax = fmax(gmax, fabs(dqkv[i]));
    PO_ASSERT_CLOSE("causal_attention dqkv", po_test_grad(&r, "qkv"), dqkv, NULL, n_in, 1e-4, 1e-5 * gmax);
    free(want), free(want_abs), free(dqkv);
    po_test_run_free(&r);
    po_graph_free(g);

    if (T == 1 || T > 16) return;
    g = po_graph_new();
    y = po_causal_attention(g, po_param(g, "qkv", PO_SHAPE(AB, T, 3 * D), any_init()), heads);
    po_gradcheck_opts o = po_gradcheck_defaults();
    o.max_elems = 120; /* q, k and v of several heads and positions */
    po_gradcheck_ok(what, g, y, NULL, NULL, &o);
    po_graph_free(g);
}

static void attention_case(int64_t T, int heads, uint64_t seed) { attention_case_d(T, AD, heads, seed); }

/* Heads of 16, 32, 48 and 64 over T a multiple of 16: on AVX-512 CPUs these run on the op's own
 * kernels (ops/attention_kernels.h), whose causal skipping goes by 16 keys and 4 rows. */
static void attention_own_kernels(void **st) {
    (void)st;
    const struct {
        int64_t T, D;
        int heads;
    } c[] = {{16, 32, 2}, {48, 64, 2}, {32, 96, 2}, {128, 128, 2}, {64, 192, 3}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        bool own = po__attn_kernels_ok(c[i].T, c[i].D / c[i].heads);
        print_message("T=%lld hd=%lld: %s\n", (long long)c[i].T, (long long)(c[i].D / c[i].heads),
                      own ? "own AVX-512 kernels" : "sgemm");
#if defined(__x86_64__)
        assert_true(own == (bool)__builtin_cpu_supports("avx512f"));
#endif
        attention_case_d(c[i].T, c[i].D, c[i].heads, 90 + i);
    }
    assert_false(po__attn_kernels_ok(150, 64)); /* T not a multiple of 16: sgemm */
    assert_false(po__attn_kernels_ok(128, 80));  /* heads over 64: sgemm */
}

static void attention_heads(void **st) {
    (void)st;
    for (int heads = 1; heads <= 4; heads++) {
        attention_case(AT, heads, 61 + heads);
        attention_case(1, heads, 65 + heads);
    }
}

/* Long sequences: more positions than a kernel might take in one block of rows (several blocks
 * of 64 and a partial last one), so block boundaries of a blocked causal kernel are crossed. */
static void attention_long_sequence(void **st) {
    (void)st;
    attention_case(150, 2, 71);
    attention_case(129, 3, 72);
}

/* The mask: changing k or v at position p changes no output before p (bit for bit), and does
 * change the output at p. */
static void mask_case(int64_t T, int64_t p, int part) {
    int64_t n_out = AB * T * AD;
    po_graph *g = po_graph_new();
    po_node *y = po_causal_attention(g, po_param(g, "qkv", PO_SHAPE(AB, T, 3 * AD), any_init()), 3);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 73, &r);
    float *before = malloc((size_t)n_out * sizeof *before);
    memcpy(before, po_run_output(&r, y), (size_t)n_out * sizeof *before);
    float *qkv = po_test_param(&r, "qkv");
    for (int64_t b = 0; b < AB; b++)
        for (int64_t c = 0; c < AD; c++)
            qkv[(b * T + p) * 3 * AD + part * AD + c] += 0.75f;
    const float *after = po_run_output(&r, y);
    bool same_before = true, changed_at = true;
    for (int64_t b = 0; b < AB; b++) {
        const float *x0 = before + b * T * AD, *x1 = after + b * T * AD;
        same_before &= memcmp(x0, x1, (size_t)(p * AD) * sizeof(float)) == 0;
        bool changed = false;
        for (int64_t c = 0; c < AD; c++)
            changed |= x0[p * AD + c] != x1[p * AD + c];
        changed_at &= changed;
    }
    free(before);
    po_test_run_free(&r);
    po_graph_free(g);
    if (!same_before)
        fail_msg("T=%lld: changing %s at %lld changed an earlier output", (long long)T, part == 1 ? "k" : "v",
                 (long long)p);
    if (!changed_at)
        fail_msg("T=%lld: changing %s at %lld left its own output", (long long)T, part == 1 ? "k" : "v", (long long)p);
}

static void attention_mask_hides_future(void **st) {
    (void)st;
    const int64_t long_p[] = {1, 63, 64, 65, 127, 128, 149};
    for (int part = 1; part <= 2; part++) { /* 1: keys, 2: values */
        for (int64_t p = 1; p < AT; p++)
            mask_case(AT, p, part);
        for (size_t k = 0; k < sizeof long_p / sizeof long_p[0]; k++)
            mask_case(150, long_p[k], part);
    }
}

/* Runs y's graph once with the loss sum(y * R), R random (the backward pass included). */
static void run_with_dot_loss(po_graph *g, po_node *y, uint64_t seed, po_test_run *r) {
    po_graph_keep(g, y);
    po_node *R = po_dot_loss_backward(g, y);
    po_test_run_new(g, seed, r);
    po_fill_input(r, R, -1.0f, 1.0f, seed + 1);
    PO_CHECK(po_exec_run(r->exec));
}

/* Node i of r run as three stretches of its units over an output filled with NaN: [c1, c2)
 * with scratch s1, [0, c1) with the executor's own, [c2, all) with s2 (NULL: the executor's).
 * Whether the output is then whole (bytes of it) bit for bit. */
static bool cut_equals_whole(po_test_run *r, int i, int64_t c1, int64_t c2, void *s1, void *s2, const float *whole,
                             size_t bytes) {
    float *out = po__exec_node_buffer(r->exec, i);
    for (size_t e = 0; e < bytes / sizeof(float); e++)
        out[e] = NAN;
    PO_CHECK(po__exec_run_units(r->exec, i, c1, c2, s1, NULL));
    PO_CHECK(po__exec_run_units(r->exec, i, 0, c1, NULL, NULL));
    PO_CHECK(po__exec_run_units(r->exec, i, c2, po__exec_units(r->exec, i), s2, NULL));
    return memcmp(out, whole, bytes) == 0;
}

/* Operator split deals attention out by (sample, head) units (po__exec_run_units): any cut of
 * the units into ranges, each run with a scratch area of its own, gives the whole node's output
 * and gradient bit for bit (blocks of 32 rows and a partial one: T = 150; and the op's own
 * kernels' tiles: T = 48, heads of 64). */
static void attention_units_case(int64_t T, int64_t D) {
    const int heads = 3;
    po_graph *g = po_graph_new();
    po_node *y = po_causal_attention(g, po_param(g, "qkv", PO_SHAPE(AB, T, 3 * D), any_init()), heads);
    po_test_run r;
    run_with_dot_loss(g, y, 79, &r);
    int ids[2] = {-1, -1}; /* forward, backward */
    for (int i = 0; i < po_graph_size(g); i++) {
        po_op op = po_node_op(po_graph_node(g, i));
        if (op == PO_OP_CAUSAL_ATTENTION) ids[0] = i;
        if (op == PO_OP_CAUSAL_ATTENTION_GRAD) ids[1] = i;
    }
    assert_true(ids[0] >= 0 && ids[1] >= 0);
    int64_t units = AB * heads;
    assert_int_equal(po__exec_units(r.exec, ids[0]), units);
    assert_int_equal(po__exec_units(r.exec, ids[1]), units);
    size_t bytes[2];
    float *whole[2];
    for (int k = 0; k < 2; k++) {
        po_shape s = po_node_shape(po_graph_node(g, ids[k]));
        bytes[k] = (size_t)po_shape_numel(&s) * sizeof(float);
        whole[k] = malloc(bytes[k]);
        memcpy(whole[k], po__exec_node_buffer(r.exec, ids[k]), bytes[k]);
    }
    size_t sb = po__exec_scratch_bytes(r.exec, ids[1]);
    assert_true(sb >= (size_t)(T * T) * sizeof(float));
    float *own = malloc(sb), *other = malloc(sb);
    const int64_t cuts[][2] = {{1, 6}, {5, 6}, {3, 3}, {6, 6}};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++)
        for (int k = 0; k < 2; k++)
            if (!cut_equals_whole(&r, ids[k], cuts[c][0], cuts[c][1], own, other, whole[k], bytes[k]))
                fail_msg("%s by units 0|%lld|%lld differs from the whole node", k ? "backward" : "forward",
                         (long long)cuts[c][0], (long long)cuts[c][1]);
    assert_int_equal(po__exec_run_units(r.exec, ids[0], 2, units + 1, NULL, NULL), PO_ERR_INVALID_ARG);
    assert_int_equal(po__exec_run_units(r.exec, ids[0], 3, 2, NULL, NULL), PO_ERR_INVALID_ARG);
    int other_op = ids[0] > 0 ? 0 : ids[0] + 1;
    assert_int_equal(po__exec_units(r.exec, other_op), 0);
    assert_int_equal(po__exec_run_units(r.exec, other_op, 0, 1, NULL, NULL), PO_ERR_UNSUPPORTED);
    free(own), free(other), free(whole[0]), free(whole[1]);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void attention_units_match_whole(void **st) {
    (void)st;
    attention_units_case(150, AD); /* sgemm on blocks of rows */
    attention_units_case(48, 192); /* heads of 64: the op's own kernels on AVX-512 CPUs */
}

/* The same for the element-wise and row-wise ops operator split deals out (GELU by runs of
 * elements, layer norm by rows, forward and backward): every node with units, cut three ways
 * with uneven stretches (one not a whole number of runs), equals the whole node bit for bit. */
static void units_match_whole(void **st) {
    (void)st;
    const int64_t rows = 37, D = 300; /* 11100 elements: 3 runs of 4096 and a partial one */
    po_graph *g = po_graph_new();
    po_node *x = po_param(g, "x", PO_SHAPE(rows, D), any_init());
    po_node *w = po_param(g, "w", PO_SHAPE(D), any_init()), *b = po_param(g, "b", PO_SHAPE(D), any_init());
    po_node *y = po_gelu(g, po_layer_norm(g, x, w, b, 1e-5f));
    po_test_run r;
    run_with_dot_loss(g, y, 83, &r);
    const po_op want[] = {PO_OP_GELU, PO_OP_GELU_GRAD, PO_OP_LAYER_NORM, PO_OP_LAYER_NORM_GRAD_INPUT};
    int found = 0;
    for (int i = 0; i < po_graph_size(g); i++) {
        po_op op = po_node_op(po_graph_node(g, i));
        int64_t units = po__exec_units(r.exec, i);
        bool wanted = false;
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
            wanted |= op == want[k];
        if (!wanted) continue;
        assert_true(units >= 3);
        found++;
        size_t bytes = po__exec_output_bytes(r.exec, i);
        float *out = po__exec_node_buffer(r.exec, i), *whole = malloc(bytes);
        memcpy(whole, out, bytes);
        if (!cut_equals_whole(&r, i, 1, units - 1, NULL, NULL, whole, bytes))
            fail_msg("%s by units differs from the whole node", po_op_name(op));
        free(whole);
    }
    assert_int_equal(found, 4);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void attention_errors(void **st) {
    (void)st;
    const struct {
        po_shape qkv;
        int heads;
        const char *msg;
    } bad[] = {
        {PO_SHAPE(AT, 3 * AD), 1, "[B, T, 3D]"},         {PO_SHAPE(1, AB, AT, 3 * AD), 1, "[B, T, 3D]"},
        {PO_SHAPE(AB, AT, 3 * AD + 1), 1, "[B, T, 3D]"}, {PO_SHAPE(AB, AT, 3 * AD), 5, "do not divide"},
        {PO_SHAPE(AB, AT, 3 * AD), 0, "do not divide"},  {PO_SHAPE(AB, AT, 3 * AD), -2, "do not divide"},
        {PO_SHAPE(AB, AT, 3 * AD), 24, "do not divide"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        assert_null(po_causal_attention(g, po_input(g, "qkv", PO_F32, bad[k].qkv), bad[k].heads));
        assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
        po_expect_graph_error(g, bad[k].msg);
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_causal_attention(g, po_input(g, "qkv", PO_I32, PO_SHAPE(AB, AT, 3 * AD)), 1));
    assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
    po_expect_graph_error(g, "must be F32");
    po_graph_free(g);
}

/* ---- cross_entropy ------------------------------------------------------------------------ */

#define CC 5

/* Mean over rows of logsumexp(row) - row[target], and its gradient (softmax - onehot) / rows. */
static double ce_reference(const float *x, const int64_t *t, int64_t rows, double *grad) {
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * CC;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < CC; j++)
            mx = fmax(mx, xr[j]);
        for (int j = 0; j < CC; j++)
            sum += exp((double)xr[j] - mx);
        double lse = mx + log(sum);
        total += lse - xr[t[r]];
        for (int j = 0; j < CC; j++)
            grad[r * CC + j] = (exp((double)xr[j] - lse) - (j == t[r])) / (double)rows;
    }
    return total / (double)rows;
}

static void cross_entropy_loss_and_grad(void **st) {
    (void)st;
    const int64_t targets[] = {0, 4, 2, 2, 1, 3};
    const po_shape tshapes[] = {PO_SHAPE(6), PO_SHAPE(2, 3), PO_SHAPE(1), po_shape_make(0, NULL)};
    for (int dt = 0; dt < 2; dt++)
        for (size_t k = 0; k < sizeof tshapes / sizeof tshapes[0]; k++) {
            po_dtype type = dt ? PO_I64 : PO_I32;
            po_shape ts = tshapes[k], ls = ts;
            ls.dim[ls.ndim++] = CC;
            int64_t rows = po_shape_numel(&ts);
            po_graph *g = po_graph_new();
            po_node *tn = po_input(g, "targets", type, ts);
            po_node *y = po_cross_entropy(g, po_param(g, "logits", ls, any_init()), tn);
            po_shape ys = po_node_shape(y);
            assert_int_equal(ys.ndim, 0);
            po_graph_keep(g, y);
            po_node *R = po_dot_loss_backward(g, y);
            po_test_run r;
            po_test_run_new(g, 81, &r);
            int_fill f = {tn, targets};
            fill_ints(r.exec, &f);
            float *x = po_test_param(&r, "logits");
            for (int64_t i = 0; i < rows * CC; i++)
                x[i] *= 3.0f;
            if (rows > 1) /* a row of huge logits must not overflow */
                for (int j = 0; j < CC; j++)
                    x[CC + j] = 1000.0f + (float)j;
            const float *rv = po_fill_input(&r, R, 0.5f, 2.0f, 82);
            const float *got = po_run_output(&r, y);
            double *grad = po_zeros_double(rows * CC);
            double want = ce_reference(x, targets, rows, grad);
            for (int64_t i = 0; i < rows * CC; i++)
                grad[i] *= rv[0];
            PO_ASSERT_CLOSE("cross_entropy", got, &want, NULL, 1, 1e-5, 1e-6);
            const float *gl = po_test_grad(&r, "logits");
            PO_ASSERT_CLOSE("cross_entropy dlogits", gl, grad, NULL, rows * CC, 1e-5, 1e-6);
            free(grad);
            po_test_run_free(&r);
            po_graph_free(g);

            g = po_graph_new();
            tn = po_input(g, "targets", type, ts);
            y = po_cross_entropy(g, po_param(g, "logits", ls, any_init()), tn);
            int_fill f2 = {tn, targets};
            po_gradcheck_opts o = po_gradcheck_defaults();
            o.lo = -2.0f;
            o.hi = 2.0f;
            po_gradcheck_ok("cross_entropy", g, y, fill_ints, &f2, &o);
            po_graph_free(g);
        }
}

static void cross_entropy_bad_targets(void **st) {
    (void)st;
    const int64_t bad[] = {CC, -1, (int64_t)1 << 40, INT64_MIN};
    for (int dt = 0; dt < 2; dt++)
        for (int backward = 0; backward <= 1; backward++)
            for (int k = 0; k < 4; k++) {
                po_dtype type = dt ? PO_I64 : PO_I32;
                if (type == PO_I32 && (bad[k] > INT32_MAX || bad[k] < INT32_MIN)) continue;
                po_graph *g = po_graph_new();
                po_node *tn = po_input(g, "targets", type, PO_SHAPE(3));
                po_node *y = po_cross_entropy(g, po_param(g, "logits", PO_SHAPE(3, CC), any_init()), tn);
                if (backward) PO_CHECK(po_graph_backward(g, y));
                po_test_run r;
                po_test_run_new(g, 83, &r);
                int64_t t[3] = {1, 0, bad[k]};
                int_fill f = {tn, t};
                fill_ints(r.exec, &f);
                assert_int_equal(po_exec_run(r.exec), PO_ERR_RANGE);
                t[2] = CC - 1;
                fill_ints(r.exec, &f);
                PO_CHECK(po_exec_run(r.exec));
                po_test_run_free(&r);
                po_graph_free(g);
            }
}

static void cross_entropy_errors(void **st) {
    (void)st;
    const struct {
        po_dtype lt, tt;
        po_shape logits, targets;
        po_status status;
        const char *msg;
    } bad[] = {
        {PO_F32, PO_F32, PO_SHAPE(6, CC), PO_SHAPE(6), PO_ERR_DTYPE, "integer ids"},
        {PO_I32, PO_I32, PO_SHAPE(6, CC), PO_SHAPE(6), PO_ERR_DTYPE, "must be F32"},
        {PO_F32, PO_I32, PO_SHAPE(6, CC), PO_SHAPE(5), PO_ERR_SHAPE, "class dim"},
        {PO_F32, PO_I64, PO_SHAPE(6, CC), PO_SHAPE(6, CC), PO_ERR_SHAPE, "class dim"},
        {PO_F32, PO_I64, PO_SHAPE(2, 3, CC), PO_SHAPE(6), PO_ERR_SHAPE, "class dim"},
        {PO_F32, PO_I64, PO_SHAPE(2, 3, CC), PO_SHAPE(3, 2), PO_ERR_SHAPE, "class dim"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *l = po_input(g, "logits", bad[k].lt, bad[k].logits);
        po_node *t = po_input(g, "targets", bad[k].tt, bad[k].targets);
        assert_null(po_cross_entropy(g, l, t));
        assert_int_equal(po_graph_status(g), bad[k].status);
        po_expect_graph_error(g, bad[k].msg);
        po_graph_free(g);
    }
}

/* A run that fails on bad data says which value and which op: po_last_error() after
 * po_exec_run carries the kernel's detail, not only "value out of range". */
static void run_errors_keep_their_detail(void **st) {
    (void)st;
    char msg[2][256];
    for (int ce = 0; ce <= 1; ce++) {
        po_graph *g = po_graph_new();
        po_node *ids = po_input(g, "ids", PO_I64, PO_SHAPE(3));
        po_node *y = ce ? po_cross_entropy(g, po_param(g, "logits", PO_SHAPE(3, CC), any_init()), ids)
                        : po_embedding(g, ids, po_param(g, "table", PO_SHAPE(V_, ED_), any_init()));
        po_graph_keep(g, y);
        po_test_run r;
        po_test_run_new(g, 91, &r);
        const int64_t bad[3] = {0, 1, 17};
        int_fill f = {ids, bad};
        fill_ints(r.exec, &f);
        po_status status = po_exec_run(r.exec);
        snprintf(msg[ce], sizeof msg[ce], "%s", po_last_error());
        po_test_run_free(&r);
        po_graph_free(g);
        assert_int_equal(status, PO_ERR_RANGE);
    }
    if (!strstr(msg[0], "embedding: id 17 is outside [0, 6)")) fail_msg("embedding run error reads \"%s\"", msg[0]);
    if (!strstr(msg[1], "cross_entropy: target 17 is outside [0, 5)"))
        fail_msg("cross_entropy run error reads \"%s\"", msg[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layer_norm_sizes),
        cmocka_unit_test(layer_norm_constant_rows),
        cmocka_unit_test(layer_norm_errors),
        cmocka_unit_test(embedding_lookup_and_grad),
        cmocka_unit_test(embedding_bad_ids),
        cmocka_unit_test(embedding_errors),
        cmocka_unit_test(softmax_rows),
        cmocka_unit_test(softmax_errors),
        cmocka_unit_test(attention_heads),
        cmocka_unit_test(attention_own_kernels),
        cmocka_unit_test(attention_long_sequence),
        cmocka_unit_test(attention_mask_hides_future),
        cmocka_unit_test(attention_units_match_whole),
        cmocka_unit_test(units_match_whole),
        cmocka_unit_test(attention_errors),
        cmocka_unit_test(cross_entropy_loss_and_grad),
        cmocka_unit_test(cross_entropy_bad_targets),
        cmocka_unit_test(cross_entropy_errors),
        cmocka_unit_test(run_errors_keep_their_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

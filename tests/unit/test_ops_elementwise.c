/* Element-wise ops: add and mul (same shape and suffix broadcast), scale, sum_to, relu and exact
 * GELU. Forward against double-precision formulas, gradients against central differences (and,
 * for GELU, against the exact derivative), argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "po_test.h"
#include "op_check.h"
#include "core/vmath512.h"
#include "ops/gelu_math.h"

#define B_ 2
#define T_ 3
#define D_ 4

/* Every op here is linear (or, for x * x, quadratic) in each single parameter element, so central
 * differences are exact up to the rounding of the loss: a large step and a tight tolerance. */
static po_gradcheck_opts exact_fd_opts(void) {
    po_gradcheck_opts o = po_gradcheck_defaults();
    o.h = 0.25;
    o.tol = 1e-3;
    return o;
}

static po_init any_init(void) { return po_init_uniform_fan_in(1); }

/* ---- add and mul -------------------------------------------------------------------------- */

static po_node *binary_build(po_graph *g, bool mul, po_shape bshape) {
    po_node *a = po_param(g, "a", PO_SHAPE(B_, T_, D_), any_init());
    po_node *b = po_param(g, "b", bshape, any_init());
    return mul ? po_mul(g, a, b) : po_add(g, a, b);
}

/* b of a's shape, [T, D], [D] and a scalar, each broadcast over a's leading dims. */
static void add_mul_broadcast(void **st) {
    (void)st;
    const po_shape bshapes[] = {PO_SHAPE(B_, T_, D_), PO_SHAPE(T_, D_), PO_SHAPE(D_), po_shape_make(0, NULL)};
    for (int mul = 0; mul <= 1; mul++)
        for (size_t k = 0; k < sizeof bshapes / sizeof bshapes[0]; k++) {
            po_graph *g = po_graph_new();
            po_node *y = binary_build(g, mul, bshapes[k]);
            po_graph_keep(g, y);
            po_test_run r;
            po_test_run_new(g, 3 + k, &r);
            po_shape ys = po_node_shape(y);
            assert_true(po_shape_equal(&ys, &(po_shape){3, {B_, T_, D_}}));
            const float *got = po_run_output(&r, y);
            const float *a = po_test_param(&r, "a"), *b = po_test_param(&r, "b");
            int64_t n = B_ * T_ * D_, nb = po_shape_numel(&bshapes[k]);
            double want[B_ * T_ * D_], scale[B_ * T_ * D_];
            for (int64_t i = 0; i < n; i++) {
                double av = a[i], bv = b[i % nb]; /* b repeats along a's leading dims */
                want[i] = mul ? av * bv : av + bv;
                scale[i] = mul ? fabs(av * bv) : fabs(av) + fabs(bv);
            }
            PO_ASSERT_CLOSE(mul ? "mul" : "add", got, want, scale, n, 1e-6, 0.0);
            po_test_run_free(&r);
            po_graph_free(g);

            g = po_graph_new();
            y = binary_build(g, mul, bshapes[k]);
            po_gradcheck_opts o = exact_fd_opts();
            po_gradcheck_ok(mul ? "mul" : "add", g, y, NULL, NULL, &o);
            po_graph_free(g);
        }
}

/* x + x and x * x: both operands are the same node, so its gradient is the sum of two. */
static void add_mul_same_operand(void **st) {
    (void)st;
    for (int mul = 0; mul <= 1; mul++) {
        po_graph *g = po_graph_new();
        po_node *x = po_param(g, "x", PO_SHAPE(T_, D_), any_init());
        po_node *y = mul ? po_mul(g, x, x) : po_add(g, x, x);
        po_node *R = po_dot_loss_backward(g, y);
        po_test_run r;
        po_test_run_new(g, 8, &r);
        const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 9);
        PO_CHECK(po_exec_run(r.exec));
        const float *xv = po_test_param(&r, "x"), *gx = po_test_grad(&r, "x");
        double want[T_ * D_];
        for (int i = 0; i < T_ * D_; i++)
            want[i] = mul ? 2.0 * xv[i] * rv[i] : 2.0 * rv[i];
        PO_ASSERT_CLOSE(mul ? "d(x*x)/dx" : "d(x+x)/dx", gx, want, NULL, T_ * D_, 1e-6, 1e-7);
        po_test_run_free(&r);
        po_graph_free(g);

        g = po_graph_new();
        x = po_param(g, "x", PO_SHAPE(T_, D_), any_init());
        po_gradcheck_opts o = exact_fd_opts();
        po_gradcheck_ok("same operand", g, mul ? po_mul(g, x, x) : po_add(g, x, x), NULL, NULL, &o);
        po_graph_free(g);
    }
}

static void add_mul_errors(void **st) {
    (void)st;
    const po_shape bad[] = {PO_SHAPE(3), PO_SHAPE(2, 4), PO_SHAPE(1, B_, T_, D_), PO_SHAPE(B_, 1, D_)};
    for (int mul = 0; mul <= 1; mul++) {
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            po_graph *g = po_graph_new();
            po_node *a = po_input(g, "a", PO_F32, PO_SHAPE(B_, T_, D_)), *b = po_input(g, "b", PO_F32, bad[k]);
            assert_null(mul ? po_mul(g, a, b) : po_add(g, a, b));
            assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
            po_expect_graph_error(g, "suffix");
            po_graph_free(g);
        }
        for (int which = 0; which < 2; which++) {
            po_graph *g = po_graph_new();
            po_node *a = po_input(g, "a", which ? PO_F32 : PO_I32, PO_SHAPE(T_, D_));
            po_node *b = po_input(g, "b", which ? PO_I64 : PO_F32, PO_SHAPE(D_));
            assert_null(mul ? po_mul(g, a, b) : po_add(g, a, b));
            assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
            po_expect_graph_error(g, "must be F32");
            po_graph_free(g);
        }
        po_graph *g = po_graph_new();
        po_node *a = po_input(g, "a", PO_F32, PO_SHAPE(T_, D_));
        assert_null(mul ? po_mul(g, a, NULL) : po_add(g, NULL, a));
        po_expect_graph_error(g, "NULL");
        po_graph_free(g);
    }
}

/* ---- scale -------------------------------------------------------------------------------- */

static void scale_forward_and_grad(void **st) {
    (void)st;
    const float factors[] = {-2.5f, 0.0f, 1e-3f};
    for (int k = 0; k < 3; k++) {
        po_graph *g = po_graph_new();
        po_node *y = po_scale(g, po_param(g, "x", PO_SHAPE(B_, T_, D_), any_init()), factors[k]);
        po_graph_keep(g, y);
        po_test_run r;
        po_test_run_new(g, 4, &r);
        const float *got = po_run_output(&r, y), *x = po_test_param(&r, "x");
        double want[B_ * T_ * D_];
        for (int i = 0; i < B_ * T_ * D_; i++)
            want[i] = (double)x[i] * factors[k];
        PO_ASSERT_CLOSE("scale", got, want, NULL, B_ * T_ * D_, 1e-6, 1e-30);
        po_test_run_free(&r);
        po_graph_free(g);

        g = po_graph_new();
        y = po_scale(g, po_param(g, "x", PO_SHAPE(B_, T_, D_), any_init()), factors[k]);
        po_gradcheck_opts o = exact_fd_opts();
        po_gradcheck_ok("scale", g, y, NULL, NULL, &o);
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_scale(g, po_input(g, "ids", PO_I64, PO_SHAPE(3)), 2.0f));
    assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
    po_expect_graph_error(g, "must be F32");
    po_graph_free(g);
}

/* ---- sum_to ------------------------------------------------------------------------------- */

static void sum_to_forward_and_grad(void **st) {
    (void)st;
    const po_shape targets[] = {PO_SHAPE(D_), PO_SHAPE(T_, D_), po_shape_make(0, NULL), PO_SHAPE(B_, T_, D_)};
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *y = po_sum_to(g, po_param(g, "x", PO_SHAPE(B_, T_, D_), any_init()), targets[k]);
        po_graph_keep(g, y);
        po_shape ys = po_node_shape(y);
        assert_true(po_shape_equal(&ys, &targets[k]));
        po_test_run r;
        po_test_run_new(g, 6, &r);
        const float *got = po_run_output(&r, y), *x = po_test_param(&r, "x");
        int64_t n = po_shape_numel(&targets[k]);
        double want[B_ * T_ * D_] = {0}, scale[B_ * T_ * D_] = {0};
        for (int64_t i = 0; i < B_ * T_ * D_; i++) { /* element i lands on i mod (target size) */
            want[i % n] += x[i];
            scale[i % n] += fabs(x[i]);
        }
        PO_ASSERT_CLOSE("sum_to", got, want, scale, n, 1e-6, 1e-7);
        po_test_run_free(&r);
        po_graph_free(g);

        g = po_graph_new();
        y = po_sum_to(g, po_param(g, "x", PO_SHAPE(B_, T_, D_), any_init()), targets[k]);
        po_gradcheck_opts o = exact_fd_opts();
        po_gradcheck_ok("sum_to", g, y, NULL, NULL, &o);
        po_graph_free(g);
    }
}

static void sum_to_errors(void **st) {
    (void)st;
    const po_shape bad[] = {PO_SHAPE(T_), PO_SHAPE(2, D_), PO_SHAPE(1, B_, T_, D_)};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        assert_null(po_sum_to(g, po_input(g, "x", PO_F32, PO_SHAPE(B_, T_, D_)), bad[k]));
        assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
        po_expect_graph_error(g, "suffix");
        po_graph_free(g);
    }
    /* Hand-made shapes with a rank outside 0..PO_MAX_DIMS (po_shape_make would clamp them). */
    const int ranks[] = {PO_MAX_DIMS + 1, PO_MAX_DIMS + 4, -1};
    for (int k = 0; k < 3; k++) {
        po_shape s;
        memset(&s, 0, sizeof s);
        s.ndim = ranks[k];
        po_graph *g = po_graph_new();
        assert_null(po_sum_to(g, po_input(g, "x", PO_F32, PO_SHAPE(B_, T_, D_)), s));
        assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
        po_expect_graph_error(g, "rank");
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_sum_to(g, po_input(g, "x", PO_I32, PO_SHAPE(T_, D_)), PO_SHAPE(D_)));
    assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
    po_expect_graph_error(g, "must be F32");
    po_graph_free(g);
}

/* ---- relu --------------------------------------------------------------------------------- */

/* Forward on random values and special ones; the gradient passes where the output is positive
 * or NaN (PyTorch's threshold_backward: zero where y <= 0). */
static void relu_forward_and_backward(void **st) {
    (void)st;
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, INFINITY, -INFINITY, NAN, 3.0f, -3.0f};
    enum { N = 40, NS = sizeof special / sizeof special[0] };
    po_graph *g = po_graph_new();
    po_node *y = po_relu(g, po_param(g, "x", PO_SHAPE(N), any_init()));
    po_graph_keep(g, y);
    po_node *R = po_dot_loss_backward(g, y);
    po_test_run r;
    po_test_run_new(g, 12, &r);
    float *x = po_test_param(&r, "x");
    for (int i = 0; i < NS; i++)
        x[i] = special[i];
    const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 13);
    const float *got = po_run_output(&r, y), *gx = po_test_grad(&r, "x");
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            assert_true(isnan(got[i])); /* torch.relu(nan) is nan */
            assert_true(gx[i] == rv[i]);
            continue;
        }
        float want = x[i] > 0.0f ? x[i] : 0.0f;
        if (got[i] != want) fail_msg("relu(%g) = %g, want %g", (double)x[i], (double)got[i], (double)want);
        float want_g = x[i] > 0.0f ? rv[i] : 0.0f;
        if (gx[i] != want_g)
            fail_msg("relu'(%g) * %g = %g, want %g", (double)x[i], (double)rv[i], (double)gx[i], (double)want_g);
    }
    po_test_run_free(&r);
    po_graph_free(g);
}

/* Central differences need inputs away from the kink: y = relu(x + s) with x in [0.05, 0.45]
 * and s alternately 0 and -0.5 puts every input of relu at least 0.05 (5 steps) from 0, on
 * both sides. */
static void relu_shift(po_exec *ex, void *ctx) {
    po_node *s = ctx;
    float *v = po_exec_input_data(ex, s);
    po_shape sh = po_node_shape(s);
    for (int64_t i = 0; i < po_shape_numel(&sh); i++)
        v[i] = i % 2 ? -0.5f : 0.0f;
}

static void relu_gradcheck(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = po_param(g, "x", PO_SHAPE(B_, T_, D_), any_init());
    po_node *s = po_input(g, "s", PO_F32, PO_SHAPE(B_, T_, D_));
    po_gradcheck_opts o = exact_fd_opts(); /* piecewise linear and far from the kink: exact */
    o.lo = 0.05f;
    o.hi = 0.45f;
    o.h = 1e-2;
    o.tol = 5e-3;
    po_gradcheck_ok("relu", g, po_relu(g, po_add(g, x, s)), relu_shift, s, &o);
    po_graph_free(g);
}

/* ---- gelu --------------------------------------------------------------------------------- */

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double gelu_grad_ref(double x) {
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846);
}

/* Exact (erf) GELU over [-10, 10] and at large |x|, to 1e-6 of max(|y|, 1); its backward against
 * the exact derivative. */
static void gelu_forward_and_backward(void **st) {
    (void)st;
    const float extra[] = {-1e4f, -100.0f, -20.0f, -6.0f, 1e-30f, -1e-30f, 0.0f, 20.0f, 100.0f, 1e4f};
    enum { GRID = 4001, NE = sizeof extra / sizeof extra[0], N = GRID + NE };
    po_graph *g = po_graph_new();
    po_node *y = po_gelu(g, po_param(g, "x", PO_SHAPE(N), any_init()));
    po_graph_keep(g, y);
    po_node *R = po_dot_loss_backward(g, y);
    po_test_run r;
    po_test_run_new(g, 14, &r);
    float *x = po_test_param(&r, "x");
    for (int i = 0; i < GRID; i++)
        x[i] = -10.0f + 20.0f * (float)i / (GRID - 1);
    for (int i = 0; i < NE; i++)
        x[GRID + i] = extra[i];
    const float *rv = po_fill_input(&r, R, -1.0f, 1.0f, 15);
    const float *got = po_run_output(&r, y), *gx = po_test_grad(&r, "x");
    static double want[N], scale[N], want_g[N], scale_g[N];
    for (int i = 0; i < N; i++) {
        want[i] = gelu_ref(x[i]);
        scale[i] = fmax(fabs(want[i]), 1.0);
        want_g[i] = rv[i] * gelu_grad_ref(x[i]);
        scale_g[i] = fmax(fabs(want_g[i]), 1.0);
    }
    PO_ASSERT_CLOSE("gelu", got, want, scale, N, 1e-6, 0.0);
    PO_ASSERT_CLOSE("gelu'", gx, want_g, scale_g, N, 2e-6, 0.0);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void gelu_gradcheck(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *y = po_gelu(g, po_param(g, "x", PO_SHAPE(B_, T_, 10), any_init()));
    po_gradcheck_opts o = po_gradcheck_defaults();
    o.lo = -4.0f;
    o.hi = 4.0f;
    po_gradcheck_ok("gelu", g, y, NULL, NULL, &o);
    po_graph_free(g);
}

static void activation_errors(void **st) {
    (void)st;
    for (int gelu = 0; gelu <= 1; gelu++) {
        po_graph *g = po_graph_new();
        po_node *ids = po_input(g, "ids", PO_I32, PO_SHAPE(T_));
        assert_null(gelu ? po_gelu(g, ids) : po_relu(g, ids));
        assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
        po_expect_graph_error(g, "must be F32");
        po_graph_free(g);
        g = po_graph_new();
        assert_null(gelu ? po_gelu(g, NULL) : po_relu(g, NULL));
        po_expect_graph_error(g, "NULL");
        po_graph_free(g);
    }
}

/* On AVX-512 CPUs GELU and its gradient run on kernels of their own (ops/gelu_math.h): the
 * portable functions' values (equal in an optimised build; within 1e-6 of the larger of 1 and
 * |x| or |gy| where an unoptimised build fuses fewer multiply-adds), at every length (the masked
 * last vector) and on NaN, infinities and the ends of erf's range; nothing past the length. */
static void gelu_kernels_match_elements(void **st) {
    (void)st;
    if (!po_cpu_avx512()) {
        print_message("no AVX-512 here: the portable loops run\n");
        return;
    }
    enum { N = 70000 };
    static float x[N], gy[N], y[N], gx[N];
    po_test_fill_uniform(x, N, -9.0f, 9.0f, 5);
    po_test_fill_uniform(gy, N, -2.0f, 2.0f, 6);
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 5.657f, -5.657f, 1e-30f, -1e-30f, 3e38f, -3e38f};
    memcpy(x, special, sizeof special);
    int64_t lens[] = {0, 1, 15, 16, 17, 33, N};
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        int64_t n = lens[l];
        for (int64_t i = 0; i < N; i++)
            y[i] = gx[i] = -7.0f; /* past n: untouched */
        po__gelu_avx512(x, y, n);
        po__gelu_grad_avx512(gy, x, gx, n);
        for (int64_t i = 0; i < N; i++) {
            float want_y = i < n ? po__gelu(x[i]) : -7.0f, want_g = i < n ? po__gelu_grad(gy[i], x[i]) : -7.0f;
            bool same_y = isnan(want_y) ? isnan(y[i])
                                        : y[i] == want_y || fabsf(y[i] - want_y) <= 1e-6f * fmaxf(1.0f, fabsf(x[i]));
            bool same_g = isnan(want_g) ? isnan(gx[i])
                                        : gx[i] == want_g || fabsf(gx[i] - want_g) <= 1e-6f * fmaxf(1.0f, fabsf(gy[i]));
            if (!same_y || !same_g)
                fail_msg("n = %lld, x[%lld] = %g: gelu %.9g (element %.9g), gradient %.9g (element %.9g)", (long long)n,
                         (long long)i, (double)x[i], (double)y[i], (double)want_y, (double)gx[i], (double)want_g);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_mul_broadcast),
        cmocka_unit_test(add_mul_same_operand),
        cmocka_unit_test(add_mul_errors),
        cmocka_unit_test(scale_forward_and_grad),
        cmocka_unit_test(sum_to_forward_and_grad),
        cmocka_unit_test(sum_to_errors),
        cmocka_unit_test(relu_forward_and_backward),
        cmocka_unit_test(relu_gradcheck),
        cmocka_unit_test(gelu_forward_and_backward),
        cmocka_unit_test(gelu_gradcheck),
        cmocka_unit_test(gelu_kernels_match_elements),
        cmocka_unit_test(activation_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* matmul and linear: forward against naive double-precision loops (with both GEMM libraries),
 * gradients against central differences, and argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "po_test.h"
#include "op_check.h"

#define RTOL 1e-5
#define ATOL 1e-6

/* The loss is linear in every single parameter element, so central differences are exact up to
 * the float rounding of the loss, whatever the step: a large step shrinks that rounding (relative
 * to the step) and allows a tolerance much tighter than the default. */
static po_gradcheck_opts linear_opts(void) {
    po_gradcheck_opts o = po_gradcheck_defaults();
    o.h = 0.25;
    o.tol = 1e-3;
    return o;
}

/* ---- matmul ------------------------------------------------------------------------------ */

typedef struct mm_case {
    int nbatch; /* leading dims of a: 0, 1 or 2 */
    int64_t batch[2];
    int64_t M, N, K;
    bool ta, tb, shared; /* shared: b is 2-D while a is batched */
} mm_case;

static po_shape mm_shape(const mm_case *c, bool batched, int64_t rows, int64_t cols) {
    po_shape s = po_shape_make(0, NULL);
    if (batched)
        for (int i = 0; i < c->nbatch; i++)
            s.dim[s.ndim++] = c->batch[i];
    s.dim[s.ndim++] = rows;
    s.dim[s.ndim++] = cols;
    return s;
}

static po_node *mm_build(po_graph *g, const mm_case *c) {
    po_shape sa = mm_shape(c, true, c->ta ? c->K : c->M, c->ta ? c->M : c->K);
    po_shape sb = mm_shape(c, !c->shared, c->tb ? c->N : c->K, c->tb ? c->K : c->N);
    po_node *a = po_param(g, "a", sa, po_init_uniform_fan_in(1));
    po_node *b = po_param(g, "b", sb, po_init_uniform_fan_in(1));
    return po_matmul(g, a, b, c->ta, c->tb);
}

static int64_t mm_batch(const mm_case *c) {
    int64_t n = 1;
    for (int i = 0; i < c->nbatch; i++)
        n *= c->batch[i];
    return n;
}

/* y[i] = op(a[i]) op(b[i]) in double, with the sums of |terms| for the tolerance. */
static void mm_reference(const mm_case *c, const float *A, const float *B, double *y, double *y_abs) {
    int64_t M = c->M, N = c->N, K = c->K;
    for (int64_t i = 0; i < mm_batch(c); i++) {
        const float *a = A + i * M * K, *b = c->shared ? B : B + i * K * N;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double acc = 0.0, abs_acc = 0.0;
                for (int64_t k = 0; k < K; k++) {
                    double av = c->ta ? a[k * M + m] : a[m * K + k];
                    double bv = c->tb ? b[n * K + k] : b[k * N + n];
                    acc += av * bv;
                    abs_acc += fabs(av * bv);
                }
                y[(i * M + m) * N + n] = acc;
                y_abs[(i * M + m) * N + n] = abs_acc;
            }
    }
}

static void mm_check_forward(const mm_case *c, po_gemm_provider provider) {
    po_set_gemm_provider(provider);
    po_graph *g = po_graph_new();
    po_node *y = mm_build(g, c);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 11, &r);
    po_shape ys = po_node_shape(y);
    assert_int_equal(ys.ndim, c->nbatch + 2);
    for (int i = 0; i < c->nbatch; i++)
        assert_int_equal(ys.dim[i], c->batch[i]);
    assert_int_equal(ys.dim[ys.ndim - 2], c->M);
    assert_int_equal(ys.dim[ys.ndim - 1], c->N);
    int64_t n = po_shape_numel(&ys);
    const float *got = po_run_output(&r, y);
    double *want = po_zeros_double(n), *scale = po_zeros_double(n);
    mm_reference(c, po_test_param(&r, "a"), po_test_param(&r, "b"), want, scale);
    char what[128];
    snprintf(what, sizeof what, "matmul nbatch=%d ta=%d tb=%d shared=%d provider=%s", c->nbatch, c->ta, c->tb,
             c->shared, po_gemm_provider_name(provider));
    PO_ASSERT_CLOSE(what, got, want, scale, n, RTOL, ATOL);
    free(want);
    free(scale);
    po_test_run_free(&r);
    po_graph_free(g);
    po_set_gemm_provider(PO_GEMM_DEFAULT);
}

static void mm_check_grad(const mm_case *c) {
    po_graph *g = po_graph_new();
    po_node *y = mm_build(g, c);
    po_gradcheck_opts o = linear_opts();
    po_gradcheck_ok("matmul", g, y, NULL, NULL, &o);
    po_graph_free(g);
}

/* Every transpose combination for 2-D, 3-D and 4-D operands, b batched or shared, odd sizes. */
static void matmul_all_layouts(void **st) {
    (void)st;
    const int64_t sizes[][3] = {{5, 7, 3}, {4, 6, 33}}; /* M, N, K */
    for (int sz = 0; sz < 2; sz++)
        for (int nb = 0; nb <= 2; nb++)
            for (int shared = 0; shared <= (nb > 0); shared++)
                for (int ta = 0; ta <= 1; ta++)
                    for (int tb = 0; tb <= 1; tb++) {
                        if (shared && ta) continue; /* see matmul_shared_b_transposed_a */
                        mm_case c = {nb, {2, 3}, sizes[sz][0], sizes[sz][1], sizes[sz][2], ta, tb, shared};
                        if (nb == 1) c.batch[0] = 3;
                        mm_check_forward(&c, PO_GEMM_OPENBLAS);
                        mm_check_forward(&c, PO_GEMM_ONEDNN);
                        if (sz == 0) mm_check_grad(&c);
                    }
}

/* torch.matmul(a.transpose(-1, -2), b) with a batched and b 2-D: paropt rejects the
 * combination with a clear error rather than computing it (a limitation, not a crash). */
static void matmul_shared_b_transposed_a(void **st) {
    (void)st;
    mm_case c = {1, {3, 0}, 5, 7, 3, true, false, true};
    po_graph *g = po_graph_new();
    assert_null(mm_build(g, &c));
    assert_int_equal(po_graph_status(g), PO_ERR_UNSUPPORTED);
    po_expect_graph_error(g, "transposed batched operand");
    po_graph_free(g);
}

static void matmul_errors(void **st) {
    (void)st;
    struct {
        po_shape a, b;
        bool ta, tb;
        po_status status;
        const char *msg;
    } cases[] = {
        {PO_SHAPE(5, 3), PO_SHAPE(4, 7), false, false, PO_ERR_SHAPE, "inner dimensions differ"},
        {PO_SHAPE(5, 3), PO_SHAPE(3, 7), true, false, PO_ERR_SHAPE, "inner dimensions differ"},
        {PO_SHAPE(5, 3), PO_SHAPE(7, 4), false, true, PO_ERR_SHAPE, "inner dimensions differ"},
        {PO_SHAPE(2, 5, 3), PO_SHAPE(3, 3, 7), false, false, PO_ERR_SHAPE, "batch dimensions differ"},
        {PO_SHAPE(2, 5, 3), PO_SHAPE(1, 2, 3, 7), false, false, PO_ERR_SHAPE, "batch dimensions differ"},
        {PO_SHAPE(5, 3), PO_SHAPE(2, 3, 7), false, false, PO_ERR_SHAPE, "batch dimensions differ"},
        {PO_SHAPE(3), PO_SHAPE(3, 7), false, false, PO_ERR_SHAPE, "at least 2 dims"},
        {PO_SHAPE(5, 3), PO_SHAPE(3), false, false, PO_ERR_SHAPE, "at least 2 dims"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        po_graph *g = po_graph_new();
        po_node *a = po_input(g, "a", PO_F32, cases[i].a), *b = po_input(g, "b", PO_F32, cases[i].b);
        assert_null(po_matmul(g, a, b, cases[i].ta, cases[i].tb));
        assert_int_equal(po_graph_status(g), cases[i].status);
        po_expect_graph_error(g, cases[i].msg);
        po_graph_free(g);
    }
    /* Integer operands and NULL operands. */
    for (int which = 0; which < 2; which++) {
        po_graph *g = po_graph_new();
        po_node *a = po_input(g, "a", which ? PO_F32 : PO_I32, PO_SHAPE(5, 3));
        po_node *b = po_input(g, "b", which ? PO_I64 : PO_F32, PO_SHAPE(3, 7));
        assert_null(po_matmul(g, a, b, false, false));
        assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
        po_expect_graph_error(g, "must be F32");
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_matmul(g, NULL, po_input(g, "b", PO_F32, PO_SHAPE(3, 7)), false, false));
    po_expect_graph_error(g, "NULL");
    po_graph_free(g);
}

/* ---- linear ------------------------------------------------------------------------------ */

typedef struct lin_case {
    po_shape x; /* [..., in] */
    int64_t out;
    bool bias;
} lin_case;

static po_node *lin_build(po_graph *g, const lin_case *c) {
    int64_t in = c->x.dim[c->x.ndim - 1];
    po_node *x = po_param(g, "x", c->x, po_init_uniform_fan_in(1));
    po_node *w = po_param(g, "w", PO_SHAPE(c->out, in), po_init_uniform_fan_in(1));
    po_node *b = c->bias ? po_param(g, "b", PO_SHAPE(c->out), po_init_uniform_fan_in(1)) : NULL;
    return po_linear(g, x, w, b);
}

static void lin_check(const lin_case *c) {
    int64_t in = c->x.dim[c->x.ndim - 1], rows = po_shape_numel(&c->x) / in;
    po_graph *g = po_graph_new();
    po_node *y = lin_build(g, c);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 5, &r);
    po_shape want_shape = c->x;
    want_shape.dim[want_shape.ndim - 1] = c->out;
    po_shape ys = po_node_shape(y);
    assert_true(po_shape_equal(&ys, &want_shape));
    const float *got = po_run_output(&r, y);
    const float *x = po_test_param(&r, "x"), *w = po_test_param(&r, "w");
    const float *b = c->bias ? po_test_param(&r, "b") : NULL;
    double *want = po_zeros_double(rows * c->out), *scale = po_zeros_double(rows * c->out);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t o = 0; o < c->out; o++) {
            double acc = b ? b[o] : 0.0, abs_acc = b ? fabs(b[o]) : 0.0;
            for (int64_t k = 0; k < in; k++) {
                acc += (double)x[i * in + k] * w[o * in + k];
                abs_acc += fabs((double)x[i * in + k] * w[o * in + k]);
            }
            want[i * c->out + o] = acc;
            scale[i * c->out + o] = abs_acc;
        }
    PO_ASSERT_CLOSE("linear", got, want, scale, rows * c->out, RTOL, ATOL);
    free(want);
    free(scale);
    po_test_run_free(&r);
    po_graph_free(g);

    g = po_graph_new();
    y = lin_build(g, c);
    po_gradcheck_opts o = linear_opts();
    po_gradcheck_ok("linear", g, y, NULL, NULL, &o);
    po_graph_free(g);
}

static void linear_forward_and_grad(void **st) {
    (void)st;
    const lin_case cases[] = {
        {PO_SHAPE(4, 6), 5, true},     {PO_SHAPE(4, 6), 5, false}, {PO_SHAPE(2, 3, 6), 5, true},
        {PO_SHAPE(2, 3, 6), 5, false}, {PO_SHAPE(7, 1), 3, true},  {PO_SHAPE(6), 5, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        lin_check(&cases[i]);
}

static void linear_errors(void **st) {
    (void)st;
    struct {
        po_shape x, w, b;
        bool has_b;
        const char *msg;
    } cases[] = {
        {PO_SHAPE(4, 6), PO_SHAPE(5, 7), PO_SHAPE(5), true, "in_features"},
        {PO_SHAPE(4, 6), PO_SHAPE(6), PO_SHAPE(5), false, "W[out, in]"},
        {PO_SHAPE(4, 6), PO_SHAPE(1, 5, 6), PO_SHAPE(5), false, "W[out, in]"},
        {PO_SHAPE(4, 6), PO_SHAPE(5, 6), PO_SHAPE(6), true, "bias must be [out]"},
        {PO_SHAPE(4, 6), PO_SHAPE(5, 6), PO_SHAPE(1, 5), true, "bias must be [out]"},
        {po_shape_make(0, NULL), PO_SHAPE(5, 6), PO_SHAPE(5), false, "W[out, in]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", PO_F32, cases[i].x), *w = po_input(g, "w", PO_F32, cases[i].w);
        po_node *b = cases[i].has_b ? po_input(g, "b", PO_F32, cases[i].b) : NULL;
        assert_null(po_linear(g, x, w, b));
        assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
        po_expect_graph_error(g, cases[i].msg);
        po_graph_free(g);
    }
    for (int which = 0; which < 3; which++) {
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", which == 0 ? PO_I32 : PO_F32, PO_SHAPE(4, 6));
        po_node *w = po_input(g, "w", which == 1 ? PO_I64 : PO_F32, PO_SHAPE(5, 6));
        po_node *b = po_input(g, "b", which == 2 ? PO_I32 : PO_F32, PO_SHAPE(5));
        assert_null(po_linear(g, x, w, b));
        assert_int_equal(po_graph_status(g), PO_ERR_DTYPE);
        po_expect_graph_error(g, "must be F32");
        po_graph_free(g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_all_layouts), cmocka_unit_test(matmul_shared_b_transposed_a),
        cmocka_unit_test(matmul_errors),      cmocka_unit_test(linear_forward_and_grad),
        cmocka_unit_test(linear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Helpers shared by the op tests (test_ops_*.c): running a graph once, comparing float output
 * with a double-precision reference, checking gradients and graph errors. Include after
 * cmocka.h and po_test.h. Everything is static inline so that each test binary takes only
 * what it uses. */
#ifndef PO_TESTS_OP_CHECK_H
#define PO_TESTS_OP_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest |got - want| / (atol + rtol * scale) over n elements, where scale is |want| or, when
 * `scale` is given, a per-element magnitude (e.g. the sum of |terms| of a dot product, so that
 * cancellation does not demand more than float rounding can give). NaN counts as infinitely
 * bad. Prints the worst element when the result exceeds 1 (a failure). */
static inline double po_excess(const char *what, const float *got, const double *want, const double *scale, int64_t n,
                               double rtol, double atol) {
    double worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = scale ? scale[i] : fabs(want[i]);
        double e = fabs((double)got[i] - want[i]) / (atol + rtol * s);
        if (isnan(e)) e = INFINITY;
        if (e > worst) worst = e, at = i;
    }
    if (worst > 1.0)
        print_message("%s[%lld]: got %.9g want %.9g (%.3g of the tolerance)\n", what, (long long)at, (double)got[at],
                      want[at], worst);
    return worst;
}

#define PO_ASSERT_CLOSE(what, got, want, scale, n, rtol, atol)                                                         \
    assert_true(po_excess((what), (got), (want), (scale), (n), (rtol), (atol)) <= 1.0)

/* A double copy of n floats (references are computed in double from the float inputs). */
static inline double *po_dup_double(const float *x, int64_t n) {
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static inline double *po_zeros_double(int64_t n) {
    double *d = calloc((size_t)(n ? n : 1), sizeof *d);
    assert_non_null(d);
    return d;
}

/* Runs r's executor once and returns the kept output of y (which must be F32). */
static inline const float *po_run_output(po_test_run *r, const po_node *y) {
    PO_CHECK(po_exec_run(r->exec));
    const float *out = po_exec_output(r->exec, y);
    assert_non_null(out);
    return out;
}

/* Appends L = sum(y * R) and its backward pass to g and returns the input R, which the caller
 * fills (po_fill_input) before running: afterwards every parameter's gradient is R pulled back
 * through y, for comparison with an exact double-precision derivative. */
static inline po_node *po_dot_loss_backward(po_graph *g, po_node *y) {
    po_node *R = po_input(g, "R", PO_F32, po_node_shape(y));
    po_node *loss = po_sum_to(g, po_mul(g, y, R), po_shape_make(0, NULL));
    PO_CHECK(po_graph_backward(g, loss));
    return R;
}

/* Fills F32 input `in` with U(lo, hi) from seed and returns its buffer. */
static inline float *po_fill_input(po_test_run *r, const po_node *in, float lo, float hi, uint64_t seed) {
    float *x = po_exec_input_data(r->exec, in);
    assert_non_null(x);
    po_shape s = po_node_shape(in);
    po_test_fill_uniform(x, po_shape_numel(&s), lo, hi, seed);
    return x;
}

/* Fails unless po_gradcheck finds every checked gradient element within opts->tol (or the
 * default tol when opts is NULL). */
static inline void po_gradcheck_ok(const char *what, po_graph *g, po_node *y, void (*setup)(po_exec *, void *),
                                   void *ctx, const po_gradcheck_opts *opts) {
    double tol = opts ? opts->tol : po_gradcheck_defaults().tol;
    double err = po_gradcheck(g, y, setup, ctx, opts);
    if (!(err <= tol)) fail_msg("%s: gradient error %.3g exceeds %.3g", what, err, tol);
}

/* Fails unless g holds an error whose message contains `needle`; then checks the error is
 * sticky and harmless: a further builder call returns NULL and no executor can be made. */
static inline void po_expect_graph_error(po_graph *g, const char *needle) {
    if (po_graph_status(g) == PO_OK) fail_msg("expected a graph error mentioning \"%s\"", needle);
    const char *msg = po_graph_error(g);
    if (!strstr(msg, needle)) fail_msg("graph error \"%s\" does not mention \"%s\"", msg, needle);
    assert_null(po_fill(g, PO_SHAPE(2), 1.0f));
    po_params *p = NULL;
    po_exec *ex = NULL;
    if (po_params_new(g, &p) == PO_OK) {
        assert_int_not_equal(po_exec_new(g, p, &ex), PO_OK);
        assert_null(ex);
        po_params_free(p);
    }
}

#endif

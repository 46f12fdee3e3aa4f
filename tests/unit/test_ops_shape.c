/* Shape ops: reshape (with -1), flatten, transpose, slice (a view along the outermost dim, a copy
 * inside), split and concat. Values are moved, not computed, so the forward checks are exact
 * (against index arithmetic done here); gradients against central differences; which results
 * alias their input (views) is checked through the executor's output pointers; bad arguments
 * give graph errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "po_test.h"
#include "op_check.h"

/* Data movement is linear in every element: central differences are exact up to rounding. */
static po_gradcheck_opts exact_fd_opts(void) {
    po_gradcheck_opts o = po_gradcheck_defaults();
    o.h = 0.25;
    o.tol = 1e-3;
    return o;
}

static po_init any_init(void) { return po_init_uniform_fan_in(1); }

/* Row-major multi-index of flat index i in shape s, and back. */
static void unravel(int64_t i, const po_shape *s, int64_t *idx) {
    for (int d = s->ndim - 1; d >= 0; d--) {
        idx[d] = i % s->dim[d];
        i /= s->dim[d];
    }
}

static int64_t ravel(const int64_t *idx, const po_shape *s) {
    int64_t i = 0;
    for (int d = 0; d < s->ndim; d++)
        i = i * s->dim[d] + idx[d];
    return i;
}

static void assert_shape(po_node *n, po_shape want) {
    po_shape s = po_node_shape(n);
    if (!po_shape_equal(&s, &want)) {
        char a[96], b[96];
        fail_msg("shape %s, want %s", po_shape_format(&s, a, sizeof a), po_shape_format(&want, b, sizeof b));
    }
}

static void assert_same_values(const char *what, const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s[%lld]: got %.9g want %.9g", what, (long long)i, (double)got[i], (double)want[i]);
}

/* ---- reshape and flatten ------------------------------------------------------------------ */

/* Builds y = reshape(x) or flatten(x) and checks that y is a view of x (same address, same
 * values), then its gradient. */
static void check_view_of_param(po_shape xs, po_shape want, po_node *(*build)(po_graph *, po_node *, const void *),
                                const void *arg) {
    po_graph *g = po_graph_new();
    po_node *y = build(g, po_param(g, "x", xs, any_init()), arg);
    PO_CHECK(po_graph_status(g));
    assert_shape(y, want);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 21, &r);
    const float *got = po_run_output(&r, y);
    assert_ptr_equal(got, po_test_param(&r, "x")); /* a view: no copy */
    po_test_run_free(&r);
    po_graph_free(g);

    g = po_graph_new();
    y = build(g, po_param(g, "x", xs, any_init()), arg);
    po_gradcheck_opts o = exact_fd_opts();
    po_gradcheck_ok("view", g, y, NULL, NULL, &o);
    po_graph_free(g);
}

static po_node *build_reshape(po_graph *g, po_node *x, const void *arg) {
    return po_reshape(g, x, *(const po_shape *)arg);
}

static po_node *build_flatten(po_graph *g, po_node *x, const void *arg) { return po_flatten(g, x, *(const int *)arg); }

static void reshape_and_flatten(void **st) {
    (void)st;
    const po_shape xs = PO_SHAPE(2, 3, 4);
    const struct {
        po_shape ask, want;
    } rs[] = {
        {PO_SHAPE(6, 4), PO_SHAPE(6, 4)},
        {PO_SHAPE(4, -1), PO_SHAPE(4, 6)},
        {PO_SHAPE(-1), PO_SHAPE(24)},
        {PO_SHAPE(2, -1, 2), PO_SHAPE(2, 6, 2)},
        {PO_SHAPE(1, 24, 1), PO_SHAPE(1, 24, 1)},
        {PO_SHAPE(-1, 1), PO_SHAPE(24, 1)},
    };
    for (size_t k = 0; k < sizeof rs / sizeof rs[0]; k++)
        check_view_of_param(xs, rs[k].want, build_reshape, &rs[k].ask);

    const po_shape x4 = PO_SHAPE(2, 3, 4, 5);
    const struct {
        int start;
        po_shape want;
    } fl[] = {
        {0, PO_SHAPE(120)},        {1, PO_SHAPE(2, 60)},       {2, PO_SHAPE(2, 3, 20)},
        {3, PO_SHAPE(2, 3, 4, 5)}, {-1, PO_SHAPE(2, 3, 4, 5)}, {-3, PO_SHAPE(2, 60)},
    };
    for (size_t k = 0; k < sizeof fl / sizeof fl[0]; k++)
        check_view_of_param(x4, fl[k].want, build_flatten, &fl[k].start);

    /* Integer tensors reshape too (ids are often reshaped). */
    po_graph *g = po_graph_new();
    po_node *ids = po_input(g, "ids", PO_I64, PO_SHAPE(2, 3));
    po_node *y = po_reshape(g, ids, PO_SHAPE(-1));
    assert_int_equal(po_node_dtype(y), PO_I64);
    assert_shape(y, PO_SHAPE(6));
    po_graph_free(g);
}

static void reshape_errors(void **st) {
    (void)st;
    const po_shape bad[] = {PO_SHAPE(5, 5),    PO_SHAPE(-1, -1, 2), PO_SHAPE(5, -1),
                            PO_SHAPE(-2, -12), PO_SHAPE(0, -1),     PO_SHAPE(25)};
    const char *msg[] = {"element counts differ", "bad extent -1",         "element counts differ",
                         "bad extent -2",         "element counts differ", "element counts differ"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        assert_null(po_reshape(g, po_input(g, "x", PO_F32, PO_SHAPE(2, 3, 4)), bad[k]));
        assert_int_equal(po_graph_status(g), PO_ERR_SHAPE);
        po_expect_graph_error(g, msg[k]);
        po_graph_free(g);
    }
    const int ranks[] = {PO_MAX_DIMS + 1, PO_MAX_DIMS + 5, -1};
    for (int k = 0; k < 3; k++) {
        po_shape s;
        memset(&s, 0, sizeof s);
        s.ndim = ranks[k];
        po_graph *g = po_graph_new();
        assert_null(po_reshape(g, po_input(g, "x", PO_F32, PO_SHAPE(2, 3)), s));
        po_expect_graph_error(g, "rank");
        po_graph_free(g);
    }
    const int starts[] = {3, 4, -4, 100};
    for (int k = 0; k < 4; k++) {
        po_graph *g = po_graph_new();
        assert_null(po_flatten(g, po_input(g, "x", PO_F32, PO_SHAPE(2, 3, 4)), starts[k]));
        assert_int_equal(po_graph_status(g), PO_ERR_INVALID_ARG);
        po_expect_graph_error(g, "out of range");
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_reshape(g, NULL, PO_SHAPE(2)));
    assert_null(po_flatten(g, NULL, 0)); /* NULL in, NULL out */
    po_graph_free(g);
}

/* ---- transpose ---------------------------------------------------------------------------- */

static void check_transpose(po_shape xs, int d0, int d1) {
    int a = d0 < 0 ? d0 + xs.ndim : d0, b = d1 < 0 ? d1 + xs.ndim : d1;
    po_shape ys = xs;
    ys.dim[a] = xs.dim[b];
    ys.dim[b] = xs.dim[a];
    po_graph *g = po_graph_new();
    po_node *y = po_transpose(g, po_param(g, "x", xs, any_init()), d0, d1);
    PO_CHECK(po_graph_status(g));
    assert_shape(y, ys);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 22, &r);
    const float *got = po_run_output(&r, y), *x = po_test_param(&r, "x");
    int64_t n = po_shape_numel(&xs), idx[PO_MAX_DIMS];
    float *want = malloc((size_t)n * sizeof *want);
    for (int64_t i = 0; i < n; i++) { /* y[..i..j..] = x[..j..i..] */
        unravel(i, &ys, idx);
        int64_t t = idx[a];
        idx[a] = idx[b];
        idx[b] = t;
        want[i] = x[ravel(idx, &xs)];
    }
    char what[64];
    snprintf(what, sizeof what, "transpose(%d, %d) of rank %d", d0, d1, xs.ndim);
    assert_same_values(what, got, want, n);
    free(want);
    po_test_run_free(&r);
    po_graph_free(g);

    g = po_graph_new();
    y = po_transpose(g, po_param(g, "x", xs, any_init()), d0, d1);
    po_gradcheck_opts o = exact_fd_opts();
    po_gradcheck_ok(what, g, y, NULL, NULL, &o);
    po_graph_free(g);
}

static void transpose_pairs(void **st) {
    (void)st;
    const int p3[][2] = {{0, 1}, {0, 2}, {1, 2}, {2, 0}, {-1, -2}, {1, 1}};
    for (int k = 0; k < 6; k++)
        check_transpose(PO_SHAPE(2, 3, 4), p3[k][0], p3[k][1]);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            check_transpose(PO_SHAPE(2, 3, 4, 5), i, j);
    check_transpose(PO_SHAPE(3, 5), 0, 1);
    check_transpose(PO_SHAPE(3, 5), -1, 0);
}

/* Integer tensors transpose element by element too (8-byte elements). */
static void transpose_int64(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = po_input(g, "x", PO_I64, PO_SHAPE(2, 3));
    po_node *y = po_transpose(g, x, 0, 1);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 1, &r);
    int64_t *xv = po_exec_input_data(r.exec, x);
    for (int i = 0; i < 6; i++)
        xv[i] = (int64_t)1 << (33 + i);
    PO_CHECK(po_exec_run(r.exec));
    const int64_t *yv = po_exec_output(r.exec, y);
    assert_non_null(yv);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            assert_true(yv[i * 2 + j] == xv[j * 3 + i]);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void transpose_errors(void **st) {
    (void)st;
    const int bad[][2] = {{0, 3}, {3, 0}, {-4, 0}, {1, -4}, {100, 1}};
    for (int k = 0; k < 5; k++) {
        po_graph *g = po_graph_new();
        assert_null(po_transpose(g, po_input(g, "x", PO_F32, PO_SHAPE(2, 3, 4)), bad[k][0], bad[k][1]));
        assert_int_equal(po_graph_status(g), PO_ERR_INVALID_ARG);
        po_expect_graph_error(g, "out of range");
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_transpose(g, NULL, 0, 1));
    po_graph_free(g);
}

/* ---- slice and split ---------------------------------------------------------------------- */

/* y[..., i, ...] = x[..., start + i, ...] along dim. */
static void slice_reference(const float *x, const po_shape *xs, int dim, int64_t start, float *y, const po_shape *ys) {
    int64_t idx[PO_MAX_DIMS];
    for (int64_t i = 0; i < po_shape_numel(ys); i++) {
        unravel(i, ys, idx);
        idx[dim] += start;
        y[i] = x[ravel(idx, xs)];
    }
}

/* Checks slice(x, dim, start, len): values, whether it aliases x (expect_view) and gradient. */
static void check_slice(po_shape xs, int dim, int64_t start, int64_t len, bool expect_view) {
    int d = dim < 0 ? dim + xs.ndim : dim;
    po_shape ys = xs;
    ys.dim[d] = len;
    po_graph *g = po_graph_new();
    po_node *y = po_slice(g, po_param(g, "x", xs, any_init()), dim, start, len);
    PO_CHECK(po_graph_status(g));
    assert_shape(y, ys);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 23, &r);
    const float *got = po_run_output(&r, y), *x = po_test_param(&r, "x");
    int64_t n = po_shape_numel(&ys);
    float *want = malloc((size_t)n * sizeof *want);
    slice_reference(x, &xs, d, start, want, &ys);
    char what[80];
    snprintf(what, sizeof what, "slice(dim %d, %lld, %lld) of rank %d", dim, (long long)start, (long long)len, xs.ndim);
    assert_same_values(what, got, want, n);
    int64_t inner = 1;
    for (int k = d + 1; k < xs.ndim; k++)
        inner *= xs.dim[k];
    if (expect_view) /* the slice is x's storage from its first element on */
        assert_ptr_equal(got, x + start * inner);
    else /* a copy lies outside x's storage */
        assert_true(got < x || got >= x + po_shape_numel(&xs));
    free(want);
    po_test_run_free(&r);
    po_graph_free(g);

    g = po_graph_new();
    y = po_slice(g, po_param(g, "x", xs, any_init()), dim, start, len);
    po_gradcheck_opts o = exact_fd_opts();
    po_gradcheck_ok(what, g, y, NULL, NULL, &o);
    po_graph_free(g);
}

static void slice_views_and_copies(void **st) {
    (void)st;
    check_slice(PO_SHAPE(4, 3, 5), 0, 1, 2, true);  /* outermost dim: contiguous, a view */
    check_slice(PO_SHAPE(4, 3, 5), 0, 0, 4, true);  /* the whole tensor */
    check_slice(PO_SHAPE(4, 3, 5), 0, 3, 1, true);  /* the last row */
    check_slice(PO_SHAPE(4, 3, 5), 1, 1, 2, false); /* inner dims: strided, a copy */
    check_slice(PO_SHAPE(4, 3, 5), 2, 2, 3, false);
    check_slice(PO_SHAPE(4, 3, 5), -1, 0, 1, false);
    check_slice(PO_SHAPE(1, 6, 4), 1, 2, 3, true); /* everything outside dim is 1: a view */
    check_slice(PO_SHAPE(7), 0, 2, 4, true);
}

/* Views of views: slice of a reshape of a parameter, and slice of that slice, address the
 * parameter's storage at the summed offsets. */
static void slice_of_views(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *x = po_param(g, "x", PO_SHAPE(3, 4, 5), any_init());
    po_node *rows = po_reshape(g, x, PO_SHAPE(12, 5));
    po_node *s1 = po_slice(g, rows, 0, 3, 6);
    po_node *s2 = po_slice(g, s1, 0, 2, 3);
    po_node *s3 = po_slice(g, s2, 1, 1, 3); /* inner dim: a copy */
    po_graph_keep(g, s2);
    po_graph_keep(g, s3);
    po_test_run r;
    po_test_run_new(g, 24, &r);
    PO_CHECK(po_exec_run(r.exec));
    const float *xv = po_test_param(&r, "x");
    const float *v2 = po_exec_output(r.exec, s2), *v3 = po_exec_output(r.exec, s3);
    assert_ptr_equal(v2, xv + 5 * 5);
    assert_non_null(v3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            assert_true(v3[i * 3 + j] == xv[(5 + i) * 5 + 1 + j]);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void split_parts(void **st) {
    (void)st;
    const struct {
        po_shape xs;
        int dim;
        int64_t size;
        int parts;
    } cases[] = {
        {PO_SHAPE(7, 4), 0, 3, 3},     /* 3, 3, 1 */
        {PO_SHAPE(7, 4), 1, 3, 2},     /* 3, 1 */
        {PO_SHAPE(2, 5, 3), -2, 2, 3}, /* 2, 2, 1 */
        {PO_SHAPE(7, 4), 0, 7, 1},     /* one part: the whole */
        {PO_SHAPE(7, 4), 0, 100, 1},   /* a size beyond the extent */
        {PO_SHAPE(2, 5, 3), 2, 1, 3},  /* unit parts */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const po_shape xs = cases[k].xs;
        int d = cases[k].dim < 0 ? cases[k].dim + xs.ndim : cases[k].dim;
        po_graph *g = po_graph_new();
        po_node *parts[8];
        int n = po_split(g, po_param(g, "x", xs, any_init()), cases[k].dim, cases[k].size, parts, 8);
        PO_CHECK(po_graph_status(g));
        assert_int_equal(n, cases[k].parts);
        for (int p = 0; p < n; p++)
            po_graph_keep(g, parts[p]);
        po_test_run r;
        po_test_run_new(g, 25, &r);
        PO_CHECK(po_exec_run(r.exec));
        const float *x = po_test_param(&r, "x");
        int64_t at = 0;
        for (int p = 0; p < n; p++) {
            int64_t len = xs.dim[d] - at < cases[k].size ? xs.dim[d] - at : cases[k].size;
            po_shape ps = xs;
            ps.dim[d] = len;
            assert_shape(parts[p], ps);
            float want[64];
            slice_reference(x, &xs, d, at, want, &ps);
            const float *got = po_exec_output(r.exec, parts[p]);
            assert_non_null(got);
            assert_same_values("split part", got, want, po_shape_numel(&ps));
            at += len;
        }
        assert_int_equal(at, xs.dim[d]);
        po_test_run_free(&r);
        po_graph_free(g);

        for (int p = 0; p < n; p++) { /* each part's gradient lands in its own range of x */
            g = po_graph_new();
            po_node *q[8];
            po_split(g, po_param(g, "x", xs, any_init()), cases[k].dim, cases[k].size, q, 8);
            po_gradcheck_opts o = exact_fd_opts();
            po_gradcheck_ok("split part", g, q[p], NULL, NULL, &o);
            po_graph_free(g);
        }
    }
}

static void slice_split_errors(void **st) {
    (void)st;
    const struct {
        int dim;
        int64_t start, len;
        po_status status;
        const char *msg;
    } bad[] = {
        {0, -1, 2, PO_ERR_RANGE, "outside extent"},    {0, 3, 2, PO_ERR_RANGE, "outside extent"},
        {1, 0, 0, PO_ERR_RANGE, "outside extent"},     {2, 0, -1, PO_ERR_RANGE, "outside extent"},
        {3, 0, 1, PO_ERR_INVALID_ARG, "out of range"}, {-4, 0, 1, PO_ERR_INVALID_ARG, "out of range"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(4, 3, 5));
        assert_null(po_slice(g, x, bad[k].dim, bad[k].start, bad[k].len));
        assert_int_equal(po_graph_status(g), bad[k].status);
        po_expect_graph_error(g, bad[k].msg);
        po_graph_free(g);
    }
    po_node *parts[2];
    const struct {
        int dim;
        int64_t size;
        int max_parts;
        po_status status;
        const char *msg;
    } sbad[] = {
        {0, 1, 2, PO_ERR_RANGE, "do not fit"}, /* 4 parts, room for 2 */
        {0, 0, 2, PO_ERR_INVALID_ARG, "bad dim"},
        {0, -3, 2, PO_ERR_INVALID_ARG, "bad dim"},
        {3, 2, 2, PO_ERR_INVALID_ARG, "bad dim"},
    };
    for (size_t k = 0; k < sizeof sbad / sizeof sbad[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(4, 3, 5));
        assert_int_equal(po_split(g, x, sbad[k].dim, sbad[k].size, parts, sbad[k].max_parts), 0);
        assert_int_equal(po_graph_status(g), sbad[k].status);
        po_expect_graph_error(g, sbad[k].msg);
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    assert_null(po_slice(g, NULL, 0, 0, 1));
    assert_int_equal(po_split(g, NULL, 0, 1, parts, 2), 0);
    po_graph_free(g);
}

/* ---- concat ------------------------------------------------------------------------------- */

/* Joins inputs of extents ext[0..n) along dim (other extents from base). */
static void check_concat(po_shape base, int dim, const int64_t *ext, int n) {
    int d = dim < 0 ? dim + base.ndim : dim;
    char name[16];
    po_shape ys = base;
    ys.dim[d] = 0;
    for (int i = 0; i < n; i++)
        ys.dim[d] += ext[i];
    for (int pass = 0; pass < 2; pass++) {
        po_graph *g = po_graph_new();
        po_node *xs[4];
        for (int i = 0; i < n; i++) {
            po_shape s = base;
            s.dim[d] = ext[i];
            snprintf(name, sizeof name, "x%d", i);
            xs[i] = po_param(g, name, s, any_init());
        }
        po_node *y = po_concat(g, xs, n, dim);
        PO_CHECK(po_graph_status(g));
        assert_shape(y, ys);
        if (pass == 1) {
            po_gradcheck_opts o = exact_fd_opts();
            po_gradcheck_ok("concat", g, y, NULL, NULL, &o);
            po_graph_free(g);
            continue;
        }
        po_graph_keep(g, y);
        po_test_run r;
        po_test_run_new(g, 26, &r);
        const float *got = po_run_output(&r, y);
        int64_t ny = po_shape_numel(&ys), idx[PO_MAX_DIMS];
        float *want = malloc((size_t)ny * sizeof *want);
        for (int64_t k = 0; k < ny; k++) { /* find the input that holds position idx[d] */
            unravel(k, &ys, idx);
            int i = 0;
            while (idx[d] >= ext[i])
                idx[d] -= ext[i++];
            po_shape s = base;
            s.dim[d] = ext[i];
            snprintf(name, sizeof name, "x%d", i);
            want[k] = po_test_param(&r, name)[ravel(idx, &s)];
        }
        assert_same_values("concat", got, want, ny);
        free(want);
        po_test_run_free(&r);
        po_graph_free(g);
    }
}

static void concat_inputs_and_dims(void **st) {
    (void)st;
    const po_shape base = PO_SHAPE(2, 3, 4);
    const int64_t two[] = {2, 3}, three[] = {1, 3, 2}, same[] = {2, 2, 2};
    for (int dim = -1; dim < 3; dim++) {
        check_concat(base, dim, two, 2);
        check_concat(base, dim, three, 3);
        check_concat(base, dim, same, 3);
    }
    const int64_t one[] = {3};
    check_concat(base, 1, one, 1); /* a single input: a copy */
    check_concat(PO_SHAPE(5), 0, three, 3);
}

/* Integer inputs concatenate as well (ids from several sources). */
static void concat_int32(void **st) {
    (void)st;
    po_graph *g = po_graph_new();
    po_node *a = po_input(g, "a", PO_I32, PO_SHAPE(2, 2)), *b = po_input(g, "b", PO_I32, PO_SHAPE(2, 1));
    po_node *y = po_concat(g, (po_node *[]){a, b}, 2, 1);
    assert_int_equal(po_node_dtype(y), PO_I32);
    po_graph_keep(g, y);
    po_test_run r;
    po_test_run_new(g, 1, &r);
    memcpy(po_exec_input_data(r.exec, a), (int32_t[]){1, 2, 3, 4}, 4 * sizeof(int32_t));
    memcpy(po_exec_input_data(r.exec, b), (int32_t[]){-5, 6}, 2 * sizeof(int32_t));
    PO_CHECK(po_exec_run(r.exec));
    const int32_t *yv = po_exec_output(r.exec, y), want[] = {1, 2, -5, 3, 4, 6};
    assert_non_null(yv);
    assert_memory_equal(yv, want, sizeof want);
    po_test_run_free(&r);
    po_graph_free(g);
}

static void concat_errors(void **st) {
    (void)st;
    const struct {
        po_shape a, b;
        po_dtype tb;
        int dim;
        po_status status;
        const char *msg;
    } bad[] = {
        {PO_SHAPE(2, 3), PO_SHAPE(3, 3), PO_F32, 1, PO_ERR_SHAPE, "outside the concat dim differ"},
        {PO_SHAPE(2, 3), PO_SHAPE(2, 3, 1), PO_F32, 0, PO_ERR_SHAPE, "outside the concat dim differ"},
        {PO_SHAPE(2, 3), PO_SHAPE(2), PO_F32, 0, PO_ERR_SHAPE, "outside the concat dim differ"},
        {PO_SHAPE(2, 3), PO_SHAPE(2, 3), PO_I32, 0, PO_ERR_DTYPE, "different dtypes"},
        {PO_SHAPE(2, 3), PO_SHAPE(2, 3), PO_F32, 2, PO_ERR_INVALID_ARG, "out of range"},
        {PO_SHAPE(2, 3), PO_SHAPE(2, 3), PO_F32, -3, PO_ERR_INVALID_ARG, "out of range"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        po_graph *g = po_graph_new();
        po_node *xs[2] = {po_input(g, "a", PO_F32, bad[k].a), po_input(g, "b", bad[k].tb, bad[k].b)};
        assert_null(po_concat(g, xs, 2, bad[k].dim));
        assert_int_equal(po_graph_status(g), bad[k].status);
        po_expect_graph_error(g, bad[k].msg);
        po_graph_free(g);
    }
    po_graph *g = po_graph_new();
    po_node *xs[2] = {po_input(g, "a", PO_F32, PO_SHAPE(2)), NULL};
    assert_null(po_concat(g, xs, 0, 0));
    po_expect_graph_error(g, "no inputs");
    po_graph_free(g);
    g = po_graph_new();
    xs[0] = po_input(g, "a", PO_F32, PO_SHAPE(2));
    assert_null(po_concat(g, xs, 2, 0)); /* a NULL input: NULL out */
    po_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reshape_and_flatten), cmocka_unit_test(reshape_errors),
        cmocka_unit_test(transpose_pairs),     cmocka_unit_test(transpose_int64),
        cmocka_unit_test(transpose_errors),    cmocka_unit_test(slice_views_and_copies),
        cmocka_unit_test(slice_of_views),      cmocka_unit_test(split_parts),
        cmocka_unit_test(slice_split_errors),  cmocka_unit_test(concat_inputs_and_dims),
        cmocka_unit_test(concat_int32),        cmocka_unit_test(concat_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

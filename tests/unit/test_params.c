/* Parameter storage: layout, initialisation, loading and saving by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "po_test.h"

static po_graph *small_graph(void) {
    po_graph *g = po_graph_new();
    po_graph_push_scope(g, "l1");
    po_param(g, "weight", PO_SHAPE(30, 20), po_init_uniform_fan_in(20));
    po_param(g, "bias", PO_SHAPE(30), (po_init){PO_INIT_ZEROS, 0});
    po_graph_pop_scope(g);
    po_param(g, "emb", PO_SHAPE(50, 8), (po_init){PO_INIT_NORMAL, 1.0f});
    po_param(g, "gain", PO_SHAPE(7), (po_init){PO_INIT_ONES, 0});
    return g;
}

static void layout_and_init(void **st) {
    (void)st;
    po_graph *g = small_graph();
    po_params *p, *q;
    PO_CHECK(po_params_new(g, &p));
    PO_CHECK(po_params_new(g, &q));
    assert_int_equal(po_params_count(p), 4);
    for (int i = 0; i < 4; i++) {
        const po_param_info *pi = po_params_info(p, i);
        assert_int_equal(pi->offset % 16, 0);
        if (i) assert_true(pi->offset >= po_params_info(p, i - 1)->offset + (size_t)po_params_info(p, i - 1)->numel);
    }
    assert_int_equal(po_params_find(p, "l1.bias"), 1);
    assert_int_equal(po_params_find(p, "nope"), -1);
    po_params_init(p, 5);
    po_params_init(q, 5);
    assert_memory_equal(po_params_values(p), po_params_values(q), po_params_total(p) * sizeof(float));
    const float *w = po_params_values(p), *e = po_params_values(p) + po_params_info(p, 2)->offset;
    double bound = 1.0 / sqrt(20.0), mean = 0.0, sq = 0.0;
    for (int k = 0; k < 600; k++) {
        assert_true(fabs(w[k]) <= bound);
        mean += w[k] / 600.0;
    }
    assert_true(fabs(mean) < 0.1 * bound);
    for (int k = 0; k < 400; k++)
        sq += (double)e[k] * e[k] / 400.0;
    assert_true(sq > 0.8 && sq < 1.2); /* N(0, 1): variance near 1 */
    assert_float_equal(po_params_values(p)[po_params_info(p, 1)->offset], 0.0f, 0.0);
    assert_float_equal(po_params_values(p)[po_params_info(p, 3)->offset + 6], 1.0f, 0.0);
    po_params_init(q, 6);
    assert_memory_not_equal(po_params_values(p), po_params_values(q), 600 * sizeof(float));
    po_params_free(p);
    po_params_free(q);
    po_graph_free(g);
}

static char path[256];

static int make_path(void **st) {
    (void)st;
    snprintf(path, sizeof path, "/tmp/po_test_params_%d.safetensors", (int)getpid());
    return 0;
}

static int remove_path(void **st) {
    (void)st;
    unlink(path);
    return 0;
}

/* Writes tensors (name, shape as [n] F32 or [a, b]) to path. */
static void write_file(int n, const char **names, const po_shape *shapes, const po_dtype *dtypes) {
    po_tensor *ts[8];
    for (int i = 0; i < n; i++)
        PO_CHECK(po_tensor_new(dtypes ? dtypes[i] : PO_F32, shapes[i], &ts[i]));
    PO_CHECK(po_st_write(path, n, names, (const po_tensor *const *)ts, 0, NULL, NULL));
    for (int i = 0; i < n; i++)
        po_tensor_free(ts[i]);
}

static void save_load_round_trip_and_errors(void **st) {
    (void)st;
    po_graph *g = small_graph();
    po_params *p, *q;
    PO_CHECK(po_params_new(g, &p));
    PO_CHECK(po_params_new(g, &q));
    po_params_init(p, 9);
    const char *keys[] = {"model"}, *vals[] = {"test"};
    PO_CHECK(po_params_save(p, path, 1, keys, vals));
    PO_CHECK(po_params_load(q, path));
    assert_memory_equal(po_params_values(p), po_params_values(q), po_params_total(p) * sizeof(float));

    /* Each bad file is refused and leaves the values as they were. */
    const char *names[] = {"l1.weight", "l1.bias", "emb", "gain", "extra"};
    po_shape good[] = {PO_SHAPE(30, 20), PO_SHAPE(30), PO_SHAPE(50, 8), PO_SHAPE(7), PO_SHAPE(1)};
    write_file(3, names, good, NULL); /* "gain" missing */
    assert_int_equal(po_params_load(q, path), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "gain"));
    write_file(5, names, good, NULL); /* "extra" is not a parameter */
    assert_int_equal(po_params_load(q, path), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "extra"));
    po_shape bad[] = {PO_SHAPE(30, 20), PO_SHAPE(31), PO_SHAPE(50, 8), PO_SHAPE(7)};
    write_file(4, names, bad, NULL);
    assert_int_equal(po_params_load(q, path), PO_ERR_SHAPE);
    assert_non_null(strstr(po_last_error(), "l1.bias"));
    po_dtype dts[] = {PO_F32, PO_F32, PO_I64, PO_F32};
    write_file(4, names, good, dts);
    assert_int_equal(po_params_load(q, path), PO_ERR_DTYPE);
    assert_memory_equal(po_params_values(p), po_params_values(q), po_params_total(p) * sizeof(float));

    /* Data namespaces next to the parameters are fine (reference and dataset files). */
    const char *with_data[] = {"l1.weight", "l1.bias", "emb", "gain", "input.x", "grad.gain"};
    po_shape shapes[] = {PO_SHAPE(30, 20), PO_SHAPE(30), PO_SHAPE(50, 8), PO_SHAPE(7), PO_SHAPE(2, 2), PO_SHAPE(7)};
    write_file(6, with_data, shapes, NULL);
    PO_CHECK(po_params_load(q, path));
    assert_float_equal(po_params_values(q)[0], 0.0f, 0.0);
    assert_int_equal(po_params_load(q, "/nonexistent/file.safetensors"), PO_ERR_IO);
    po_params_free(p);
    po_params_free(q);
    po_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout_and_init),
        cmocka_unit_test_setup_teardown(save_load_round_trip_and_errors, make_path, remove_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

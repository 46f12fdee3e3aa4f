/* Model specs and shapes: parsing, validation, sizes, parameter names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "po_test.h"

static void expect_error(const char *spec, const char *needle) {
    po_model *m = NULL;
    assert_int_equal(po_model_build(spec, 0, &m), PO_ERR_INVALID_ARG);
    assert_null(m);
    if (!strstr(po_last_error(), needle))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", spec, po_last_error(), needle);
}

static void bad_specs(void **st) {
    (void)st;
    expect_error("resnet50", "unknown model");
    expect_error("mnist_mlp:depth=3", "no key \"depth\"");
    expect_error("mnist_mlp:hidden=0", "bad value");
    expect_error("mnist_mlp:hidden=12x", "bad value");
    expect_error("mnist_mlp:hidden", "key=value");
    expect_error("cifar_cnn:image=3x32", "CxHxW");
    expect_error("cifar_cnn:image=1x2x2", "at least 4x4");
    expect_error("tiny_gpt:d_model=10,heads=4", "divide");
}

static void sizes_and_names(void **st) {
    (void)st;
    po_model *m;
    PO_CHECK(po_model_build("mnist_mlp", 0, &m));
    assert_int_equal(m->batch, 128);
    po_shape x = po_node_shape(m->x);
    assert_int_equal(x.dim[1], 784);
    assert_non_null(po_graph_find_param(m->graph, "l2.weight"));
    assert_non_null(strstr(m->config, "\"hidden\": 1024"));
    po_model_free(m);

    PO_CHECK(po_model_build("cifar_cnn:image=1x28x28,batch=5", 3, &m)); /* the argument wins */
    assert_int_equal(m->batch, 3);
    po_shape w = po_node_shape(po_graph_find_param(m->graph, "f1.weight"));
    assert_int_equal(w.dim[1], 64 * 7 * 7);
    assert_int_equal(po_node_shape(po_graph_find_param(m->graph, "c1.weight")).dim[1], 1);
    po_model_free(m);

    PO_CHECK(po_model_build("tiny_gpt:layers=3", 0, &m));
    assert_non_null(po_graph_find_param(m->graph, "blocks.2.fc.bias"));
    assert_null(po_graph_find_param(m->graph, "blocks.3.fc.bias"));
    po_shape l = po_node_shape(m->logits);
    assert_int_equal(l.ndim, 3);
    assert_int_equal(l.dim[2], 256);
    assert_int_equal(po_graph_n_params(m->graph), 2 + 3 * 12 + 4);
    po_model_free(m);
    assert_non_null(po_model_keys("tiny_gpt"));
    assert_null(po_model_keys("nope"));
}

/* tiny_gpt's max_seq: a position table of max_seq rows of which the graph reads the first seq.
 * Unset, the model (shapes, spec, config) is what it was before the key existed. */
static void tiny_gpt_max_seq(void **st) {
    (void)st;
    expect_error("tiny_gpt:seq=8,max_seq=4", "max_seq=4 must be at least seq=8");
    assert_non_null(strstr(po_model_keys("tiny_gpt"), "max_seq=seq"));
    const char *base = "tiny_gpt:vocab=16,d_model=8,layers=1,heads=2,seq=4,batch=3";
    char spec[256];
    snprintf(spec, sizeof spec, "%s,max_seq=10", base);
    po_model *a, *b, *again;
    PO_CHECK(po_model_build(spec, 0, &a));
    PO_CHECK(po_model_build(base, 0, &b));
    po_shape pa = po_node_shape(po_graph_find_param(a->graph, "pos.weight"));
    po_shape pb = po_node_shape(po_graph_find_param(b->graph, "pos.weight"));
    assert_int_equal(pa.ndim, 2);
    assert_int_equal(pa.dim[0], 10);
    assert_int_equal(pa.dim[1], 8);
    assert_int_equal(pb.dim[0], 4);
    assert_int_equal(po_node_shape(a->x).dim[1], 4);
    assert_non_null(strstr(a->spec, ",max_seq=10"));
    assert_non_null(strstr(a->config, "\"max_seq\": 10"));
    assert_null(strstr(b->spec, "max_seq"));
    assert_null(strstr(b->config, "max_seq"));
    PO_CHECK(po_model_build(a->spec, 0, &again)); /* the resolved spec rebuilds the same table */
    assert_int_equal(po_node_shape(po_graph_find_param(again->graph, "pos.weight")).dim[0], 10);
    po_model_free(again);

    /* Forward of seq=4 with a 10-row table == forward with a table of its first 4 rows, whatever
     * the other rows hold. */
    po_test_run ra, rb;
    po_test_run_new(a->graph, 7, &ra);
    po_test_run_new(b->graph, 8, &rb);
    for (int i = 0; i < po_params_count(ra.params); i++) {
        const po_param_info *ia = po_params_info(ra.params, i);
        const po_param_info *ib = po_params_info(rb.params, po_params_find(rb.params, ia->name));
        float *va = po_params_values(ra.params) + ia->offset, *vb = po_params_values(rb.params) + ib->offset;
        if (strcmp(ia->name, "pos.weight") == 0) {
            assert_int_equal(ia->numel, 80);
            assert_int_equal(ib->numel, 32);
            for (int64_t k = 32; k < 80; k++)
                va[k] = 1e3f; /* rows 4..9: never read */
        } else {
            assert_int_equal(ia->numel, ib->numel);
        }
        memcpy(vb, va, (size_t)ib->numel * sizeof *vb);
    }
    int64_t ids[12];
    for (int i = 0; i < 12; i++)
        ids[i] = (i * 7 + 3) % 16;
    memcpy(po_exec_input_data(ra.exec, a->x), ids, sizeof ids);
    memcpy(po_exec_input_data(rb.exec, b->x), ids, sizeof ids);
    memcpy(po_exec_input_data(ra.exec, a->y), ids, sizeof ids);
    memcpy(po_exec_input_data(rb.exec, b->y), ids, sizeof ids);
    PO_CHECK(po_exec_run(ra.exec));
    PO_CHECK(po_exec_run(rb.exec));
    const float *la = po_exec_output(ra.exec, a->logits), *lb = po_exec_output(rb.exec, b->logits);
    for (int i = 0; i < 3 * 4 * 16; i++)
        assert_float_equal(la[i], lb[i], 1e-6);
    assert_float_equal(*(const float *)po_exec_output(ra.exec, a->loss),
                       *(const float *)po_exec_output(rb.exec, b->loss), 1e-6);
    assert_true(fabsf(la[0]) > 0.0f && fabsf(la[0]) < 1e2f); /* not the 1e3 rows */
    po_test_run_free(&ra);
    po_test_run_free(&rb);
    po_model_free(a);
    po_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(bad_specs), cmocka_unit_test(sizes_and_names),
                                       cmocka_unit_test(tiny_gpt_max_seq)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Model specs and shapes: parsing, validation, sizes, parameter names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(bad_specs), cmocka_unit_test(sizes_and_names)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The reference models against PyTorch's vectors (tests/data/reference, copied from
 * ../shared/reference, and tests/data/reference_extra for other sizes): logits, loss, every
 * gradient, and the parameters after one Adam step, within the tolerances of
 * tests/data/reference/README.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "po_test.h"

/* "name:key=value,..." from the file's config metadata (lists become CxHxW). */
static void spec_from_config(const char *model, const char *config, char *spec, size_t size) {
    json_error_t err;
    json_t *c = json_loads(config, 0, &err);
    assert_non_null(c);
    size_t used = (size_t)snprintf(spec, size, "%s", model);
    const char *key;
    json_t *v;
    char sep = ':';
    json_object_foreach(c, key, v) {
        used += (size_t)snprintf(spec + used, size - used, "%c%s=", sep, key);
        sep = ',';
        if (json_is_integer(v)) {
            used += (size_t)snprintf(spec + used, size - used, "%lld", (long long)json_integer_value(v));
        } else {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) used +=
                (size_t)snprintf(spec + used, size - used, i ? "x%lld" : "%lld", (long long)json_integer_value(e));
        }
    }
    json_decref(c);
}

static void check_file(const char *rel, const char *model) {
    po_st_file *f;
    PO_CHECK(po_st_read(po_test_data(rel), &f));
    char spec[256];
    spec_from_config(model, po_st_meta(f, "config"), spec, sizeof spec);
    po_model *m;
    PO_CHECK(po_model_build(spec, 0, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_trainer *t;
    PO_CHECK(po_trainer_new(m, &o, 1, &t));
    PO_CHECK(po_params_load(po_trainer_params(t), po_test_data(rel)));
    po_tensor *x = po_test_ref_tensor(f, "", "input.x"), *y = po_test_ref_tensor(f, "", "input.y");
    PO_CHECK(po_exec_set_input(po_trainer_exec(t), m->x, x));
    PO_CHECK(po_exec_set_input(po_trainer_exec(t), m->y, y));
    float loss;
    PO_CHECK(po_trainer_step(t, &loss));

    po_tensor *logits = po_test_ref_tensor(f, "", "expect.logits"), *eloss = po_test_ref_tensor(f, "", "expect.loss");
    const float *got = po_exec_output(po_trainer_exec(t), m->logits);
    double e = po_ref_err(got, logits->data, po_tensor_numel(logits));
    print_message("%s: logits err %.3g, loss %.7g vs %.7g\n", rel, e, loss, *(float *)eloss->data);
    assert_true(e <= 1e-3);
    assert_true(po_ref_err(&loss, eloss->data, 1) <= 1e-3);

    po_test_check_adam1(f, po_trainer_params(t), rel);
    po_tensor_free(x);
    po_tensor_free(y);
    po_tensor_free(logits);
    po_tensor_free(eloss);
    po_trainer_free(t);
    po_model_free(m);
    po_st_free(f);
}

static void mnist_mlp(void **s) {
    (void)s;
    check_file("reference/mnist_mlp.safetensors", "mnist_mlp");
}
static void cifar_cnn(void **s) {
    (void)s;
    check_file("reference/cifar_cnn.safetensors", "cifar_cnn");
}
static void tiny_gpt(void **s) {
    (void)s;
    check_file("reference/tiny_gpt.safetensors", "tiny_gpt");
}
static void mnist_mlp_small(void **s) {
    (void)s;
    check_file("reference_extra/mnist_mlp_small.safetensors", "mnist_mlp");
}
static void cifar_cnn_fashion(void **s) {
    (void)s;
    check_file("reference_extra/cifar_cnn_fashion.safetensors", "cifar_cnn");
}
static void tiny_gpt_3l6h(void **s) {
    (void)s;
    check_file("reference_extra/tiny_gpt_3l6h.safetensors", "tiny_gpt");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mnist_mlp),       cmocka_unit_test(cifar_cnn),         cmocka_unit_test(tiny_gpt),
        cmocka_unit_test(mnist_mlp_small), cmocka_unit_test(cifar_cnn_fashion), cmocka_unit_test(tiny_gpt_3l6h),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

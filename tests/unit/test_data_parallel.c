/* Data-parallel training over worker threads gives PyTorch's numbers: one Adam step from the
 * reference parameters matches adam1.* with even and uneven shares, and several steps stay
 * with the single-worker run. */
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

/* Workers on cores 0 and 1 (or both on 0 where the machine has one core: pinning then only
 * shares a core, the arithmetic is the same). */
static po_worker_spec workers[3];

static po_trainer_opts opts_for(int k, const double *shares) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < k; i++)
        workers[i] = (po_worker_spec){(int)(i % (cores > 0 ? cores : 1)), 1, shares[i]};
    return (po_trainer_opts){k, workers, false};
}

static void adam_step_matches_reference(const char *rel, const char *spec, int k, const double *shares) {
    po_st_file *f;
    PO_CHECK(po_st_read(po_test_data(rel), &f));
    po_model *m;
    PO_CHECK(po_model_build(spec, 0, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_trainer_opts opts = opts_for(k, shares);
    po_trainer *t;
    PO_CHECK(po_trainer_new_ex(m, &o, 1, &opts, &t));
    PO_CHECK(po_params_load(po_trainer_params(t), po_test_data(rel)));
    po_test_load_batch(f, t);
    float loss;
    PO_CHECK(po_trainer_step(t, &loss));
    po_tensor *eloss;
    PO_CHECK(po_st_get(f, "expect.loss", &eloss));
    assert_true(po_ref_err(&loss, eloss->data, 1) <= 1e-3);
    po_params *p = po_trainer_params(t);
    double worst = 0.0;
    for (int i = 0; i < po_params_count(p); i++) {
        const po_param_info *pi = po_params_info(p, i);
        char name[256];
        po_tensor *a1, *g;
        snprintf(name, sizeof name, "adam1.%s", pi->name);
        PO_CHECK(po_st_get(f, name, &a1));
        snprintf(name, sizeof name, "grad.%s", pi->name);
        PO_CHECK(po_st_get(f, name, &g));
        const float *after = po_params_values(p) + pi->offset, *av = a1->data, *gv = g->data;
        for (int64_t e = 0; e < pi->numel; e++)
            if (fabsf(gv[e]) >= 1e-7f) worst = fmax(worst, fabs((double)after[e] - av[e]));
        po_tensor_free(a1);
        po_tensor_free(g);
    }
    print_message("%s over %d workers: max |a - adam1| = %.3g\n", rel, k, worst);
    assert_true(worst <= 5e-5);
    assert_int_equal(po_exec_steps(po_trainer_exec(t)), 1);
    po_tensor_free(eloss);
    po_trainer_free(t);
    po_model_free(m);
    po_st_free(f);
}

static void mlp_even(void **st) {
    (void)st;
    double even[2] = {0, 0};
    adam_step_matches_reference("reference/mnist_mlp.safetensors", "mnist_mlp:hidden=64,batch=16", 2, even);
}

static void gpt_uneven(void **st) {
    (void)st;
    double two[2] = {0.67, 0.33}; /* batch 2 -> 1 and 1 rows; weights from the rows */
    adam_step_matches_reference("reference/tiny_gpt.safetensors",
                                "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32,batch=2", 2, two);
}

static void cnn_uneven(void **st) {
    (void)st;
    double shares[3] = {2, 1, 1}; /* batch 4 -> 2, 1, 1 rows */
    adam_step_matches_reference("reference/cifar_cnn.safetensors", "cifar_cnn:c1=8,c2=16,hidden=32,batch=4", 3, shares);
}

/* Ten steps over two workers stay within float rounding of the single-worker run. */
static void many_steps_track_single(void **st) {
    (void)st;
    const char *spec = "mnist_mlp:d_in=40,hidden=24,batch=12";
    po_model *m1, *m2;
    PO_CHECK(po_model_build(spec, 0, &m1));
    PO_CHECK(po_model_build(spec, 0, &m2));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    double shares[2] = {0.75, 0.25};
    po_trainer_opts opts = opts_for(2, shares);
    po_trainer *single, *dp;
    PO_CHECK(po_trainer_new(m1, &o, 3, &single));
    PO_CHECK(po_trainer_new_ex(m2, &o, 3, &opts, &dp));
    po_dataset *d;
    PO_CHECK(po_dataset_synthetic(m1, 48, 5, &d));
    for (int s = 0; s < 10; s++) {
        float l1, l2;
        PO_CHECK(po_dataset_batch(d, s, po_trainer_input(single, 0), po_trainer_input(single, 1)));
        PO_CHECK(po_dataset_batch(d, s, po_trainer_input(dp, 0), po_trainer_input(dp, 1)));
        PO_CHECK(po_trainer_step(single, &l1));
        PO_CHECK(po_trainer_step(dp, &l2));
        assert_true(fabsf(l1 - l2) <= 1e-5f * fmaxf(1.0f, fabsf(l1)));
    }
    po_params *a = po_trainer_params(single), *b = po_trainer_params(dp);
    double worst = 0.0;
    for (size_t e = 0; e < po_params_total(a); e++)
        worst = fmax(worst, fabs((double)po_params_values(a)[e] - po_params_values(b)[e]));
    print_message("10 steps: max parameter difference %.3g\n", worst);
    assert_true(worst < 1e-4);
    po_dataset_free(d);
    po_trainer_free(single);
    po_trainer_free(dp);
    po_model_free(m1);
    po_model_free(m2);
}

static void too_many_workers_for_the_batch(void **st) {
    (void)st;
    po_model *m;
    PO_CHECK(po_model_build("mnist_mlp:d_in=8,hidden=4,batch=2", 0, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    double shares[3] = {0, 0, 0};
    po_trainer_opts opts = opts_for(3, shares);
    po_trainer *t = NULL;
    assert_int_equal(po_trainer_new_ex(m, &o, 1, &opts, &t), PO_ERR_INVALID_ARG);
    assert_null(t);
    po_model_free(m);
}

/* A worker made 3x slower (emulated) gets fewer rows after a few steps, and training still
 * computes the whole batch's gradient: the loss keeps matching a single-worker run. */
static void rebalances_toward_the_faster_worker(void **st) {
    (void)st;
    const char *spec = "mnist_mlp:d_in=256,hidden=512,batch=64";
    po_model *m, *m1;
    PO_CHECK(po_model_build(spec, 0, &m));
    PO_CHECK(po_model_build(spec, 0, &m1));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    o.lr = 0.01f;
    double even[2] = {0, 0};
    po_trainer_opts opts = opts_for(2, even);
    opts.rebalance = true;
    po_trainer *t, *single;
    PO_CHECK(po_trainer_new_ex(m, &o, 3, &opts, &t));
    PO_CHECK(po_trainer_new(m1, &o, 3, &single));
    PO_CHECK(po_trainer_set_slowdown(t, 1, 3.0f));
    po_dataset *d;
    PO_CHECK(po_dataset_synthetic(m, 256, 5, &d));
    for (int s = 0; s < 30; s++) {
        float l, l1;
        PO_CHECK(po_dataset_batch(d, s, po_trainer_input(t, 0), po_trainer_input(t, 1)));
        PO_CHECK(po_dataset_batch(d, s, po_trainer_input(single, 0), po_trainer_input(single, 1)));
        PO_CHECK(po_trainer_step(t, &l));
        PO_CHECK(po_trainer_step(single, &l1));
        assert_true(fabsf(l - l1) <= 1e-4f * fmaxf(1.0f, fabsf(l1)));
    }
    po_worker_stats w0, w1;
    PO_CHECK(po_trainer_worker_stats(t, 0, &w0));
    PO_CHECK(po_trainer_worker_stats(t, 1, &w1));
    print_message("after %lld re-splits: %lld and %lld rows\n", (long long)po_trainer_rebalances(t), (long long)w0.rows,
                  (long long)w1.rows);
    assert_true(po_trainer_rebalances(t) >= 1);
    assert_true(w1.rows < w0.rows);
    assert_int_equal(w0.rows + w1.rows, 64);
    assert_int_equal(po_exec_steps(po_trainer_exec(t)), 30);
    po_dataset_free(d);
    po_trainer_free(t);
    po_trainer_free(single);
    po_model_free(m);
    po_model_free(m1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mlp_even),
        cmocka_unit_test(gpt_uneven),
        cmocka_unit_test(cnn_uneven),
        cmocka_unit_test(many_steps_track_single),
        cmocka_unit_test(too_many_workers_for_the_batch),
        cmocka_unit_test(rebalances_toward_the_faster_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Pipeline-parallel training (GPipe and 1F1B over micro-batches) gives PyTorch's numbers: one
 * Adam step from the reference parameters matches adam1.* for every cut, schedule and
 * micro-batch count; one micro-batch gives the single-device step bit for bit, several give it
 * up to rounding; several steps in a row stay with single-device training; 1F1B holds at most
 * n_stages - s micro-batches at stage s; bad stage layouts are refused with a message. */
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
#include "runtime/pp.h"

#define MLP_SPEC "mnist_mlp:hidden=64,batch=16"
#define GPT_SPEC "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32,batch=2"

/* Stages on cores 0, 1, ... modulo the cores there are: stages sharing a core compute the same
 * numbers, only slower. */
static po_pipeline_stage stages[8];

static po_pipeline_opts opts_for(const int *last_layers, int k, int micro, bool one_f_one_b) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int first = 0;
    for (int i = 0; i < k; i++) {
        stages[i] = (po_pipeline_stage){first, last_layers[i], {(int)(i % (cores > 0 ? cores : 1)), 1, 0.0}};
        first = last_layers[i] + 1;
    }
    return (po_pipeline_opts){k, stages, micro, one_f_one_b, false};
}

/* The single-device step from the reference parameters, for comparison. */
static po_trainer *single_step(po_st_file *f, const char *rel, const char *spec, po_model **m, float *loss) {
    PO_CHECK(po_model_build(spec, 0, m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_trainer *t;
    PO_CHECK(po_trainer_new(*m, &o, 1, &t));
    PO_CHECK(po_params_load(po_trainer_params(t), po_test_data(rel)));
    po_test_load_batch(f, t);
    PO_CHECK(po_trainer_step(t, loss));
    return t;
}

static void step_matches(const char *rel, const char *spec, const int *last_layers, int k, int micro, bool ofob) {
    po_st_file *f;
    PO_CHECK(po_st_read(po_test_data(rel), &f));
    po_model *m, *m1;
    PO_CHECK(po_model_build(spec, 0, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_pipeline_opts opts = opts_for(last_layers, k, micro, ofob);
    po_trainer *t;
    PO_CHECK(po_trainer_new_pipeline(m, &o, 1, &opts, &t));
    assert_int_equal(po_trainer_n_workers(t), k);
    PO_CHECK(po_params_load(po_trainer_params(t), po_test_data(rel)));
    po_test_load_batch(f, t);
    float loss, loss1;
    PO_CHECK(po_trainer_step(t, &loss));
    po_trainer *single = single_step(f, rel, spec, &m1, &loss1);

    po_tensor *eloss;
    PO_CHECK(po_st_get(f, "expect.loss", &eloss));
    double loss_err = po_ref_err(&loss, eloss->data, 1);
    assert_true(loss_err <= 1e-3);
    po_params *p = po_trainer_params(t), *p1 = po_trainer_params(single);
    double worst = 0.0, vs_single = 0.0, grad_rel = 0.0, grad_norm = 0.0;
    for (int i = 0; i < po_params_count(p); i++) {
        const po_param_info *pi = po_params_info(p, i);
        char name[256];
        po_tensor *a1, *g;
        snprintf(name, sizeof name, "adam1.%s", pi->name);
        PO_CHECK(po_st_get(f, name, &a1));
        snprintf(name, sizeof name, "grad.%s", pi->name);
        PO_CHECK(po_st_get(f, name, &g));
        const float *after = po_params_values(p) + pi->offset, *single_after = po_params_values(p1) + pi->offset;
        const float *av = a1->data, *gv = g->data;
        for (int64_t e = 0; e < pi->numel; e++)
            if (fabsf(gv[e]) >= 1e-7f) {
                worst = fmax(worst, fabs((double)after[e] - av[e]));
                vs_single = fmax(vs_single, fabs((double)after[e] - single_after[e]));
            }
        /* The accumulated gradient against the single device's, in the reference measure. */
        const float *ga = po_params_grads(p) + pi->offset, *gb = po_params_grads(p1) + pi->offset;
        grad_rel = fmax(grad_rel, po_ref_err(ga, gb, pi->numel));
        /* ... and relative to the tensor's largest gradient: what summation order changes. */
        double diff = 0.0, big = 0.0;
        for (int64_t e = 0; e < pi->numel; e++) {
            diff = fmax(diff, fabs((double)ga[e] - gb[e]));
            big = fmax(big, fabs((double)gb[e]));
        }
        if (big > 0.0) grad_norm = fmax(grad_norm, diff / big);
        po_tensor_free(a1);
        po_tensor_free(g);
    }
    bool same =
        memcmp(po_params_values(p), po_params_values(p1), po_params_total(p) * sizeof(float)) == 0 && loss == loss1;
    print_message("%-8s %d stages %s m=%d: max |a - adam1| = %.3g, vs single: params %.3g, grads %.3g (ref "
                  "measure) %.3g (of max), loss %.3g%s\n",
                  strstr(rel, "gpt")   ? "tiny_gpt"
                  : strstr(rel, "cnn") ? "cnn"
                                       : "mlp",
                  k, ofob ? "1F1B " : "GPipe", micro, worst, vs_single, grad_rel, grad_norm, fabs((double)loss - loss1),
                  same ? " (bit-identical)" : "");
    assert_true(worst <= 5e-5);
    if (micro == 1) {
        assert_true(same); /* the same graph and kernels: the same bits */
    } else {
        assert_true(grad_rel <= 1e-3);
        assert_true(grad_norm <= 1e-5);
        assert_true(vs_single <= 1e-6);
        assert_true(fabsf(loss - loss1) <= 1e-6f * fmaxf(1.0f, fabsf(loss1)));
    }
    assert_int_equal(po_exec_steps(po_trainer_exec(t)), 1);
    po_worker_stats ws;
    PO_CHECK(po_trainer_worker_stats(t, k - 1, &ws));
    assert_int_equal(ws.rows * micro, po_node_shape(m->x).dim[0]);
    assert_true(ws.compute_s > 0.0);
    po_tensor_free(eloss);
    po_trainer_free(t);
    po_trainer_free(single);
    po_model_free(m);
    po_model_free(m1);
    po_st_free(f);
}

static void mlp_two_stages(void **st) {
    (void)st;
    int cut[2] = {0, 2}; /* l1 | l2 l3 */
    for (int ofob = 0; ofob < 2; ofob++)
        for (int micro = 1; micro <= 4; micro *= 2)
            step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut, 2, micro, ofob);
}

static void mlp_three_stages(void **st) {
    (void)st;
    int cut[3] = {0, 1, 2};
    for (int ofob = 0; ofob < 2; ofob++)
        step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut, 3, 4, ofob);
}

static void gpt_two_stages(void **st) {
    (void)st;
    int cut[2] = {0, 3}; /* embed | blocks.0 blocks.1 head */
    for (int ofob = 0; ofob < 2; ofob++)
        for (int micro = 1; micro <= 2; micro++)
            step_matches("reference/tiny_gpt.safetensors", GPT_SPEC, cut, 2, micro, ofob);
}

static void gpt_three_stages(void **st) {
    (void)st;
    int cut[3] = {1, 2, 3}; /* embed blocks.0 | blocks.1 | head */
    for (int ofob = 0; ofob < 2; ofob++)
        for (int micro = 1; micro <= 2; micro++)
            step_matches("reference/tiny_gpt.safetensors", GPT_SPEC, cut, 3, micro, ofob);
}

static void cnn_stages(void **st) {
    (void)st;
    int cut2[2] = {1, 3}, cut4[4] = {0, 1, 2, 3}; /* c1 c2 | f1 f2, and one layer each */
    step_matches("reference/cifar_cnn.safetensors", "cifar_cnn:c1=8,c2=16,hidden=32,batch=4", cut2, 2, 2, false);
    step_matches("reference/cifar_cnn.safetensors", "cifar_cnn:c1=8,c2=16,hidden=32,batch=4", cut4, 4, 4, true);
}

/* 1F1B keeps at most n_stages - s micro-batches in flight at stage s; GPipe holds all m. */
static void in_flight_bounds(void **st) {
    (void)st;
    int cut[3] = {0, 1, 2};
    for (int ofob = 0; ofob < 2; ofob++) {
        po_model *m;
        PO_CHECK(po_model_build("mnist_mlp:d_in=20,hidden=16,batch=12", 0, &m));
        po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
        po_pipeline_opts opts = opts_for(cut, 3, 6, ofob);
        po_trainer *t;
        PO_CHECK(po_trainer_new_pipeline(m, &o, 2, &opts, &t));
        po_dataset *d;
        PO_CHECK(po_dataset_synthetic(m, 24, 5, &d));
        for (int s = 0; s < 2; s++) {
            PO_CHECK(po_dataset_batch(d, s, po_trainer_input(t, 0), po_trainer_input(t, 1)));
            PO_CHECK(po_trainer_step(t, NULL));
        }
        po_pp *pp = po__trainer_pp(t);
        assert_non_null(pp);
        for (int s = 0; s < 3; s++) {
            int bound = ofob ? 3 - s : 6;
            print_message("%s stage %d: %d executors, at most %d micro-batches in flight\n", ofob ? "1F1B " : "GPipe",
                          s, po__pp_slots(pp, s), po__pp_max_in_flight(pp, s));
            assert_int_equal(po__pp_slots(pp, s), bound);
            assert_int_equal(po__pp_max_in_flight(pp, s), bound);
        }
        po_dataset_free(d);
        po_trainer_free(t);
        po_model_free(m);
    }
}

static void expect_invalid(po_model *m, const po_pipeline_opts *opts, const char *what) {
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_trainer *t = (po_trainer *)1;
    assert_int_equal(po_trainer_new_pipeline(m, &o, 1, opts, &t), PO_ERR_INVALID_ARG);
    assert_null(t);
    print_message("%s: %s\n", what, po_last_error());
    assert_non_null(strstr(po_last_error(), "pipeline"));
}

static void bad_layouts_are_refused(void **st) {
    (void)st;
    po_model *m;
    PO_CHECK(po_model_build("mnist_mlp:d_in=8,hidden=4,batch=6", 0, &m));
    po_pipeline_opts opts;
    int gap[2] = {0, 2};
    opts = opts_for(gap, 2, 2, false);
    stages[1].first_layer = 2; /* layer 1 belongs to no stage */
    expect_invalid(m, &opts, "gap");
    int short_cut[2] = {0, 1}; /* layer 2 missing */
    opts = opts_for(short_cut, 2, 2, false);
    expect_invalid(m, &opts, "short");
    int too_far[2] = {0, 3};
    opts = opts_for(too_far, 2, 2, true);
    expect_invalid(m, &opts, "beyond the last layer");
    int ok[2] = {0, 2};
    opts = opts_for(ok, 2, 4, false); /* 4 does not divide 6 */
    expect_invalid(m, &opts, "micro-batches");
    opts = opts_for(ok, 2, 0, false);
    expect_invalid(m, &opts, "no micro-batches");
    opts = opts_for(ok, 0, 1, false);
    expect_invalid(m, &opts, "no stages");
    po_model_free(m);
}

/* A stage that fails (a target out of range, met by the last stage's loss) fails the step with
 * its message, leaves no stage waiting and changes no parameter; the next good step trains. */
static void a_failing_stage_fails_the_step(void **st) {
    (void)st;
    int cut[3] = {0, 1, 2};
    for (int ofob = 0; ofob < 2; ofob++) {
        po_model *m;
        PO_CHECK(po_model_build("mnist_mlp:d_in=20,hidden=16,batch=8", 0, &m));
        po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
        po_pipeline_opts opts = opts_for(cut, 3, 4, ofob);
        po_trainer *t;
        PO_CHECK(po_trainer_new_pipeline(m, &o, 2, &opts, &t));
        po_dataset *d;
        PO_CHECK(po_dataset_synthetic(m, 8, 5, &d));
        PO_CHECK(po_dataset_batch(d, 0, po_trainer_input(t, 0), po_trainer_input(t, 1)));
        po_params *p = po_trainer_params(t);
        size_t bytes = po_params_total(p) * sizeof(float);
        float *before = malloc(bytes);
        assert_non_null(before);
        memcpy(before, po_params_values(p), bytes);
        int64_t *y = po_trainer_input(t, 1)->data;
        int64_t saved = y[5];
        y[5] = 99; /* micro-batch 2 */
        float loss;
        assert_int_equal(po_trainer_step(t, &loss), PO_ERR_RANGE);
        print_message("%s: %s\n", ofob ? "1F1B" : "GPipe", po_last_error());
        assert_non_null(strstr(po_last_error(), "stage 2"));
        assert_int_equal(memcmp(before, po_params_values(p), bytes), 0);
        assert_int_equal(po_exec_steps(po_trainer_exec(t)), 0);
        y[5] = saved;
        PO_CHECK(po_trainer_step(t, &loss));
        assert_true(isfinite(loss));
        assert_int_equal(po_exec_steps(po_trainer_exec(t)), 1);
        free(before);
        po_dataset_free(d);
        po_trainer_free(t);
        po_model_free(m);
    }
}

/* Ten steps stay with the single-device run: one micro-batch bit for bit, several within
 * rounding; statistics, slowdown and a trace work through the trainer API. */
static void many_steps_track_single(void **st) {
    (void)st;
    const char *spec = "mnist_mlp:d_in=40,hidden=24,batch=12";
    struct {
        int k, micro;
        bool ofob;
    } cases[] = {{2, 1, true}, {3, 3, true}, {3, 4, false}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        po_model *m1, *m2;
        PO_CHECK(po_model_build(spec, 0, &m1));
        PO_CHECK(po_model_build(spec, 0, &m2));
        po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
        int cut2[2] = {1, 2}, cut3[3] = {0, 1, 2};
        po_pipeline_opts opts = opts_for(cases[c].k == 2 ? cut2 : cut3, cases[c].k, cases[c].micro, cases[c].ofob);
        po_trainer *single, *pp;
        PO_CHECK(po_trainer_new(m1, &o, 3, &single));
        PO_CHECK(po_trainer_new_pipeline(m2, &o, 3, &opts, &pp));
        PO_CHECK(po_trainer_set_slowdown(pp, 0, 1.5f));
        assert_int_equal(po_trainer_set_slowdown(pp, cases[c].k, 2.0f), PO_ERR_INVALID_ARG);
        po_trace *tr;
        PO_CHECK(po_trace_new(cases[c].k, &tr));
        po_trainer_set_trace(pp, tr);
        po_dataset *d;
        PO_CHECK(po_dataset_synthetic(m1, 48, 5, &d));
        double worst_loss = 0.0;
        bool same = true;
        for (int s = 0; s < 10; s++) {
            float l1, l2;
            PO_CHECK(po_dataset_batch(d, s, po_trainer_input(single, 0), po_trainer_input(single, 1)));
            PO_CHECK(po_dataset_batch(d, s, po_trainer_input(pp, 0), po_trainer_input(pp, 1)));
            PO_CHECK(po_trainer_step(single, &l1));
            if (s == 4) po_trace_begin_step(tr, s);
            PO_CHECK(po_trainer_step(pp, &l2));
            if (s == 4) po_trace_end_step(tr);
            worst_loss = fmax(worst_loss, fabs((double)l1 - l2) / fmax(1.0, fabs((double)l1)));
            same = same && l1 == l2;
        }
        po_params *a = po_trainer_params(single), *b = po_trainer_params(pp);
        double worst = 0.0;
        for (size_t e = 0; e < po_params_total(a); e++)
            worst = fmax(worst, fabs((double)po_params_values(a)[e] - po_params_values(b)[e]));
        same = same && worst == 0.0;
        print_message("10 steps, %d stages %s m=%d: loss rel diff %.3g, params %.3g%s; %lld trace slices\n", cases[c].k,
                      cases[c].ofob ? "1F1B" : "GPipe", cases[c].micro, worst_loss, worst,
                      same ? " (bit-identical)" : "", (long long)po_trace_n_slices(tr));
        assert_true(worst_loss <= 1e-5);
        assert_true(worst < 1e-4);
        if (cases[c].micro == 1) assert_true(same);
        assert_int_equal(po_exec_steps(po_trainer_exec(pp)), 10);
        assert_true(po_trace_n_slices(tr) > 0);
        /* Evaluation runs the whole model on the master parameters: same as the single run's. */
        po_eval_result e1, e2;
        PO_CHECK(po_trainer_evaluate(single, d, 16, &e1));
        PO_CHECK(po_trainer_evaluate(pp, d, 16, &e2));
        assert_true(fabs(e1.loss - e2.loss) <= 1e-4 * fmax(1.0, fabs(e1.loss)));
        po_trainer_set_trace(pp, NULL);
        po_trace_free(tr);
        po_dataset_free(d);
        po_trainer_free(single);
        po_trainer_free(pp);
        po_model_free(m1);
        po_model_free(m2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mlp_two_stages),
        cmocka_unit_test(mlp_three_stages),
        cmocka_unit_test(gpt_two_stages),
        cmocka_unit_test(gpt_three_stages),
        cmocka_unit_test(cnn_stages),
        cmocka_unit_test(in_flight_bounds),
        cmocka_unit_test(bad_layouts_are_refused),
        cmocka_unit_test(a_failing_stage_fails_the_step),
        cmocka_unit_test(many_steps_track_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Hybrid training (pipeline stages each data parallel over a group) gives PyTorch's numbers: one
 * Adam step from the reference parameters matches adam1.* for every cut, group size, schedule,
 * micro-batch count and lane shares, and the single-device step up to rounding; with one
 * micro-batch it gives exactly what data parallel over the lanes gives (the same gradient sum);
 * workers are numbered stage-major; plans the lanes cannot run and lanes without rows are refused
 * with a message. Workers share cores where there are fewer cores than workers: the numbers are
 * the same, only slower. */
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

#define MLP_SPEC "mnist_mlp:hidden=64,batch=16"
#define GPT_SPEC "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32,batch=2"
#define CNN_SPEC "cifar_cnn:c1=8,c2=16,hidden=32,batch=4"

static po_pipeline_stage stages[8];
static po_worker_spec workers[32];

/* k stages ending at last_layers, g replicas each, worker w on core w modulo the cores. */
static po_hybrid_opts opts_for(const int *last_layers, int k, int g, int micro, bool ofob, const double *shares) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    int first = 0;
    for (int s = 0; s < k; s++) {
        stages[s] = (po_pipeline_stage){first, last_layers[s], {0, 1, 0.0}};
        first = last_layers[s] + 1;
    }
    for (int w = 0; w < k * g; w++)
        workers[w] = (po_worker_spec){(int)(w % cores), 1, 0.0};
    return (po_hybrid_opts){{k, stages, micro, ofob, false}, g, workers, shares};
}

/* One step of t from the reference parameters on the reference batch. */
static void stepped(po_st_file *f, const char *rel, po_trainer *t, float *loss) {
    PO_CHECK(po_params_load(po_trainer_params(t), po_test_data(rel)));
    po_test_load_batch(f, t);
    PO_CHECK(po_trainer_step(t, loss));
}

static void step_matches(const char *rel, const char *spec, const int *last_layers, int k, int g, int micro,
                         bool ofob, const double *shares) {
    po_st_file *f;
    PO_CHECK(po_st_read(po_test_data(rel), &f));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_model *m, *m1, *md;
    PO_CHECK(po_model_build(spec, 0, &m));
    PO_CHECK(po_model_build(spec, 0, &m1));
    PO_CHECK(po_model_build(spec, 0, &md));
    po_hybrid_opts opts = opts_for(last_layers, k, g, micro, ofob, shares);
    po_trainer *t, *t1, *td;
    PO_CHECK(po_trainer_new_hybrid(m, &o, 1, &opts, &t));
    assert_int_equal(po_trainer_n_workers(t), k * g);
    PO_CHECK(po_trainer_new(m1, &o, 1, &t1));
    /* Data parallel over the lanes: the same rows per lane (worker r = lane r's rows). */
    po_worker_spec dw[8];
    int64_t batch = po_node_shape(m->x).dim[0];
    for (int r = 0; r < g; r++) {
        po_worker_stats ws;
        PO_CHECK(po_trainer_worker_stats(t, r, &ws)); /* stage 0, replica r */
        dw[r] = (po_worker_spec){r, 1, (double)(ws.rows * micro) / (double)batch};
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (int r = 0; r < g; r++)
        dw[r].first_core = (int)(r % (cores > 0 ? cores : 1));
    po_trainer_opts dopts = {g, dw, false};
    PO_CHECK(po_trainer_new_ex(md, &o, 1, &dopts, &td));
    float loss, loss1, lossd;
    stepped(f, rel, t, &loss);
    stepped(f, rel, t1, &loss1);
    stepped(f, rel, td, &lossd);
    for (int r = 0; r < g; r++)
        assert_int_equal(po_trainer_worker_rows(td, r) * 1, po_trainer_worker_rows(t, r) * micro);

    po_tensor *eloss;
    PO_CHECK(po_st_get(f, "expect.loss", &eloss));
    assert_true(po_ref_err(&loss, eloss->data, 1) <= 1e-3);
    po_params *p = po_trainer_params(t), *p1 = po_trainer_params(t1), *pd = po_trainer_params(td);
    double worst = 0.0, vs_single = 0.0, grad_norm = 0.0;
    for (int i = 0; i < po_params_count(p); i++) {
        const po_param_info *pi = po_params_info(p, i);
        char name[256];
        po_tensor *a1, *gr;
        snprintf(name, sizeof name, "adam1.%s", pi->name);
        PO_CHECK(po_st_get(f, name, &a1));
        snprintf(name, sizeof name, "grad.%s", pi->name);
        PO_CHECK(po_st_get(f, name, &gr));
        const float *after = po_params_values(p) + pi->offset, *single_after = po_params_values(p1) + pi->offset;
        const float *av = a1->data, *gv = gr->data;
        for (int64_t e = 0; e < pi->numel; e++)
            if (fabsf(gv[e]) >= 1e-7f) {
                worst = fmax(worst, fabs((double)after[e] - av[e]));
                vs_single = fmax(vs_single, fabs((double)after[e] - single_after[e]));
            }
        /* The averaged gradient against the reference's, relative to the tensor's largest. */
        const float *ga = po_params_grads(p) + pi->offset;
        double diff = 0.0, big = 0.0;
        for (int64_t e = 0; e < pi->numel; e++) {
            diff = fmax(diff, fabs((double)ga[e] - gv[e]));
            big = fmax(big, fabs((double)gv[e]));
        }
        if (big > 0.0) grad_norm = fmax(grad_norm, diff / big);
        po_tensor_free(a1);
        po_tensor_free(gr);
    }
    bool same_as_dp =
        memcmp(po_params_values(p), po_params_values(pd), po_params_total(p) * sizeof(float)) == 0 && loss == lossd;
    print_message("%-8s %d stages x %d %s m=%d: max |a - adam1| = %.3g, vs single %.3g, grads %.3g (of max)%s\n",
                  strstr(rel, "gpt")   ? "tiny_gpt"
                  : strstr(rel, "cnn") ? "cnn"
                                       : "mlp",
                  k, g, ofob ? "1F1B " : "GPipe", micro, worst, vs_single, grad_norm,
                  same_as_dp ? " (bit-identical to data parallel)" : "");
    assert_true(worst <= 5e-5);
    assert_true(vs_single <= 1e-6);
    assert_true(grad_norm <= 1e-4);
    assert_true(fabsf(loss - loss1) <= 1e-6f * fmaxf(1.0f, fabsf(loss1)));
    if (micro == 1) assert_true(same_as_dp); /* each lane's step is one worker's: the same sum */
    assert_int_equal(po_exec_steps(po_trainer_exec(t)), 1);
    /* Workers are stage-major: worker s * g + r is stage s of lane r, and every one worked. */
    int64_t rows = 0;
    for (int w = 0; w < k * g; w++) {
        po_worker_stats ws;
        PO_CHECK(po_trainer_worker_stats(t, w, &ws));
        assert_true(ws.compute_s > 0.0);
        if (w < g) rows += ws.rows * micro;
        po_worker_stats s0;
        PO_CHECK(po_trainer_worker_stats(t, w % g, &s0));
        assert_int_equal(ws.rows, s0.rows); /* a lane's stages take the same rows */
    }
    assert_int_equal(rows, batch);
    po_worker_stats none;
    assert_int_equal(po_trainer_worker_stats(t, k * g, &none), PO_ERR_INVALID_ARG);
    po_tensor_free(eloss);
    po_trainer_free(t);
    po_trainer_free(t1);
    po_trainer_free(td);
    po_model_free(m);
    po_model_free(m1);
    po_model_free(md);
    po_st_free(f);
}

static void mlp_hybrid(void **st) {
    (void)st;
    int cut[2] = {0, 2}; /* l1 | l2 l3 */
    double uneven[2] = {0.25, 0.75};
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut, 2, 2, 1, false, NULL);
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut, 2, 2, 2, true, NULL);
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut, 2, 2, 2, false, uneven);
    int cut3[3] = {0, 1, 2};
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut3, 3, 2, 4, true, NULL);
    step_matches("reference/mnist_mlp.safetensors", MLP_SPEC, cut, 2, 4, 1, false, NULL);
}

static void gpt_hybrid(void **st) {
    (void)st;
    int cut[2] = {1, 3}; /* embed blocks.0 | blocks.1 head */
    step_matches("reference/tiny_gpt.safetensors", GPT_SPEC, cut, 2, 2, 1, false, NULL);
    step_matches("reference/tiny_gpt.safetensors", GPT_SPEC, cut, 2, 2, 1, true, NULL);
}

static void cnn_hybrid(void **st) {
    (void)st;
    int cut[2] = {1, 3}; /* c1 c2 | f1 f2 */
    step_matches("reference/cifar_cnn.safetensors", CNN_SPEC, cut, 2, 2, 2, true, NULL);
}

/* Lanes that get no row of a micro-batch, bad replica counts; plans the lanes cannot run. */
static void bad_layouts_are_refused(void **st) {
    (void)st;
    po_model *m;
    PO_CHECK(po_model_build(MLP_SPEC, 0, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_SGD);
    int cut[2] = {0, 2};
    double tiny[2] = {0.05, 0.95};
    po_hybrid_opts opts = opts_for(cut, 2, 2, 4, false, tiny); /* 4 units of 4 rows: 0.2 of one */
    po_trainer *t = NULL;
    assert_int_equal(po_trainer_new_hybrid(m, &o, 1, &opts, &t), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "too small"));
    assert_null(t);
    opts = opts_for(cut, 2, 0, 1, false, NULL);
    assert_int_equal(po_trainer_new_hybrid(m, &o, 1, &opts, &t), PO_ERR_INVALID_ARG);
    opts = opts_for(cut, 2, 2, 3, false, NULL); /* 3 does not divide 16 */
    assert_int_equal(po_trainer_new_hybrid(m, &o, 1, &opts, &t), PO_ERR_INVALID_ARG);

    /* A plan whose stages have different group sizes or shares cannot run as lanes. */
    po_machine *mach;
    PO_CHECK(po_machine_discover(NULL, &mach));
    po_device_list devs;
    PO_CHECK(po_devices_parse(mach, "cpu:0", &devs));
    po_plan_replica r2[2] = {{"cpu:0", 0.5}, {"cpu:0", 0.5}}, r1[1] = {{"cpu:0", 1.0}};
    po_plan_stage ps[2] = {{0, 0, false, 2, r2}, {1, 2, false, 1, r1}};
    po_plan p;
    memset(&p, 0, sizeof p);
    p.strategy = PO_STRATEGY_HYBRID;
    p.n_stages = 2;
    p.stages = ps;
    p.micro_batches = 1;
    po_worker_spec w[8];
    int n;
    assert_int_equal(po_plan_workers(&p, &devs, w, NULL, 8, &n), PO_ERR_UNSUPPORTED);
    assert_non_null(strstr(po_last_error(), "as many devices"));
    po_plan_replica r2b[2] = {{"cpu:0", 0.25}, {"cpu:0", 0.75}};
    ps[1] = (po_plan_stage){1, 2, false, 2, r2b};
    assert_int_equal(po_plan_workers(&p, &devs, w, NULL, 8, &n), PO_ERR_UNSUPPORTED);
    assert_non_null(strstr(po_last_error(), "split the batch alike"));
    ps[1] = (po_plan_stage){1, 2, false, 2, r2};
    PO_CHECK(po_plan_workers(&p, &devs, w, NULL, 8, &n));
    assert_int_equal(n, 4);
    po_device_list_free(&devs);
    po_machine_free(mach);
    po_model_free(m);
}

/* A hybrid plan through po_trainer_new_plan (the CLI's path) trains what po_trainer_new_hybrid
 * trains, bit for bit, with the plan's shares and schedule. The devices repeat so the test runs on
 * any core count (plan validation, not po_plan_workers, refuses repeated devices). */
static void plan_trains_hybrid(void **st) {
    (void)st;
    po_st_file *f;
    PO_CHECK(po_st_read(po_test_data("reference/mnist_mlp.safetensors"), &f));
    po_machine *mach;
    PO_CHECK(po_machine_discover(NULL, &mach));
    po_device_list devs;
    PO_CHECK(po_devices_parse(mach, "cpu:0", &devs));
    po_plan_replica ra[2] = {{"cpu:0", 0.25}, {"cpu:0", 0.75}}, rb[2] = {{"cpu:0", 0.25}, {"cpu:0", 0.75}};
    po_plan_stage ps[2] = {{0, 0, false, 2, ra}, {1, 2, false, 2, rb}};
    po_plan p;
    memset(&p, 0, sizeof p);
    p.strategy = PO_STRATEGY_HYBRID;
    p.n_stages = 2;
    p.stages = ps;
    p.micro_batches = 2;
    p.schedule = PO_SCHEDULE_1F1B;
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_model *m, *m2;
    PO_CHECK(po_model_build(MLP_SPEC, 0, &m));
    PO_CHECK(po_model_build(MLP_SPEC, 0, &m2));
    po_trainer *t, *t2;
    PO_CHECK(po_trainer_new_plan(m, &o, 1, &p, &devs, false, &t));
    int cut[2] = {0, 2};
    double shares[2] = {0.25, 0.75};
    po_hybrid_opts opts = opts_for(cut, 2, 2, 2, true, shares);
    PO_CHECK(po_trainer_new_hybrid(m2, &o, 1, &opts, &t2));
    assert_int_equal(po_trainer_n_workers(t), 4);
    float l, l2;
    for (int step = 0; step < 2; step++) {
        stepped(f, "reference/mnist_mlp.safetensors", t, &l);
        stepped(f, "reference/mnist_mlp.safetensors", t2, &l2);
        assert_true(l == l2);
    }
    po_params *a = po_trainer_params(t), *b = po_trainer_params(t2);
    assert_memory_equal(po_params_values(a), po_params_values(b), po_params_total(a) * sizeof(float));
    po_worker_stats ws;
    PO_CHECK(po_trainer_worker_stats(t, 3, &ws)); /* stage 1, lane 1: 0.75 of 16 rows, 2 micro-batches */
    assert_int_equal(ws.rows, 6);
    /* The update is the workers' own: each of the four (stage s, lane r: track r + 2s) averages
     * and applies a stretch of its stage's parameters, recorded on its own track. */
    po_trace *tr;
    PO_CHECK(po_trace_new(4, &tr));
    po_trainer_set_trace(t, tr);
    po_trace_begin_step(tr, 3);
    stepped(f, "reference/mnist_mlp.safetensors", t, &l);
    po_trace_end_step(tr);
    po_trainer_set_trace(t, NULL);
    char path[64];
    snprintf(path, sizeof path, "/tmp/po_hybrid_%d.json", (int)getpid());
    PO_CHECK(po_trace_write(tr, path));
    po_trace_free(tr);
    size_t len;
    char *text = (char *)po_test_read_file(path, &len);
    text[len] = '\0';
    remove(path);
    for (int track = 0; track < 4; track++) {
        char want[96];
        snprintf(want, sizeof want, "\"tid\":%d,\"name\":\"optimizer\"", track);
        assert_non_null(strstr(text, want));
        snprintf(want, sizeof want, "\"tid\":%d,\"name\":\"all-reduce\"", track);
        assert_non_null(strstr(text, want));
    }
    free(text);
    po_trainer_free(t);
    po_trainer_free(t2);
    po_model_free(m);
    po_model_free(m2);
    po_device_list_free(&devs);
    po_machine_free(mach);
    po_st_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mlp_hybrid),
        cmocka_unit_test(gpt_hybrid),
        cmocka_unit_test(cnn_hybrid),
        cmocka_unit_test(bad_layouts_are_refused),
        cmocka_unit_test(plan_trains_hybrid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

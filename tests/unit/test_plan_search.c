/* The planner end to end on synthetic clusters: data-parallel shares 2:1 on a device twice as
 * fast (acceptance 2), memory never exceeded, energy against time objectives (acceptance 3), the
 * slowdown limit, EDP, strategy restriction, the simulator's schedules, validation, plan JSON
 * (round trip, line/column errors) and the plan cache. */
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

#include "paropt/paropt.h"
#include "po_test.h"

static po_cluster_device synth(const char *id, double gflops, double bw_gbs, double mem_bytes, double active_w,
                               double idle_w) {
    po_cluster_device d;
    memset(&d, 0, sizeof d);
    snprintf(d.dev.id, sizeof d.dev.id, "%s", id);
    d.dev.kind = PO_DEVICE_CUDA;
    d.dev.gpu = -1;
    d.dev.memory_bytes = (int64_t)mem_bytes;
    d.perf.gemm_gflops = gflops;
    d.perf.mem_bandwidth_gbs = bw_gbs;
    d.perf.elementwise_gelems = bw_gbs / 8.0;
    d.perf.dispatch_us = 20.0 / gflops; /* "twice as fast in every figure" halves it too */
    d.perf.gemm_call_us = 20.0 / gflops;
    d.active_w = active_w;
    d.idle_w = idle_w;
    d.memory_group = -1;
    return d;
}

typedef struct {
    po_cluster *c;
    po_cost_model *cm;
    po_workload *w;
} env;

static void env_free(env *e) {
    po_workload_free(e->w);
    po_cost_model_free(e->cm);
    po_cluster_free(e->c);
}

static void env_new(env *e, const char *spec, int64_t batch, const po_cluster_device *devs, int n, po_link link) {
    PO_CHECK(po_cluster_new(&e->c));
    for (int i = 0; i < n; i++)
        PO_CHECK(po_cluster_add(e->c, &devs[i]));
    PO_CHECK(po_cluster_set_default_link(e->c, link));
    PO_CHECK(po_cost_model_new(e->c, &e->cm));
    PO_CHECK(po_workload_from_model(spec, batch, NULL, &e->w));
}

/* Every device of a prediction within its memory. */
static void check_memory(const po_prediction *p, const char *what) {
    if (!p->fits_memory) fail_msg("%s: does not fit", what);
    for (int i = 0; i < p->n_devices; i++)
        if (p->devices[i].peak_memory_bytes > p->devices[i].memory_bytes)
            fail_msg("%s: %s needs %lld of %lld bytes", what, p->devices[i].device,
                     (long long)p->devices[i].peak_memory_bytes, (long long)p->devices[i].memory_bytes);
}

static void check_plan_memory(const po_plan *p) {
    check_memory(&p->predicted, "chosen plan");
    for (int i = 0; i < p->n_alternatives; i++)
        check_memory(&p->alternatives[i].predicted, p->alternatives[i].summary);
}

static int plan_devices(const po_plan *p) {
    int n = 0;
    for (int s = 0; s < p->n_stages; s++)
        n += p->stages[s].n_replicas;
    return n;
}

/* Acceptance 2: one device twice as fast in every figure, a fast link: shares 2:1 within 2%. */
static void shares_two_to_one(void **state) {
    (void)state;
    const char *specs[] = {"mnist_mlp", "cifar_cnn", "tiny_gpt:layers=2"};
    const int64_t batches[] = {128, 96, 12};
    for (int k = 0; k < 3; k++) {
        po_cluster_device d[2] = {synth("fast", 200, 40, 16e9, 100, 10), synth("slow", 100, 20, 16e9, 100, 10)};
        env e;
        env_new(&e, specs[k], batches[k], d, 2, (po_link){.bandwidth_gbs = 1000, .latency_us = 1});
        int devs[2] = {0, 1}, binding;
        double sh[2];
        PO_CHECK(po_dp_shares(e.w, e.cm, devs, 2, sh, &binding));
        assert_int_equal(binding, -1);
        assert_true(fabs(sh[0] + sh[1] - 1.0) < 1e-12);
        if (fabs(sh[0] / sh[1] / 2.0 - 1.0) > 0.02) fail_msg("%s: shares %.4f / %.4f", specs[k], sh[0], sh[1]);
        po_plan_opts o = po_plan_opts_default();
        o.strategies = 1u << PO_STRATEGY_DP;
        po_plan p;
        PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
        assert_int_equal(p.strategy, PO_STRATEGY_DP);
        double a = p.stages[0].replicas[0].share, b = p.stages[0].replicas[1].share;
        assert_string_equal(p.stages[0].replicas[0].device, "fast");
        if (fabs(a / b / 2.0 - 1.0) > 0.02) fail_msg("%s: plan shares %.4f / %.4f", specs[k], a, b);
        check_plan_memory(&p);
        po_plan_free(&p);
        env_free(&e);
    }
}

/* Memory: a device too small for a replica gets nothing, one that holds 30 rows gets 30; every
 * plan the search returns (chosen and alternatives) fits on every device. */
static void memory_limits(void **state) {
    (void)state;
    po_workload *w;
    PO_CHECK(po_workload_from_model("mnist_mlp", 128, NULL, &w));
    double cap30 = po_workload_memory_bytes(w, 0, po_workload_n_layers(w) - 1, 30.0, 1, false);
    po_workload_free(w);
    po_cluster_device d[3] = {synth("a", 100, 20, 16e9, 100, 10), synth("tiny", 100, 20, 10e6, 100, 10),
                              synth("capped", 100, 20, cap30 + 1, 100, 10)};
    env e;
    env_new(&e, "mnist_mlp", 128, d, 3, (po_link){.bandwidth_gbs = 100, .latency_us = 2});
    int devs[3] = {0, 1, 2}, binding;
    double sh[3];
    PO_CHECK(po_dp_shares(e.w, e.cm, devs, 3, sh, &binding));
    assert_true(sh[1] == 0.0);
    assert_int_equal(binding, 2);
    assert_true(fabs(sh[2] - 30.0 / 128) < 1e-12);
    assert_true(fabs(sh[0] - 98.0 / 128) < 1e-12);
    po_plan_opts o = po_plan_opts_default();
    o.top_k = 20;
    po_plan p;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    check_plan_memory(&p);
    assert_true(p.n_alternatives > 3);
    po_plan_free(&p);
    env_free(&e);

    /* tiny_gpt on devices each holding 45% of a whole step: no single device or replica fits;
     * a pipeline (perhaps with recomputation) does */
    PO_CHECK(po_workload_from_model("tiny_gpt", 8, NULL, &w));
    double whole = po_workload_memory_bytes(w, 0, po_workload_n_layers(w) - 1, 8.0, 1, false);
    po_workload_free(w);
    po_cluster_device g[4];
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "g%d", i);
        g[i] = synth(id, 1000, 200, 0.45 * whole, 300, 50);
    }
    env_new(&e, "tiny_gpt", 8, g, 4, (po_link){.bandwidth_gbs = 50, .latency_us = 5});
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    assert_true(p.strategy == PO_STRATEGY_PP || p.strategy == PO_STRATEGY_HYBRID);
    check_plan_memory(&p);
    bool said = false;
    for (int i = 0; i < p.n_explanation; i++)
        said = said || strstr(p.explanation[i], "Binding constraint: the memory of");
    assert_true(said);
    po_plan_free(&p);
    o.strategies = 1u << PO_STRATEGY_SINGLE;
    assert_int_equal(po_plan_search(e.w, e.cm, &o, &p), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "fits in memory"));
    env_free(&e);
}

/* Acceptance 3: an extra device adding little speed at its full power. */
static void energy_uses_fewer_devices(void **state) {
    (void)state;
    po_cluster_device d[3] = {synth("f0", 100, 20, 16e9, 10, 2), synth("f1", 100, 20, 16e9, 10, 2),
                              synth("weak", 12, 2.4, 16e9, 10, 2)};
    env e;
    env_new(&e, "mnist_mlp", 128, d, 3, (po_link){.bandwidth_gbs = 100, .latency_us = 1});
    po_plan_opts o = po_plan_opts_default();
    po_plan pt, pe, px, pd;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &pt));
    o.objective = PO_OBJECTIVE_ENERGY;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &pe));
    printf("time:   %s %d devices %.4g ms %.4g J/sample\nenergy: %s %d devices %.4g ms %.4g J/sample\n",
           po_strategy_name(pt.strategy), plan_devices(&pt), pt.predicted.step_ms, pt.predicted.energy_j_per_sample,
           po_strategy_name(pe.strategy), plan_devices(&pe), pe.predicted.step_ms, pe.predicted.energy_j_per_sample);
    assert_int_equal(plan_devices(&pt), 3);
    assert_true(plan_devices(&pe) < 3);
    assert_true(pe.predicted.energy_j_per_sample < pt.predicted.energy_j_per_sample);
    assert_true(pt.predicted.step_ms <= pe.predicted.step_ms);
    assert_int_equal(pe.objective, PO_OBJECTIVE_ENERGY);
    /* least energy within 10% of the fastest */
    o.max_slowdown_pct = 10.0;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &px));
    assert_true(px.predicted.step_ms <= 1.10 * pt.predicted.step_ms * (1 + 1e-9));
    assert_true(px.predicted.energy_j_per_sample <= pt.predicted.energy_j_per_sample);
    assert_true(px.predicted.energy_j_per_sample >= pe.predicted.energy_j_per_sample);
    po_plan_free(&px);
    o.max_slowdown_pct = 0.0;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &px));
    assert_true(fabs(px.predicted.step_ms - pt.predicted.step_ms) < 1e-9 * pt.predicted.step_ms);
    po_plan_free(&px);
    o.max_slowdown_pct = NAN;
    o.objective = PO_OBJECTIVE_EDP;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &pd));
    double edp_d = pd.predicted.energy_j_per_sample * pd.predicted.step_ms;
    assert_true(edp_d <= pt.predicted.energy_j_per_sample * pt.predicted.step_ms * (1 + 1e-12));
    assert_true(edp_d <= pe.predicted.energy_j_per_sample * pe.predicted.step_ms * (1 + 1e-12));
    po_plan_free(&pd);
    po_plan_free(&pt);
    po_plan_free(&pe);
    env_free(&e);
}

static void strategy_restriction(void **state) {
    (void)state;
    po_cluster_device d[2] = {synth("a", 100, 20, 16e9, 10, 2), synth("b", 100, 20, 16e9, 10, 2)};
    env e;
    env_new(&e, "mnist_mlp:hidden=4096", 512, d, 2, (po_link){.bandwidth_gbs = 2000, .latency_us = 0.5});
    po_plan_opts o = po_plan_opts_default();
    po_plan p;
    for (int s = 0; s < PO_STRATEGY_COUNT; s++) {
        if (s == PO_STRATEGY_HYBRID) continue; /* needs groups: at least four devices */
        o.strategies = 1u << s;
        PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
        if ((int)p.strategy != s) fail_msg("asked for %s, got %s", po_strategy_name(s), po_strategy_name(p.strategy));
        for (int i = 0; i < p.n_alternatives; i++)
            assert_int_equal(p.alternatives[i].strategy, s);
        if (s == PO_STRATEGY_OPSPLIT) {
            bool said = false, rides = false;
            for (int i = 0; i < p.n_explanation; i++) {
                said = said || strstr(p.explanation[i], "Operator split shares");
                rides = rides || strstr(p.explanation[i], "element-wise op");
            }
            assert_true(said);
            assert_false(rides); /* at batch 512 the ReLUs are large enough to be split themselves */
        }
        po_plan_free(&p);
    }
    o.strategies = 1u << PO_STRATEGY_HYBRID;
    assert_int_equal(po_plan_search(e.w, e.cm, &o, &p), PO_ERR_NOT_FOUND);
    env_free(&e);
    /* At batch 128 with 1024 hidden units the ReLUs (131072 elements) are below the split
     * threshold: both follow a split x W^T and both their gradients a split dY W (K = 1024 >=
     * 2M along K for the hidden layer's, by rows for the output layer's). */
    env_new(&e, "mnist_mlp", 128, d, 2, (po_link){.bandwidth_gbs = 2000, .latency_us = 0.5});
    o.strategies = 1u << PO_STRATEGY_OPSPLIT;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    bool rides = false;
    for (int i = 0; i < p.n_explanation; i++)
        rides = rides || strstr(p.explanation[i], "4 element-wise ops run on each device's part");
    assert_true(rides);
    po_plan_free(&p);
    env_free(&e);
    o.strategies = 1u << PO_STRATEGY_HYBRID;
    /* Four devices whose figures differ a little, as measured cores always do: hybrid still
     * exists, its lanes paired in speed order (the two fastest together), each stage's
     * slowest lane first. */
    po_cluster_device four[4] = {synth("a", 100, 20, 16e9, 10, 2), synth("b", 101, 20, 16e9, 10, 2),
                                 synth("c", 99, 20, 16e9, 10, 2), synth("d", 102, 20, 16e9, 10, 2)};
    env_new(&e, "mnist_mlp:hidden=4096", 512, four, 4, (po_link){.bandwidth_gbs = 2000, .latency_us = 0.5});
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    assert_int_equal(p.strategy, PO_STRATEGY_HYBRID);
    assert_int_equal(p.n_stages, 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(p.stages[k].n_replicas, 2);
        char pair[80];
        snprintf(pair, sizeof pair, "%s%s", p.stages[k].replicas[0].device, p.stages[k].replicas[1].device);
        if (strcmp(pair, "bd") != 0 && strcmp(pair, "ca") != 0) fail_msg("stage %d pairs %s", k, pair);
    }
    po_plan_free(&p);
    env_free(&e);
    /* A link so slow that one device beats every pipeline: asking for pipelines still gets the
     * best real (two-stage) pipeline, not a one-stage plan filtered away into "no plan". */
    env_new(&e, "mnist_mlp:hidden=4096", 512, d, 2, (po_link){.bandwidth_gbs = 0.001, .latency_us = 5e4});
    o.strategies = 0;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    assert_int_equal(p.strategy, PO_STRATEGY_SINGLE);
    double single_ms = p.predicted.step_ms;
    po_plan_free(&p);
    for (int objective = 0; objective < 2; objective++) {
        o.objective = objective ? PO_OBJECTIVE_ENERGY : PO_OBJECTIVE_TIME;
        o.strategies = 1u << PO_STRATEGY_PP;
        PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
        assert_int_equal(p.strategy, PO_STRATEGY_PP);
        assert_int_equal(p.n_stages, 2);
        assert_true(p.predicted.step_ms > single_ms);
        po_plan_free(&p);
    }
    env_free(&e);
    /* A device so slow that the share solver drops it (its per-step constant alone exceeds the
     * step): asking for data parallel alone still gets data parallel over both devices, faster
     * device first by share, not "no plan"; with single allowed, single wins. */
    po_cluster_device slow[2] = {synth("a", 100, 20, 16e9, 10, 2), synth("b", 0.01, 0.002, 16e9, 10, 2)};
    env_new(&e, "mnist_mlp", 8, slow, 2, (po_link){.bandwidth_gbs = 100, .latency_us = 1});
    o.objective = PO_OBJECTIVE_TIME;
    o.strategies = (1u << PO_STRATEGY_SINGLE) | (1u << PO_STRATEGY_DP);
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    assert_int_equal(p.strategy, PO_STRATEGY_SINGLE);
    single_ms = p.predicted.step_ms;
    po_plan_free(&p);
    o.strategies = 1u << PO_STRATEGY_DP;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &p));
    assert_int_equal(p.strategy, PO_STRATEGY_DP);
    assert_int_equal(p.stages[0].n_replicas, 2);
    assert_true(p.stages[0].replicas[0].share > 0.0 && p.stages[0].replicas[1].share > 0.0);
    assert_true(p.predicted.step_ms > single_ms);
    po_plan_free(&p);
    env_free(&e);
}

static po_plan pp_plan(const po_workload *w, const char *const *devs, const int *first, const int *last, int n, int m,
                       po_schedule s) {
    po_plan p;
    memset(&p, 0, sizeof p);
    p.strategy = PO_STRATEGY_PP;
    p.n_stages = n;
    p.stages = calloc((size_t)n, sizeof *p.stages);
    for (int i = 0; i < n; i++) {
        p.stages[i].first_layer = first[i];
        p.stages[i].last_layer = last[i];
        p.stages[i].n_replicas = 1;
        p.stages[i].replicas = calloc(1, sizeof(po_plan_replica));
        snprintf(p.stages[i].replicas[0].device, 32, "%s", devs[i]);
        p.stages[i].replicas[0].share = 1.0;
    }
    p.micro_batches = m;
    p.schedule = s;
    p.batch = po_workload_batch(w);
    p.max_slowdown_pct = NAN;
    return p;
}

/* The simulator: 1F1B keeps fewer micro-batches in flight than GPipe on the first stage, at
 * about the same step time; validation rejects malformed plans. */
static void simulator_schedules(void **state) {
    (void)state;
    po_cluster_device d[4];
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "g%d", i);
        d[i] = synth(id, 1000, 200, 16e9, 300, 50);
    }
    env e;
    env_new(&e, "tiny_gpt", 8, d, 4, (po_link){.bandwidth_gbs = 50, .latency_us = 5});
    const char *devs[] = {"g0", "g1", "g2", "g3"};
    int first[] = {0, 2, 4, 5}, last[] = {1, 3, 4, 5};
    po_plan gp = pp_plan(e.w, devs, first, last, 4, 8, PO_SCHEDULE_GPIPE);
    po_plan fb = pp_plan(e.w, devs, first, last, 4, 8, PO_SCHEDULE_1F1B);
    po_prediction a, b;
    PO_CHECK(po_plan_simulate(&gp, e.w, e.cm, &a));
    PO_CHECK(po_plan_simulate(&fb, e.w, e.cm, &b));
    double want_a = po_workload_memory_bytes(e.w, 0, 1, 1.0, 8, false);
    double want_b = po_workload_memory_bytes(e.w, 0, 1, 1.0, 4, false);
    assert_true(a.devices[0].peak_memory_bytes == llround(want_a));
    assert_true(b.devices[0].peak_memory_bytes == llround(want_b));
    assert_true(b.devices[3].peak_memory_bytes == llround(po_workload_memory_bytes(e.w, 5, 5, 1.0, 1, false)));
    assert_true(fabs(a.step_ms / b.step_ms - 1.0) < 0.2);
    for (int i = 0; i < 4; i++)
        assert_true(a.devices[i].busy > 0.0 && a.devices[i].busy <= 1.0);
    po_prediction_free(&a);
    po_prediction_free(&b);
    /* validation */
    fb.stages[1].first_layer = 3;
    assert_int_equal(po_plan_simulate(&fb, e.w, e.cm, &a), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "stage 1 covers layers [3, 3]"));
    fb.stages[1].first_layer = 2;
    fb.micro_batches = 3;
    assert_int_equal(po_plan_simulate(&fb, e.w, e.cm, &a), PO_ERR_INVALID_ARG);
    fb.micro_batches = 8;
    snprintf(fb.stages[2].replicas[0].device, 32, "g0");
    assert_int_equal(po_plan_simulate(&fb, e.w, e.cm, &a), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "appears twice"));
    snprintf(fb.stages[2].replicas[0].device, 32, "nope");
    assert_int_equal(po_plan_simulate(&fb, e.w, e.cm, &a), PO_ERR_NOT_FOUND);
    snprintf(fb.stages[2].replicas[0].device, 32, "g2");
    fb.stages[0].replicas[0].share = 0.5;
    assert_int_equal(po_plan_simulate(&fb, e.w, e.cm, &a), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "add up to"));
    po_plan_free(&gp);
    po_plan_free(&fb);
    env_free(&e);
}

static void json_round_trip(void **state) {
    (void)state;
    po_cluster_device d[4];
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "g%d", i);
        d[i] = synth(id, i < 2 ? 1000 : 500, 200, 16e9, 300, 50);
    }
    env e;
    env_new(&e, "cifar_cnn", 64, d, 4, (po_link){.bandwidth_gbs = 50, .latency_us = 5});
    po_plan p, q;
    PO_CHECK(po_plan_search(e.w, e.cm, NULL, &p));
    char *s = po_plan_to_json(&p, e.w);
    assert_non_null(s);
    static const char *const keys[] = {"\"strategy\":",
                                       "\"objective\":\"time\"",
                                       "\"stages\":[{\"layers\":[0,",
                                       "\"replicas\":[{\"device\":",
                                       "\"micro_batches\":",
                                       "\"schedule\":",
                                       "\"predicted\":{\"step_ms\":",
                                       "\"samples_per_s\":",
                                       "\"energy_j_per_sample\":",
                                       "\"energy_source\":\"estimated:model\"",
                                       "\"peak_memory_bytes\":{",
                                       "\"busy\":{",
                                       "\"explanation\":[\"Chosen",
                                       "\"alternatives\":[{\"strategy\":"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (!strstr(s, keys[k])) fail_msg("JSON lacks %s: %s", keys[k], s);
    PO_CHECK(po_plan_from_json(s, "mem", &q));
    assert_int_equal(q.strategy, p.strategy);
    assert_int_equal(q.n_stages, p.n_stages);
    assert_int_equal(q.micro_batches, p.micro_batches);
    assert_int_equal(q.schedule, p.schedule);
    assert_int_equal(q.batch, 64);
    for (int i = 0; i < p.n_stages; i++) {
        assert_int_equal(q.stages[i].first_layer, p.stages[i].first_layer);
        assert_int_equal(q.stages[i].last_layer, p.stages[i].last_layer);
        assert_int_equal(q.stages[i].n_replicas, p.stages[i].n_replicas);
        for (int r = 0; r < p.stages[i].n_replicas; r++) {
            assert_string_equal(q.stages[i].replicas[r].device, p.stages[i].replicas[r].device);
            assert_true(fabs(q.stages[i].replicas[r].share - p.stages[i].replicas[r].share) < 1e-9);
        }
    }
    assert_true(fabs(q.predicted.step_ms - p.predicted.step_ms) < 1e-9 * p.predicted.step_ms);
    assert_int_equal(q.predicted.n_devices, p.predicted.n_devices);
    assert_int_equal(q.n_explanation, p.n_explanation);
    assert_int_equal(q.n_alternatives, p.n_alternatives);
    /* a plan read back is data the simulator runs again to the same prediction */
    po_prediction r;
    PO_CHECK(po_plan_simulate(&q, e.w, e.cm, &r));
    assert_true(fabs(r.step_ms - p.predicted.step_ms) < 1e-9 * p.predicted.step_ms);
    po_prediction_free(&r);
    po_plan_free(&q);
    free(s);
    /* save and load */
    char path[] = "/tmp/po_plan_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    PO_CHECK(po_plan_save(&p, e.w, path));
    PO_CHECK(po_plan_load(path, &q));
    assert_int_equal(q.strategy, p.strategy);
    po_plan_free(&q);
    unlink(path);
    /* copies are deep */
    PO_CHECK(po_plan_copy(&p, &q));
    po_plan_free(&p);
    assert_true(q.n_stages > 0 && q.stages[0].n_replicas > 0);
    po_plan_free(&q);
    /* errors: line and column of the value */
    const char *bad = "{\"strategy\": \"dp\", \"micro_batches\": 1, \"schedule\": \"none\",\n"
                      " \"stages\": [{\"layers\": [0, 3], \"replicas\": [{\"device\": \"g0\", \"share\": 0.5},\n"
                      "                                          {\"device\": \"g1\", \"share\": \"half\"}]}]}";
    assert_int_equal(po_plan_from_json(bad, "p.json", &q), PO_ERR_FORMAT);
    if (!strstr(po_last_error(), "p.json:3:69: stages[0].replicas[1].share:")) fail_msg("%s", po_last_error());
    assert_int_equal(po_plan_from_json("{\"strategy\": \"zz\"}", "p.json", &q), PO_ERR_FORMAT);
    assert_non_null(strstr(po_last_error(), "p.json:1:14: strategy:"));
    assert_int_equal(po_plan_from_json("{\"strategy\": \"dp\",, }", "p.json", &q), PO_ERR_FORMAT);
    assert_non_null(strstr(po_last_error(), "p.json:1:"));
    assert_int_equal(po_plan_from_json("{\"strategy\": \"dp\", \"micro_batches\": 1, \"schedule\": \"none\", "
                                       "\"stages\": [], \"typo\": 1}",
                                       "p.json", &q),
                     PO_ERR_FORMAT);
    assert_non_null(strstr(po_last_error(), "typo: unknown key"));
    assert_int_equal(po_plan_load("/nonexistent/p.json", &q), PO_ERR_IO);
    env_free(&e);
}

static void plan_cache(void **state) {
    (void)state;
    po_cluster_device d[2] = {synth("a", 100, 20, 16e9, 10, 2), synth("b", 50, 20, 16e9, 10, 2)};
    env e;
    env_new(&e, "mnist_mlp:hidden=128", 64, d, 2, (po_link){.bandwidth_gbs = 100, .latency_us = 1});
    char dir[] = "/tmp/po_plan_cache_XXXXXX";
    assert_non_null(mkdtemp(dir));
    po_plan_cache *pc;
    PO_CHECK(po_plan_cache_new(dir, &pc));
    po_plan_opts o = po_plan_opts_default();
    po_plan p, q;
    bool hit;
    PO_CHECK(po_plan_cached(pc, e.w, e.cm, &o, &p, &hit));
    assert_false(hit);
    PO_CHECK(po_plan_cached(pc, e.w, e.cm, &o, &q, &hit));
    assert_true(hit);
    assert_true(q.predicted.step_ms == p.predicted.step_ms && q.strategy == p.strategy);
    po_plan_free(&q);
    /* another objective, another graph: other keys */
    o.objective = PO_OBJECTIVE_ENERGY;
    PO_CHECK(po_plan_cached(pc, e.w, e.cm, &o, &q, &hit));
    assert_false(hit);
    po_plan_free(&q);
    o.objective = PO_OBJECTIVE_TIME;
    po_workload *w2;
    PO_CHECK(po_workload_from_model("mnist_mlp:hidden=128", 32, NULL, &w2));
    assert_true(po_plan_cache_key(w2, e.cm, &o) != po_plan_cache_key(e.w, e.cm, &o));
    PO_CHECK(po_plan_cached(pc, w2, e.cm, &o, &q, &hit));
    assert_false(hit);
    po_plan_free(&q);
    /* a new measurement changes the key */
    uint64_t k0 = po_plan_cache_key(e.w, e.cm, &o);
    PO_CHECK(po_cost_model_record_key(e.cm, 42, "a", 1e-3));
    assert_true(po_plan_cache_key(e.w, e.cm, &o) != k0);
    po_plan_cache_free(pc);
    /* from disk, in a fresh cache */
    PO_CHECK(po_plan_cache_new(dir, &pc));
    PO_CHECK(po_plan_cache_get(pc, k0, &q));
    assert_true(q.strategy == p.strategy && fabs(q.predicted.step_ms - p.predicted.step_ms) < 1e-9);
    po_plan_free(&q);
    assert_int_equal(po_plan_cache_get(pc, 12345, &q), PO_ERR_NOT_FOUND);
    po_plan_cache_free(pc);
    po_plan_free(&p);
    po_workload_free(w2);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    env_free(&e);
}

static void explanation(void **state) {
    (void)state;
    po_cluster_device d[2] = {synth("a", 100, 20, 16e9, 10, 2), synth("b", 100, 20, 16e9, 10, 2)};
    env e;
    env_new(&e, "mnist_mlp", 128, d, 2, (po_link){.bandwidth_gbs = 100, .latency_us = 1});
    po_plan p;
    PO_CHECK(po_plan_search(e.w, e.cm, NULL, &p));
    const char *want[] = {"Chosen for time", "Bottleneck:", "Binding constraint:", "Runner-up:", "Utilisation: a "};
    for (int k = 0; k < 5; k++) {
        bool found = false;
        for (int i = 0; i < p.n_explanation; i++)
            found = found || strstr(p.explanation[i], want[k]);
        if (!found) fail_msg("explanation lacks \"%s\"", want[k]);
    }
    assert_true(p.n_alternatives >= 1 && p.n_alternatives <= 4);
    char buf[256];
    /* Two alike devices: a plan over both (data parallel, or operator split with the optimizer
     * dealt out), summarised as "<family> over a (..), b (..)". */
    char want_summary[64];
    snprintf(want_summary, sizeof want_summary, "%s over ", po_strategy_name(p.strategy));
    assert_true(p.strategy == PO_STRATEGY_DP || p.strategy == PO_STRATEGY_OPSPLIT);
    assert_non_null(strstr(po_plan_summary(&p, e.w, buf, sizeof buf), want_summary));
    PO_CHECK(po_plan_explain(&p, e.w, e.cm, NULL));
    bool none = false;
    for (int i = 0; i < p.n_explanation; i++)
        none = none || strstr(p.explanation[i], "Runner-up: none");
    assert_true(none);
    po_plan_free(&p);
    env_free(&e);
    assert_string_equal(po_strategy_name(PO_STRATEGY_HYBRID), "hybrid");
    po_strategy s;
    assert_int_equal(po_strategy_parse("nope", &s), PO_ERR_INVALID_ARG);
    po_objective ob;
    PO_CHECK(po_objective_parse("edp", &ob));
    assert_int_equal(ob, PO_OBJECTIVE_EDP);
    po_schedule sc;
    PO_CHECK(po_schedule_parse("1f1b", &sc));
    assert_int_equal(sc, PO_SCHEDULE_1F1B);
}

/* Contention: two devices of one memory group, each measured 1.5x slower when both compute. A
 * single-device plan is not affected; a data-parallel plan's compute is 1.5x its uncontended
 * figure (checked by simulating the same plan with and without the factor). */
static void contention(void **state) {
    (void)state;
    po_cluster_device d[2] = {synth("a", 100, 20, 16e9, 100, 10), synth("b", 100, 20, 16e9, 100, 10)};
    d[0].memory_group = d[1].memory_group = 0;
    env e;
    env_new(&e, "mnist_mlp", 128, d, 2, (po_link){.bandwidth_gbs = 1e6, .latency_us = 0});
    po_plan_opts o = po_plan_opts_default();
    o.strategies = 1u << PO_STRATEGY_DP;
    po_plan dp, single;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &dp));
    o.strategies = 1u << PO_STRATEGY_SINGLE;
    PO_CHECK(po_plan_search(e.w, e.cm, &o, &single));
    po_prediction dp0, dp1, s0, s1;
    PO_CHECK(po_plan_simulate(&dp, e.w, e.cm, &dp0));
    PO_CHECK(po_plan_simulate(&single, e.w, e.cm, &s0));
    assert_true(po_cost_model_contention(e.cm, 0) == 1.0);
    PO_CHECK(po_cost_model_set_contention(e.cm, "a", 1.5));
    PO_CHECK(po_cost_model_set_contention(e.cm, "b", 1.5));
    assert_true(po_cost_model_contention(e.cm, 1) == 1.5);
    PO_CHECK(po_plan_simulate(&dp, e.w, e.cm, &dp1));
    PO_CHECK(po_plan_simulate(&single, e.w, e.cm, &s1));
    if (fabs(s1.step_ms / s0.step_ms - 1.0) > 1e-9) fail_msg("single: %g -> %g ms", s0.step_ms, s1.step_ms);
    /* The link is free, so the step is compute (and the CPU-free all-reduce of GPU-kind devices). */
    double r = dp1.step_ms / dp0.step_ms;
    if (fabs(r - 1.5) > 0.02) fail_msg("dp: %g -> %g ms (x%.3f, want 1.5)", dp0.step_ms, dp1.step_ms, r);
    assert_int_equal(po_cost_model_set_contention(e.cm, "zz", 1.2), PO_ERR_NOT_FOUND);
    assert_int_equal(po_cost_model_set_contention(e.cm, "a", 0.5), PO_ERR_INVALID_ARG);
    po_prediction_free(&dp0), po_prediction_free(&dp1), po_prediction_free(&s0), po_prediction_free(&s1);
    po_plan_free(&dp);
    po_plan_free(&single);
    env_free(&e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shares_two_to_one),    cmocka_unit_test(contention),
        cmocka_unit_test(memory_limits),        cmocka_unit_test(energy_uses_fewer_devices),
        cmocka_unit_test(strategy_restriction), cmocka_unit_test(simulator_schedules),
        cmocka_unit_test(json_round_trip),      cmocka_unit_test(plan_cache),
        cmocka_unit_test(explanation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

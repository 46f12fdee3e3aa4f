/* The planner's inputs: the workload against the analysis (and its affine batch model), the
 * cluster (API, links, files with line/column errors), the cost model (roofline, GEMM curve,
 * measured history, transfers, ring all-reduce, energy) and calibration on a real core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/paropt.h"
#include "plan/plan_internal.h"
#include "po_test.h"

static po_cluster_device synth(const char *id, double gflops, double bw_gbs, double mem_gb, double dispatch_us) {
    po_cluster_device d;
    memset(&d, 0, sizeof d);
    snprintf(d.dev.id, sizeof d.dev.id, "%s", id);
    d.dev.kind = PO_DEVICE_CUDA;
    d.dev.gpu = -1;
    d.dev.memory_bytes = (int64_t)(mem_gb * 1e9);
    d.perf.gemm_gflops = gflops;
    d.perf.mem_bandwidth_gbs = bw_gbs;
    d.perf.elementwise_gelems = bw_gbs / 8.0;
    d.perf.dispatch_us = dispatch_us;
    d.perf.gemm_call_us = dispatch_us;
    d.active_w = 100;
    d.idle_w = 10;
    d.memory_group = -1;
    return d;
}

static po_model *step_model(const char *spec, int64_t batch) {
    po_model *m;
    PO_CHECK(po_model_build(spec, batch, &m));
    po_optim_opts adam = po_optim_opts_default(PO_OPTIM_ADAM);
    PO_CHECK(po_graph_backward(m->graph, m->loss));
    PO_CHECK(po_graph_add_optimizer(m->graph, &adam));
    return m;
}

/* The workload's figures equal the analysis' at the planned batch and, being affine in the
 * batch, at any other batch too (FLOPs exactly; memory within the buffer plan's packing). */
static void workload_matches_analysis(void **state) {
    (void)state;
    const char *specs[] = {"mnist_mlp:hidden=256", "cifar_cnn:c1=8,c2=16,hidden=64",
                           "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32"};
    const int64_t batches[] = {64, 16, 4};
    for (int k = 0; k < 3; k++) {
        po_workload *w;
        PO_CHECK(po_workload_from_model(specs[k], batches[k], NULL, &w));
        assert_int_equal(po_workload_batch(w), batches[k]);
        for (int pass = 0; pass < 2; pass++) {
            int64_t b = pass ? batches[k] * 3 / 2 : batches[k];
            po_model *m = step_model(specs[k], b);
            po_analysis *a;
            PO_CHECK(po_analysis_new(m->graph, &a));
            assert_int_equal(po_workload_n_layers(w), po_graph_n_layers(m->graph));
            for (int l = 0; l < po_graph_n_layers(m->graph); l++) {
                const po_layer_info *L = po_analysis_layer(a, l);
                po_workload_layer wl;
                PO_CHECK(po_workload_layer_info(w, l, (double)b, &wl));
                assert_string_equal(po_workload_layer_name(w, l), L->name);
                if (fabs(wl.flops_forward - L->flops_forward) > 1e-6 * L->flops_forward + 1 ||
                    fabs(wl.flops_backward - L->flops_backward) > 1e-6 * L->flops_backward + 1 ||
                    fabs(wl.flops_optimizer - L->flops_optimizer) > 1e-6 * L->flops_optimizer + 1)
                    fail_msg("%s batch %lld layer %s: FLOPs %g/%g/%g, analysis %g/%g/%g", specs[k], (long long)b,
                             L->name, wl.flops_forward, wl.flops_backward, wl.flops_optimizer, L->flops_forward,
                             L->flops_backward, L->flops_optimizer);
                assert_true(wl.param_bytes == (double)L->param_bytes);
                assert_true(l == po_graph_n_layers(m->graph) - 1 ? wl.stash_bytes >= 0.0 : wl.stash_bytes > 0.0);
                if (l + 1 < po_graph_n_layers(m->graph))
                    assert_true(wl.boundary_bytes > 0.0);
                else
                    assert_true(wl.boundary_bytes == 0.0);
            }
            double mem = po_workload_memory_bytes(w, 0, po_workload_n_layers(w) - 1, (double)b, 1, false);
            double peak = (double)po_analysis_totals(a)->peak_memory_bytes;
            if (pass == 0 ? mem != peak : fabs(mem - peak) > 0.03 * peak)
                fail_msg("%s batch %lld: memory %.0f, analysis peak %.0f", specs[k], (long long)b, mem, peak);
            /* more micro-batches in flight hold more; recomputation holds less where a layer keeps
             * more than its input (a transformer block) */
            assert_true(po_workload_memory_bytes(w, 0, 0, (double)b, 4, false) >
                        po_workload_memory_bytes(w, 0, 0, (double)b, 1, false));
            if (k == 2)
                assert_true(po_workload_memory_bytes(w, 1, 1, (double)b, 4, true) <
                            po_workload_memory_bytes(w, 1, 1, (double)b, 4, false));
            po_analysis_free(a);
            po_model_free(m);
        }
        po_workload_free(w);
    }
    /* mnist_mlp: the activation crossing l1 -> l2 is the [B, hidden] ReLU output */
    po_workload *w;
    PO_CHECK(po_workload_from_model("mnist_mlp:hidden=256", 64, NULL, &w));
    po_workload_layer wl;
    PO_CHECK(po_workload_layer_info(w, 0, 10.0, &wl));
    assert_true(wl.boundary_bytes == 10.0 * 256 * 4);
    assert_int_equal(po_workload_layer_info(w, 3, 1.0, &wl), PO_ERR_RANGE);
    /* the signature follows the graph: another batch or size is another graph */
    po_workload *w2, *w3;
    PO_CHECK(po_workload_from_model("mnist_mlp:hidden=256", 32, NULL, &w2));
    PO_CHECK(po_workload_from_model("mnist_mlp:hidden=256", 64, NULL, &w3));
    assert_true(po_workload_signature(w) != po_workload_signature(w2));
    assert_true(po_workload_signature(w) == po_workload_signature(w3));
    po_workload_free(w2);
    po_workload_free(w3);
    po_workload_free(w);
    assert_int_equal(po_workload_from_model("nope", 8, NULL, &w), PO_ERR_INVALID_ARG);
    /* two graphs that are not the same model at two batches */
    po_model *a = step_model("mnist_mlp:hidden=32", 8),
             *b = step_model("tiny_gpt:vocab=16,d_model=16,layers=1,heads=2,seq=8", 4);
    assert_int_equal(po_workload_from_graphs(a->graph, 8, b->graph, 4, &w), PO_ERR_INVALID_ARG);
    assert_int_equal(po_workload_from_graphs(a->graph, 8, a->graph, 8, &w), PO_ERR_INVALID_ARG);
    po_model_free(a);
    po_model_free(b);
}

static void roofline_and_curve(void **state) {
    (void)state;
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    po_cluster_device d = synth("g", 100, 10, 1, 1);
    PO_CHECK(po_cluster_add(c, &d));
    po_cluster_device e = synth("curve", 100, 10, 1, 0);
    e.perf.n_gemm = 2;
    e.perf.gemm[0] = (po_gemm_point){64, 64, 64, 10};
    e.perf.gemm[1] = (po_gemm_point){1024, 1024, 1024, 100};
    e.perf.gemm_call_us = 0;
    PO_CHECK(po_cluster_add(c, &e));
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(c, &cm));
    po_bound b;
    /* GEMM: 1 GFLOP at 100 GFLOP/s = 10 ms + 2 us of overhead; bytes would take 0.1 ms */
    double t = po_cost_model_roofline(cm, 0, 1e9, 1e6, true, &b);
    assert_true(fabs(t - (10e-3 + 2e-6)) < 1e-12);
    assert_int_equal(b, PO_BOUND_COMPUTE);
    /* element-wise: 1 GB at 10 GB/s = 100 ms, memory-bound */
    t = po_cost_model_roofline(cm, 0, 1e6, 1e9, false, &b);
    assert_true(fabs(t - (0.1 + 1e-6)) < 1e-12);
    assert_int_equal(b, PO_BOUND_MEMORY);
    t = po_cost_model_roofline(cm, 0, 1.0, 1.0, false, &b);
    assert_int_equal(b, PO_BOUND_OVERHEAD);
    /* curve: at its points exactly, between them interpolated on log FLOPs, beyond them clamped */
    double f64 = 2.0 * 64 * 64 * 64, f1024 = 2.0 * 1024 * 1024 * 1024, f256 = 2.0 * 256 * 256 * 256;
    assert_true(fabs(po_cost_model_roofline(cm, 1, f64, 0, true, NULL) - f64 / 10e9) < 1e-15);
    assert_true(fabs(po_cost_model_roofline(cm, 1, f1024, 0, true, NULL) - f1024 / 100e9) < 1e-12);
    double rate256 = 10.0 + 90.0 * (log(f256) - log(f64)) / (log(f1024) - log(f64));
    assert_true(fabs(po_cost_model_roofline(cm, 1, f256, 0, true, NULL) - f256 / (rate256 * 1e9)) < 1e-12);
    assert_true(fabs(po_cost_model_roofline(cm, 1, 1e3, 0, true, NULL) - 1e3 / 10e9) < 1e-15);
    assert_true(fabs(po_cost_model_roofline(cm, 1, 1e13, 0, true, NULL) - 1e13 / 100e9) < 1e-9);
    po_cost_model_free(cm);
    po_cluster_free(c);
}

/* The history: synthetic measurements replace the roofline; a whole step's time is their sum. */
static void measured_history(void **state) {
    (void)state;
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    po_cluster_device d = synth("g0", 100, 10, 10, 1), d1 = synth("g1", 100, 10, 10, 1);
    PO_CHECK(po_cluster_add(c, &d));
    PO_CHECK(po_cluster_add(c, &d1));
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(c, &cm));
    po_model *m = step_model("mnist_mlp:hidden=64", 32), *m2 = step_model("mnist_mlp:hidden=64", 16);
    const po_graph *g = m->graph;
    const po_node *lin = NULL;
    for (int i = 0; i < po_graph_size(g) && !lin; i++)
        if (po_node_op(po_graph_node(g, i)) == PO_OP_LINEAR) lin = po_graph_node(g, i);
    po_op_estimate est;
    PO_CHECK(po_cost_model_node_time(cm, lin, 0, &est));
    assert_false(est.measured);
    PO_CHECK(po_cost_model_record(cm, lin, "g0", 1e-3));
    PO_CHECK(po_cost_model_record(cm, lin, "g0", 3e-3));
    double s;
    int n;
    PO_CHECK(po_cost_model_lookup(cm, po_op_key(lin), "g0", &s, &n));
    assert_true(fabs(s - 2e-3) < 1e-15 && n == 2);
    PO_CHECK(po_cost_model_node_time(cm, lin, 0, &est));
    assert_true(est.measured && fabs(est.seconds - 2e-3) < 1e-15);
    assert_int_equal(po_cost_model_lookup(cm, po_op_key(lin), "g1", &s, &n), PO_ERR_NOT_FOUND);
    assert_int_equal(po_cost_model_record(cm, lin, "nope", 1.0), PO_ERR_NOT_FOUND);
    assert_int_equal(po_cost_model_record(cm, lin, "g0", -1.0), PO_ERR_INVALID_ARG);
    po_cost_model_free(cm);

    /* every node with work measured at 1 ms on g1: a single-device step is 1 ms per node */
    PO_CHECK(po_cost_model_new(c, &cm));
    int work = 0;
    for (int i = 0; i < po_graph_size(g); i++) {
        po_cost k = po_node_cost(po_graph_node(g, i));
        if (k.flops == 0 && k.bytes_read + k.bytes_written == 0) continue;
        work++;
        PO_CHECK(po_cost_model_record(cm, po_graph_node(g, i), "g1", 1e-3));
    }
    po_workload *w;
    PO_CHECK(po_workload_from_graphs(m->graph, 32, m2->graph, 16, &w));
    po_plan p;
    memset(&p, 0, sizeof p);
    po_plan_stage st = {0, po_workload_n_layers(w) - 1, false, 1, NULL};
    po_plan_replica r = {"g1", 1.0};
    st.replicas = &r;
    p.strategy = PO_STRATEGY_SINGLE;
    p.n_stages = 1;
    p.stages = &st;
    p.micro_batches = 1;
    po_prediction pr;
    PO_CHECK(po_plan_simulate(&p, w, cm, &pr));
    if (fabs(pr.step_ms - work) > 1e-9) fail_msg("step %.6f ms, want %d (one per measured node)", pr.step_ms, work);
    assert_int_equal(pr.n_devices, 1);
    assert_true(fabs(pr.devices[0].busy - 1.0) < 1e-12);
    /* energy: 100 W busy all the step */
    assert_true(fabs(pr.energy_j_per_sample * 32 - 100.0 * work * 1e-3) < 1e-9);
    assert_string_equal(pr.energy_source, "estimated:model");
    po_prediction_free(&pr);
    po_workload_free(w);
    po_model_free(m);
    po_model_free(m2);
    po_cost_model_free(cm);
    po_cluster_free(c);
}

static void transfers_and_energy(void **state) {
    (void)state;
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        po_cluster_device d = synth(id, 100, 10, 10, 1);
        PO_CHECK(po_cluster_add(c, &d));
    }
    PO_CHECK(po_cluster_set_default_link(c, (po_link){.bandwidth_gbs = 100, .latency_us = 2}));
    PO_CHECK(po_cluster_set_link(c, "d1", "d2", (po_link){.bandwidth_gbs = 10, .latency_us = 5}));
    PO_CHECK(po_cluster_set_link_directed(c, "d3", "d0", (po_link){.bandwidth_gbs = 50, .latency_us = 1}));
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(c, &cm));
    assert_true(fabs(po_cost_model_transfer_s(cm, 0, 1, 1e9) - (2e-6 + 0.01)) < 1e-15);
    assert_true(fabs(po_cost_model_transfer_s(cm, 2, 1, 1e9) - (5e-6 + 0.1)) < 1e-15);
    assert_true(fabs(po_cost_model_transfer_s(cm, 3, 0, 1e9) - (1e-6 + 0.02)) < 1e-15);
    assert_true(fabs(po_cost_model_transfer_s(cm, 0, 3, 1e9) - (2e-6 + 0.01)) < 1e-15);
    assert_true(po_cost_model_transfer_s(cm, 1, 1, 1e9) == 0.0);
    /* ring 0 -> 1 -> 2 -> 3 -> 0: slowest link 10 GB/s (1 -> 2), largest latency 5 us */
    int ring[4] = {0, 1, 2, 3};
    double want = 2.0 * 3 / 4 * 1e9 / 10e9 + 2.0 * 3 * 5e-6;
    assert_true(fabs(po_cost_model_allreduce_s(cm, ring, 4, 1e9) - want) < 1e-12);
    int two[2] = {0, 3};
    want = 2.0 * 1 / 2 * 1e9 / 50e9 + 2.0 * 1 * 2e-6; /* 0 -> 3 at 100 GB/s, 3 -> 0 at 50 */
    assert_true(fabs(po_cost_model_allreduce_s(cm, two, 2, 1e9) - want) < 1e-12);
    assert_true(po_cost_model_allreduce_s(cm, ring, 1, 1e9) == 0.0);
    /* 100 W for 1 s busy + 10 W for 2 s idle */
    assert_true(fabs(po_cost_model_energy_j(cm, 0, 1.0, 3.0) - 120.0) < 1e-12);
    po_cost_model_free(cm);
    po_cluster_free(c);
}

static void cluster_api(void **state) {
    (void)state;
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    po_cluster_device d = synth("a", 100, 10, 10, 1);
    PO_CHECK(po_cluster_add(c, &d));
    assert_int_equal(po_cluster_add(c, &d), PO_ERR_INVALID_ARG); /* repeated id */
    po_cluster_device bad = synth("b", 0, 10, 10, 1);
    assert_int_equal(po_cluster_add(c, &bad), PO_ERR_INVALID_ARG);
    bad = synth("b", 10, 10, 0, 1);
    assert_int_equal(po_cluster_add(c, &bad), PO_ERR_INVALID_ARG);
    po_cluster_device nan_overhead = synth("n", 10, 10, 1, 1);
    nan_overhead.perf.dispatch_us = NAN;
    PO_CHECK(po_cluster_add(c, &nan_overhead));
    assert_true(po_cluster_device_at(c, 1)->perf.dispatch_us == 5.0); /* a GPU's default launch cost */
    PO_CHECK(po_cluster_add_catalog(c, "g", "A100-SXM4-80GB"));
    const po_cluster_device *g = po_cluster_device_at(c, po_cluster_find(c, "g"));
    assert_true(g->dev.memory_bytes == 80ll << 30 && g->active_w == 400 && g->perf.gemm_gflops == 19500);
    assert_string_equal(g->power_source, "catalog:a100-80gb");
    assert_int_equal(po_cluster_add_catalog(c, "x", "no-such-gpu"), PO_ERR_NOT_FOUND);
    assert_int_equal(po_cluster_size(c), 3);
    assert_int_equal(po_cluster_find(c, "zz"), -1);
    assert_null(po_cluster_device_at(c, 3));
    uint64_t sig = po_cluster_signature(c);
    assert_int_equal(po_cluster_set_link(c, "a", "zz", (po_link){.bandwidth_gbs = 1, .latency_us = 1}),
                     PO_ERR_NOT_FOUND);
    assert_int_equal(po_cluster_set_link(c, "a", "a", (po_link){.bandwidth_gbs = 1, .latency_us = 1}),
                     PO_ERR_INVALID_ARG);
    assert_int_equal(po_cluster_set_link(c, "a", "g", (po_link){.bandwidth_gbs = 0, .latency_us = 1}),
                     PO_ERR_INVALID_ARG);
    PO_CHECK(po_cluster_set_link(c, "a", "g", (po_link){.bandwidth_gbs = 300, .latency_us = 2}));
    assert_true(po_cluster_signature(c) != sig);
    assert_true(po_cluster_link(c, 0, 2).bandwidth_gbs == 300 && po_cluster_link(c, 2, 0).latency_us == 2);
    assert_true(po_cluster_link(c, 0, 1).bandwidth_gbs == 10); /* the default */
    po_cluster_free(c);
}

static void expect_file_error(const char *text, const char *needle) {
    po_cluster *c = NULL;
    po_status st = po_cluster_parse(text, "c.json", &c);
    if (st == PO_OK) fail_msg("accepted: %s", text);
    if (!strstr(po_last_error(), needle)) fail_msg("error \"%s\" lacks \"%s\"", po_last_error(), needle);
    if (strchr(po_last_error(), '\n')) fail_msg("error \"%s\" is not one line", po_last_error());
    assert_null(c);
}

static void cluster_files(void **state) {
    (void)state;
    const char *text = "{\"devices\": [{\"id\": \"g\", \"type\": \"A100-SXM4-80GB\", \"count\": 4},\n"
                       "  {\"id\": \"c0\", \"kind\": \"cpu\", \"peak_gflops\": 80, \"mem_bandwidth_gbs\": 15,\n"
                       "   \"memory_gb\": 16, \"tdp_w\": 5, \"idle_w\": 1.5},\n"
                       "  {\"id\": \"small\", \"type\": \"h100-sxm\", \"memory_gb\": 40}],\n"
                       " \"links\": [{\"between\": [\"*\", \"*\"], \"bandwidth_gbs\": 300, \"latency_us\": 3},\n"
                       "           {\"between\": [\"g0\", \"c0\"], \"bandwidth_gbs\": 25, \"latency_us\": 10,\n"
                       "            \"reclaim_ns_per_byte\": 0.125, \"wake_us\": 40}],\n"
                       " \"default_link\": {\"bandwidth_gbs\": 12, \"latency_us\": 7}}";
    po_cluster *c;
    PO_CHECK(po_cluster_parse(text, "c.json", &c));
    assert_int_equal(po_cluster_size(c), 6);
    assert_int_equal(po_cluster_find(c, "g3"), 3);
    const po_cluster_device *c0 = po_cluster_device_at(c, po_cluster_find(c, "c0"));
    assert_true(c0->dev.kind == PO_DEVICE_CPU && c0->perf.gemm_gflops == 80 && c0->dev.memory_bytes == 16000000000ll);
    assert_true(c0->active_w == 5 && c0->idle_w == 1.5 && c0->perf.elementwise_gelems == 15.0 / 8);
    const po_cluster_device *sm = po_cluster_device_at(c, po_cluster_find(c, "small"));
    assert_true(sm->dev.memory_bytes == 40000000000ll && sm->perf.gemm_gflops == 67000);
    assert_true(po_cluster_link(c, 0, 1).bandwidth_gbs == 300);
    assert_true(po_cluster_link(c, po_cluster_find(c, "c0"), 0).bandwidth_gbs == 25);
    assert_true(po_cluster_link(c, po_cluster_find(c, "c0"), 0).reclaim_ns_per_byte == 0.125);
    assert_true(po_cluster_link(c, 0, 1).reclaim_ns_per_byte == 0.0); /* not given: none */
    assert_true(po_cluster_link(c, po_cluster_find(c, "c0"), 0).wake_us == 40);
    assert_true(po_cluster_link(c, 0, 1).wake_us == 0.0);
    po_cluster_free(c);
    /* errors name line and column of the offending value */
    expect_file_error("{\"devices\": [\n  {\"id\": \"g\", \"type\": \"A200\"}]}", "c.json:2:23: devices[0].type:");
    expect_file_error("{\"devices\": [{\"id\": \"g\",\n \"peak_gflops\": 1}]}", "needs \"mem_bandwidth_gbs\"");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\", \"peak_gflops\": -1}]}",
                      "c.json:1:55: devices[0].peak_gflops: must be positive");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\", \"colour\": 1}]}",
                      "devices[0].colour: unknown key");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\"}],\n \"links\": [{\"between\": [\"g\", \"h\"], "
                      "\"bandwidth_gbs\": 1, \"latency_us\": 1}]}",
                      "c.json:2:30: links[0].between[1]: unknown device \"h\"");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\"}],\n \"links\": [{\"between\": [\"g\", \"g\"], "
                      "\"bandwidth_gbs\": 1, \"latency_us\": 1, \"reclaim_ns_per_byte\": -1}]}",
                      "links[0].reclaim_ns_per_byte: must be zero or more");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\"}],\n \"links\": [{\"between\": [\"g\", \"g\"], "
                      "\"bandwidth_gbs\": 1, \"latency_us\": 1, \"wake_us\": -2}]}",
                      "links[0].wake_us: must be zero or more");
    /* A key with a newline in it (found by fuzz_cluster) is quoted escaped: the error stays one line. */
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\"}],\n \"links\": [{\"between\": [\"g\", \"g\"], "
                      "\"bandwidth_gbs\": 1, \"lat\\ncy_us\": 1}]}",
                      "links[0].lat\\x0acy_us: unknown key");
    /* The JSON parser's message quotes the text near the error, here a newline. */
    expect_file_error("{\"devices\": [{\"i\\\n\": 1}]}", "c.json:2:0: invalid escape near '\"i\\\\x0a'");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\", \"tdp_w\": 5, \"idle_w\": 9}]}", "exceeds");
    expect_file_error("{\"devices\": [{\"id\": \"g\", \"type\": \"t4\"}, {\"id\": \"g\", \"type\": \"t4\"}]}",
                      "appears twice");
    expect_file_error("{\"devices\": []}", "non-empty");
    expect_file_error("{\"devices\": [{\"id\": \"g\" \"type\": \"t4\"}]}", "c.json:1:30:");
    expect_file_error("[1]", "c.json:1:1:");
    assert_int_equal(po_cluster_load("/nonexistent/c.json", &c), PO_ERR_IO);
}

/* Calibration on this machine's first core: every node with work gets a measurement. */
static void calibrate_on_core(void **state) {
    (void)state;
    po_machine *m;
    PO_CHECK(po_machine_discover(NULL, &m));
    po_device_list devs;
    PO_CHECK(po_devices_parse(m, "cpu:0", &devs));
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    po_cluster_device d = synth("cpu:0", 50, 10, 8, 0.05);
    d.dev = devs.dev[0];
    PO_CHECK(po_cluster_add(c, &d));
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(c, &cm));
    po_model *mod = step_model("mnist_mlp:d_in=16,hidden=32,classes=4", 8);
    PO_CHECK(po_cost_model_calibrate(cm, m, &devs.dev[0], mod->graph, 3));
    int measured = 0;
    for (int i = 0; i < po_graph_size(mod->graph); i++) {
        const po_node *n = po_graph_node(mod->graph, i);
        po_cost k = po_node_cost(n);
        if (k.flops == 0 && k.bytes_read + k.bytes_written == 0) continue;
        double s;
        PO_CHECK(po_cost_model_lookup(cm, po_op_key(n), "cpu:0", &s, NULL));
        assert_true(s >= 0.0 && s < 0.1);
        measured++;
    }
    assert_true(measured > 5);
    po_device virt;
    po_device_perf vp;
    PO_CHECK(po_catalog_virtual_device("t4", &virt, &vp));
    assert_int_equal(po_cost_model_calibrate(cm, m, &virt, mod->graph, 1), PO_ERR_NOT_FOUND);
    po_model_free(mod);
    po_cost_model_free(cm);
    po_cluster_free(c);
    po_device_list_free(&devs);
    po_machine_free(m);
}

/* An executor opened for timing (calibration, contention) does a step's work, Adam's update
 * included, without moving the parameters: repeated on zero inputs and targets, training would
 * drift to a state ordinary data never reaches. The optimizer state does move (the work is done);
 * an executor of the same graph opened as training opens it moves the parameters. */
static void timing_runs_leave_parameters(void **state) {
    (void)state;
    po_machine *m;
    PO_CHECK(po_machine_discover(NULL, &m));
    po_device_list devs;
    PO_CHECK(po_devices_parse(m, "cpu:0", &devs));
    po_model *mod = step_model("mnist_mlp:d_in=16,hidden=32,classes=4", 8);
    po_params *p;
    po_exec *ex;
    PO_CHECK(po__measure_exec_open(mod->graph, &devs.dev[0], &p, &ex));
    size_t n = po_params_total(p);
    float *before = malloc(n * sizeof *before);
    assert_non_null(before);
    memcpy(before, po_params_values(p), n * sizeof *before);
    for (int r = 0; r < 3; r++)
        PO_CHECK(po_exec_run(ex));
    assert_memory_equal(before, po_params_values(p), n * sizeof *before);
    double state_moved = 0.0;
    for (size_t i = 0; i < n * (size_t)po_params_state_slots(p); i++)
        state_moved += fabs(po_params_state(p)[i]);
    assert_true(state_moved > 0.0);
    po_exec_set_lr_scale(ex, 1.0f); /* as training runs it */
    PO_CHECK(po_exec_run(ex));
    assert_true(memcmp(before, po_params_values(p), n * sizeof *before) != 0);
    free(before);
    po_exec_free(ex);
    po_params_free(p);
    po_model_free(mod);
    po_device_list_free(&devs);
    po_machine_free(m);
}

/* Two devices timed taking turns (po_cost_model_calibrate_many): the one emulating slowdown=8 is
 * measured about 8 times slower over the step's products; every node of both gets a figure.
 * The band is wide because ctest runs tests side by side on two cores: another test sharing
 * one core halves that core's speed (4x or 16x), while ignoring the option would give at most
 * 2x. Bad arguments are refused. Needs two cores (else only the refusals are checked). */
static void calibrate_many_taking_turns(void **state) {
    (void)state;
    po_machine *m;
    PO_CHECK(po_machine_discover(NULL, &m));
    bool two = po_machine_cpu(m)->cores > 1;
    PO_CHECK(po_device_register_option("slowdown", "emulate a device F times slower"));
    po_device_list devs;
    PO_CHECK(po_devices_parse(m, two ? "cpu:0,cpu:1:slowdown=8" : "cpu:0", &devs));
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    for (int i = 0; i < devs.n; i++) {
        po_cluster_device d = synth(devs.dev[i].id, 50, 10, 8, 0.05);
        d.dev = devs.dev[i];
        PO_CHECK(po_cluster_add(c, &d));
    }
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(c, &cm));
    po_model *mod = step_model("mnist_mlp:d_in=256,hidden=256,classes=10", 64);
    if (two) {
        PO_CHECK(po_cost_model_calibrate_many(cm, m, devs.dev, 2, mod->graph, 5));
        double fast = 0.0, slow = 0.0;
        for (int i = 0; i < po_graph_size(mod->graph); i++) {
            const po_node *n = po_graph_node(mod->graph, i);
            po_cost k = po_node_cost(n);
            if (k.flops == 0 && k.bytes_read + k.bytes_written == 0) continue;
            double s0, s1;
            PO_CHECK(po_cost_model_lookup(cm, po_op_key(n), "cpu:0", &s0, NULL));
            PO_CHECK(po_cost_model_lookup(cm, po_op_key(n), "cpu:1", &s1, NULL));
            if (po_node_op(n) == PO_OP_LINEAR || po_node_op(n) == PO_OP_MATMUL) fast += s0, slow += s1;
        }
        assert_true(fast > 0.0);
        double ratio = slow / fast;
        print_message("slowdown=8 device measured %.2fx slower over the products\n", ratio);
        if (ratio < 3.0 || ratio > 20.0) fail_msg("slowdown=8 device measured %.2fx slower over the products", ratio);
    }
    assert_int_equal(po_cost_model_calibrate_many(cm, m, devs.dev, 0, mod->graph, 1), PO_ERR_INVALID_ARG);
    assert_int_equal(po_cost_model_calibrate_many(cm, m, devs.dev, devs.n, mod->graph, 0), PO_ERR_INVALID_ARG);
    po_model_free(mod);
    po_cost_model_free(cm);
    po_cluster_free(c);
    po_device_list_free(&devs);
    po_machine_free(m);
}

/* Measured at both batches, a node's time at other row counts is the affine fit through the two
 * (fixed cost + per row), not the nearer measurement scaled by the roofline: every node costs
 * 1 ms + 0.5 us per row (1.016 ms at 32 rows, 1.008 at 16), and a 0.25 / 0.75 data-parallel split
 * (8 and 24 rows) must take 1.004 and 1.012 ms per forward/backward node. */
/* Records t seconds for every node with work of g on both devices. */
static void record_all(po_cost_model *cm, const po_graph *g, const char *d0, const char *d1, double t) {
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *nd = po_graph_node(g, i);
        po_cost cost = po_node_cost(nd);
        if (cost.flops == 0 && cost.bytes_read + cost.bytes_written == 0) continue;
        PO_CHECK(po_cost_model_record(cm, nd, d0, t));
        PO_CHECK(po_cost_model_record(cm, nd, d1, t));
    }
}

/* The prediction of a one-stage plan of m (batch 32; m2 at 16 for the affine model) over the
 * two replicas r: data parallel, or operator split. */
static void simulate_stage(po_cost_model *cm, po_model *m, po_model *m2, po_strategy strategy, po_plan_replica *r,
                           int n, po_prediction *pr) {
    po_workload *w;
    PO_CHECK(po_workload_from_graphs(m->graph, 32, m2->graph, 16, &w));
    po_plan p;
    memset(&p, 0, sizeof p);
    po_plan_stage st = {0, po_workload_n_layers(w) - 1, false, n, r};
    p.strategy = strategy;
    p.n_stages = 1;
    p.stages = &st;
    p.micro_batches = 1;
    PO_CHECK(po_plan_simulate(&p, w, cm, pr));
    po_workload_free(w);
}

static void affine_history(void **state) {
    (void)state;
    po_cluster *c;
    PO_CHECK(po_cluster_new(&c));
    po_cluster_device d0 = synth("g0", 100, 10, 10, 1e-3), d1 = synth("g1", 100, 10, 10, 1e-3);
    PO_CHECK(po_cluster_add(c, &d0));
    PO_CHECK(po_cluster_add(c, &d1));
    PO_CHECK(po_cluster_set_default_link(c, (po_link){.bandwidth_gbs = 1e9, .latency_us = 0.0}));
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(c, &cm));
    po_model *m = step_model("mnist_mlp:hidden=64", 32), *m2 = step_model("mnist_mlp:hidden=64", 16);
    int fb = 0, same = 0; /* forward/backward nodes whose key differs between the batches; the rest */
    for (int i = 0; i < po_graph_size(m->graph); i++) {
        const po_node *nd = po_graph_node(m->graph, i);
        po_cost cost = po_node_cost(nd);
        if (cost.flops == 0 && cost.bytes_read + cost.bytes_written == 0) continue;
        if (po_op_key(nd) == po_op_key(po_graph_node(m2->graph, i)))
            same++;
        else
            fb++;
    }
    for (int k = 0; k < 2; k++)
        record_all(cm, k ? m2->graph : m->graph, "g0", "g1", 1e-3 + 0.5e-6 * (k ? 16 : 32));
    po_plan_replica r[2] = {{"g0", 0.25}, {"g1", 0.75}};
    po_prediction pr;
    simulate_stage(cm, m, m2, PO_STRATEGY_DP, r, 2, &pr);
    /* g1 (24 rows) is the slower replica. A node whose key is the same at both batches (the
     * optimizer's, whose shapes do not depend on rows) has one history, the mean of both records:
     * 1.012 ms whatever the rows. */
    double want = fb * 1.012 + same * 1.012;
    if (fabs(pr.step_ms - want) > 1e-6 * want) fail_msg("step %.6f ms, want %.6f", pr.step_ms, want);
    double busy0 = (fb * 1.004 + same * 1.012) / want;
    if (fabs(pr.devices[0].busy - busy0) > 1e-6) fail_msg("g0 busy %.6f, want %.6f", pr.devices[0].busy, busy0);
    po_prediction_free(&pr);
    po_model_free(m);
    po_model_free(m2);
    po_cost_model_free(cm);
    po_cluster_free(c);
}

/* Two like CPU devices c0 and c1 sharing memory, linked c0 -> c1 by ab and c1 -> c0 by ba, every
 * node of m (batch 32) and m2 (batch 16) measured at 1 ms on both: a cost model to see what one
 * link figure adds to a prediction. *c is the cluster to free after the model. */
static po_cost_model *two_cores(po_link ab, po_link ba, po_model *m, po_model *m2, po_cluster **c) {
    PO_CHECK(po_cluster_new(c));
    for (int i = 0; i < 2; i++) {
        po_cluster_device d = synth(i ? "c1" : "c0", 100, 10, 10, 1e-3);
        d.dev.kind = PO_DEVICE_CPU;
        d.memory_group = 0;
        PO_CHECK(po_cluster_add(*c, &d));
    }
    PO_CHECK(po_cluster_set_link_directed(*c, "c0", "c1", ab));
    PO_CHECK(po_cluster_set_link_directed(*c, "c1", "c0", ba));
    po_cost_model *cm;
    PO_CHECK(po_cost_model_new(*c, &cm));
    for (int g = 0; g < 2; g++)
        record_all(cm, g ? m2->graph : m->graph, "c0", "c1", 1e-3);
    return cm;
}

/* The predicted step of a one-stage plan (simulate_stage), in ms. */
static double stage_ms(po_cost_model *cm, po_model *m, po_model *m2, po_strategy strategy, po_plan_replica *r, int n) {
    po_prediction pr;
    simulate_stage(cm, m, m2, strategy, r, n, &pr);
    double ms = pr.step_ms;
    po_prediction_free(&pr);
    return ms;
}

/* Data-parallel replicas in shared memory: each updates its share of parameters the other
 * replica read, and pays the link's reclaim cost for them. Two like CPU devices with every node
 * measured alike, even shares: the step grows by half the parameter bytes times the cost. The
 * bytes come from the model's layer sizes, not from the workload. */
static void replicas_pay_reclaim(void **state) {
    (void)state;
    po_model *m = step_model("mnist_mlp:hidden=64", 32), *m2 = step_model("mnist_mlp:hidden=64", 16);
    /* Each parameter padded to whole 64-byte lines in the parameter buffer: the last bias's 10. */
    const double param_bytes = 4.0 * (784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 16), ns_per_byte = 0.25;
    double step_ms[2];
    for (int k = 0; k < 2; k++) {
        po_link l = {.bandwidth_gbs = 1e9, .latency_us = 0.0, .reclaim_ns_per_byte = k ? ns_per_byte : 0.0};
        po_cluster *c;
        po_cost_model *cm = two_cores(l, l, m, m2, &c);
        int readers[2] = {0, 1};
        assert_true(fabs(po_cost_model_reclaim_s(cm, readers, 2, 1, 1e9) - (k ? ns_per_byte : 0.0)) < 1e-15);
        assert_true(po_cost_model_reclaim_s(cm, readers, 1, 0, 1e9) == 0.0); /* only itself read it */
        po_plan_replica r[2] = {{"c0", 0.5}, {"c1", 0.5}};
        step_ms[k] = stage_ms(cm, m, m2, PO_STRATEGY_DP, r, 2);
        po_cost_model_free(cm);
        po_cluster_free(c);
    }
    double want = 0.5 * param_bytes * ns_per_byte * 1e-6;
    if (fabs(step_ms[1] - step_ms[0] - want) > 1e-9)
        fail_msg("reclaim added %.9f ms to the step, want %.9f", step_ms[1] - step_ms[0], want);
    po_model_free(m);
    po_model_free(m2);
}

/* Operator split: a ReLU, or its gradient, run by each member on its part of a split product's
 * output writes lines the other member read, and pays the link's reclaim cost on its share of
 * the output. mnist_mlp with 512 hidden units at batch 32, two like CPU devices, every node
 * measured alike, even shares: both ReLUs follow split products (x W^T, 25.7 and 16.8 MFLOP),
 * and so does the first one's gradient (dY W, 16.8 MFLOP); the second's does not (dY W over 10
 * classes, 0.3 MFLOP, below the split threshold). The step grows by three halves of a [32,
 * 512] float output times the cost. */
static void followers_pay_reclaim(void **state) {
    (void)state;
    po_model *m = step_model("mnist_mlp:hidden=512", 32), *m2 = step_model("mnist_mlp:hidden=512", 16);
    const double out_bytes = 4.0 * 32 * 512, ns_per_byte = 0.25;
    double step_ms[2];
    for (int k = 0; k < 2; k++) {
        po_link l = {.bandwidth_gbs = 1e9, .latency_us = 0.0, .reclaim_ns_per_byte = k ? ns_per_byte : 0.0};
        po_cluster *c;
        po_cost_model *cm = two_cores(l, l, m, m2, &c);
        po_plan_replica r[2] = {{"c0", 0.5}, {"c1", 0.5}};
        step_ms[k] = stage_ms(cm, m, m2, PO_STRATEGY_OPSPLIT, r, 2);
        po_cost_model_free(cm);
        po_cluster_free(c);
    }
    double want = 3 * 0.5 * out_bytes * ns_per_byte * 1e-6;
    if (fabs(step_ms[1] - step_ms[0] - want) > 1e-9)
        fail_msg("reclaim added %.9f ms to the step, want %.9f", step_ms[1] - step_ms[0], want);
    po_model_free(m);
    po_model_free(m2);
}

/* A plan over several devices pays a round trip of wake-ups a step (the caller hands the step to
 * the devices' threads and is woken at its end); one device, run on the caller's thread, pays
 * none. Data parallel and operator split over two like CPU devices, and single on one, with the
 * link's wake_us 0 and then 30 (the other way 50: the dearer direction counts). */
static void threaded_plans_pay_wake_ups(void **state) {
    (void)state;
    po_model *m = step_model("mnist_mlp:hidden=64", 32), *m2 = step_model("mnist_mlp:hidden=64", 16);
    double step_ms[2][3];
    for (int k = 0; k < 2; k++) {
        po_cluster *c;
        po_cost_model *cm =
            two_cores((po_link){.bandwidth_gbs = 1e9, .latency_us = 0, .wake_us = k ? 30 : 0},
                      (po_link){.bandwidth_gbs = 1e9, .latency_us = 0, .wake_us = k ? 50 : 0}, m, m2, &c);
        int devs[2] = {0, 1};
        assert_true(fabs(po_cost_model_wake_s(cm, devs, 2) - (k ? 50e-6 : 0.0)) < 1e-15);
        assert_true(po_cost_model_wake_s(cm, devs, 1) == 0.0);
        po_plan_replica r[2] = {{"c0", 0.5}, {"c1", 0.5}}, one[1] = {{"c0", 1.0}};
        po_strategy kinds[3] = {PO_STRATEGY_DP, PO_STRATEGY_OPSPLIT, PO_STRATEGY_DP};
        for (int q = 0; q < 3; q++)
            step_ms[k][q] = stage_ms(cm, m, m2, kinds[q], q < 2 ? r : one, q < 2 ? 2 : 1);
        po_cost_model_free(cm);
        po_cluster_free(c);
    }
    for (int q = 0; q < 3; q++) {
        double want = q < 2 ? 2 * 50e-3 : 0.0; /* ms */
        if (fabs(step_ms[1][q] - step_ms[0][q] - want) > 1e-9)
            fail_msg("plan %d: wake-ups added %.9f ms to the step, want %.9f", q, step_ms[1][q] - step_ms[0][q], want);
    }
    po_model_free(m);
    po_model_free(m2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replicas_pay_reclaim),
        cmocka_unit_test(followers_pay_reclaim),
        cmocka_unit_test(threaded_plans_pay_wake_ups),
        cmocka_unit_test(workload_matches_analysis),
        cmocka_unit_test(roofline_and_curve),
        cmocka_unit_test(measured_history),
        cmocka_unit_test(affine_history),
        cmocka_unit_test(transfers_and_energy),
        cmocka_unit_test(cluster_api),
        cmocka_unit_test(cluster_files),
        cmocka_unit_test(calibrate_on_core),
        cmocka_unit_test(timing_runs_leave_parameters),
        cmocka_unit_test(calibrate_many_taking_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

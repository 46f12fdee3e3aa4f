/* Acceptance: the analyzer's peak memory of a training step against what the executor and
 * po_params really allocate, for the three workloads at their benchmark batch sizes (mnist_mlp
 * 128, cifar_cnn 64, tiny_gpt 8), and against the process heap's growth while a trainer is
 * built and runs a step (glibc's mallinfo2; that part is skipped where another allocator, such
 * as valgrind's or ASan's, hides it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po_test.h"

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Whether mallinfo2 sees this process's allocations: an 8 MiB block must show. */
static bool heap_is_visible(void) {
    size_t before = heap_in_use();
    char *p = malloc(8u << 20);
    if (!p) return false;
    memset(p, 1, 8u << 20);
    size_t during = heap_in_use();
    free(p);
    return during >= before + (8u << 20);
}

static po_analysis *analyse(const char *spec, int64_t batch, const po_optim_opts *o, po_model **m) {
    PO_CHECK(po_model_build(spec, batch, m));
    PO_CHECK(po_graph_backward((*m)->graph, (*m)->loss));
    PO_CHECK(po_graph_add_optimizer((*m)->graph, o));
    po_analysis *a;
    PO_CHECK(po_analysis_new((*m)->graph, &a));
    return a;
}

/* The analysis's internal consistency: layers add up to the totals. */
static void check_breakdown(const po_analysis *a, const po_graph *g) {
    const po_totals *t = po_analysis_totals(a);
    size_t act = 0, pb = 0, gb = 0, sb = 0;
    for (int l = -1; l < po_graph_n_layers(g); l++) {
        const po_layer_info *L = po_analysis_layer(a, l);
        act += L->activation_bytes, pb += L->param_bytes, gb += L->grad_bytes, sb += L->optim_state_bytes;
    }
    assert_int_equal(act, t->live_peak_bytes);
    assert_int_equal(pb, t->param_bytes);
    assert_int_equal(gb, t->grad_bytes);
    assert_int_equal(sb, t->optim_state_bytes);
    assert_true(t->live_peak_bytes <= t->arena_bytes);
    assert_true(t->peak_live_memory_bytes <= t->peak_memory_bytes);
    /* Live bytes at the peak node, recounted from the per-node records. */
    size_t live = 0;
    for (int i = 0; i <= t->peak_node; i++) {
        const po_node_info *r = po_analysis_node(a, i);
        if (r->arena_bytes && r->live_until >= t->peak_node) live += r->arena_bytes;
    }
    assert_int_equal(live, t->live_peak_bytes);
}

static void workload(const char *spec, int64_t batch, po_optim_kind kind, float momentum, bool measure) {
    po_optim_opts o = po_optim_opts_default(kind);
    o.momentum = momentum;
    po_model *am;
    po_analysis *a = analyse(spec, batch, &o, &am);
    const po_totals *t = po_analysis_totals(a);
    check_breakdown(a, am->graph);

    po_model *m;
    PO_CHECK(po_model_build(spec, batch, &m));
    po_dataset *d; /* made first: the data is not part of the step */
    PO_CHECK(po_dataset_synthetic(m, m->batch, 3, &d));
    size_t before = heap_in_use();
    po_trainer *tr;
    PO_CHECK(po_trainer_new(m, &o, 1, &tr));
    PO_CHECK(po_dataset_batch(d, 0, po_trainer_input(tr, 0), po_trainer_input(tr, 1)));
    float loss;
    PO_CHECK(po_trainer_step(tr, &loss));
    size_t grown = heap_in_use() - before;
    size_t exec = po_exec_allocated_bytes(po_trainer_exec(tr)),
           params = po_params_allocated_bytes(po_trainer_params(tr));
    print_message("%-40s analyzer %10zu  executor+params %10zu (%zu + %zu)  heap growth %10zu\n", spec,
                  t->peak_memory_bytes, exec + params, exec, params, measure ? grown : 0);
    /* Same computation: exactly equal. */
    assert_int_equal(t->peak_memory_bytes, exec + params);
    assert_int_equal(t->param_bytes + t->grad_bytes + t->optim_state_bytes, params);
    assert_int_equal(t->arena_bytes, po_exec_arena_bytes(po_trainer_exec(tr)));
    assert_int_equal(t->scratch_bytes, po_exec_scratch_bytes(po_trainer_exec(tr)));
    if (measure) {
        /* What the heap really gained, within 5%: kernel state (oneDNN primitives), the
         * graph's backward nodes and the executor's tables are the difference. */
        double measured = (double)grown, predicted = (double)t->peak_memory_bytes;
        if (fabs(measured - predicted) > 0.05 * predicted)
            fail_msg("%s: heap grew %.0f bytes, the analyzer predicts %.0f (%.1f%% off)", spec, measured, predicted,
                     100.0 * (measured - predicted) / predicted);
    }
    po_dataset_free(d);
    po_trainer_free(tr);
    po_model_free(m);
    po_analysis_free(a);
    po_model_free(am);
}

static void three_workloads_at_benchmark_batch(void **st) {
    (void)st;
    bool measure = heap_is_visible();
    if (!measure) print_message("mallinfo2 does not see this allocator: heap growth not compared\n");
    workload("mnist_mlp", 128, PO_OPTIM_ADAM, 0.0f, measure);
    workload("cifar_cnn", 64, PO_OPTIM_ADAM, 0.0f, measure);
    workload("tiny_gpt", 8, PO_OPTIM_ADAM, 0.0f, measure);
}

/* Optimizer state follows the optimizer: none for plain SGD, one buffer with momentum. */
static void optimizer_state_follows_the_optimizer(void **st) {
    (void)st;
    workload("mnist_mlp:d_in=40,hidden=24", 16, PO_OPTIM_SGD, 0.0f, false);
    workload("mnist_mlp:d_in=40,hidden=24", 16, PO_OPTIM_SGD, 0.9f, false);
    po_optim_opts sgd = po_optim_opts_default(PO_OPTIM_SGD);
    po_model *m;
    po_analysis *a = analyse("mnist_mlp:d_in=40,hidden=24", 16, &sgd, &m);
    assert_int_equal(po_analysis_totals(a)->optim_state_bytes, 0);
    po_analysis_free(a);
    po_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_workloads_at_benchmark_batch),
        cmocka_unit_test(optimizer_state_follows_the_optimizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

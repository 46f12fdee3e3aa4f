/* Per-call overhead: what running a node costs when the node does (almost) nothing — the
 * executor's loop and kernel entry for a one-element graph — and one 1x1x1 product through the
 * GEMM entry point (library dispatch, argument checks, packing set-up). The cost model adds these
 * to every node, which is what makes many small nodes slower than their FLOPs suggest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cpu/gemm.h"
#include "hw/hw_internal.h"
#include "paropt/graph.h"
#include "paropt/params.h"

typedef struct {
    po_exec *ex;
    int rounds;
    double point_seconds;
    double exec_us, gemm_us;
    po_status st;
    char err[256];
} dispatch_job;

/* Best per-call time over rounds, each round sized to its share of point_seconds. */
static double per_call_us(dispatch_job *j, po_status (*call)(void *), void *arg) {
    double w0 = po__hw_now();
    if (call(arg)) return NAN;
    double one = po__hw_now() - w0;
    int reps = one > 0 ? (int)fmin(fmax(j->point_seconds / 2 / j->rounds / one, 10.0), 1e7) : 1000;
    double best = INFINITY;
    for (int r = 0; r < j->rounds; r++) {
        double t0 = po__hw_now();
        for (int i = 0; i < reps; i++)
            if (call(arg)) return NAN;
        double us = (po__hw_now() - t0) / reps * 1e6;
        if (us < best) best = us;
    }
    return best;
}

static po_status run_exec(void *ex) { return po_exec_run(ex); }

static po_status tiny_gemm(void *arg) {
    (void)arg;
    static _Thread_local float a = 1.0f, b = 2.0f, c = 0.0f;
    return po__sgemm(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
}

static void dispatch_thread(int t, void *arg) {
    (void)t;
    dispatch_job *j = arg;
    j->exec_us = per_call_us(j, run_exec, j->ex);
    j->gemm_us = per_call_us(j, tiny_gemm, NULL);
    if (isnan(j->exec_us) || isnan(j->gemm_us)) {
        j->st = PO_ERR_BACKEND;
        snprintf(j->err, sizeof j->err, "%s", po_last_error());
    }
}

po_status po__measure_dispatch(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p) {
    po__progress(c, "%s: per-call overhead", d->id);
    po_graph *g = po_graph_new();
    if (!g) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_node *x = po_input(g, "x", PO_F32, PO_SHAPE(1));
    po_node *y = po_relu(g, x);
    po_graph_keep(g, y);
    po_params *params = NULL;
    dispatch_job j = {0};
    j.rounds = c->level == PO_BENCH_FULL ? 5 : 3;
    j.point_seconds = c->point_seconds;
    po_status st = po_graph_status(g);
    if (st) st = po_fail(st, "dispatch graph: %s", po_graph_error(g));
    if (!st) st = po_params_new(g, &params);
    if (!st) st = po_exec_new(g, params, &j.ex);
    if (!st) st = po__run_on_group(m, d->first_core, 1, dispatch_thread, &j);
    if (!st && j.st) st = po_fail(j.st, "%s: overhead measurement failed: %s", d->id, j.err);
    if (!st) {
        p->dispatch_us = j.exec_us;
        p->gemm_call_us = j.gemm_us;
    }
    po_exec_free(j.ex);
    po_params_free(params);
    po_graph_free(g);
    return st;
}

/* Planning on this machine: the workload, the measured devices and the calibrated cost model
 * in one object (paropt/plan.h, po_planner). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/plan.h"

#include "hw/hw_internal.h"
#include "paropt/models.h"
#include "paropt/runtime.h"
#include "plan/plan_internal.h"

struct po_planner {
    po_workload *w;
    po_machine *m;
    po_hw_profile *prof;
    po_cluster *cluster;
    po_cost_model *cm;
};

po_planner_opts po_planner_opts_default(void) { return (po_planner_opts){PO_BENCH_QUICK, 2, NULL, NULL}; }

void po_planner_free(po_planner *p) {
    if (!p) return;
    po_cost_model_free(p->cm);
    po_cluster_free(p->cluster);
    po_hw_profile_free(p->prof);
    po_machine_free(p->m);
    po_workload_free(p->w);
    free(p);
}

const po_workload *po_planner_workload(const po_planner *p) { return p->w; }
const po_cluster *po_planner_cluster(const po_planner *p) { return p->cluster; }
const po_cost_model *po_planner_cost_model(const po_planner *p) { return p->cm; }

/* Every op of a step timed on each device at the workload's two batch sizes (the cost model
 * interpolates between them for a device's share of the batch), the devices taking turns. */
static po_status calibrate(po_planner *p, const char *spec, const po_optim_opts *o, const po_device_list *devs,
                           const po_planner_opts *opts) {
    int64_t b = po_workload_batch(p->w);
    int64_t batches[2] = {b, b >= 2 ? b / 2 : 2};
    po_status st = PO_OK;
    for (int k = 0; k < 2 && !st; k++) {
        po_model *model = NULL;
        st = po_model_build_step(spec, batches[k], o, &model);
        if (!st && opts->progress) {
            char what[128];
            snprintf(what, sizeof what, "every op of a step at batch %lld, %d device%s taking turns",
                     (long long)batches[k], devs->n, devs->n == 1 ? "" : "s");
            opts->progress(what, opts->progress_ctx);
        }
        if (!st) st = po_cost_model_calibrate_many(p->cm, p->m, devs->dev, devs->n, model->graph, opts->calibrate);
        po_model_free(model);
    }
    return st;
}

/* --- contention ----------------------------------------------------------------------------- */

#define CONTENTION_RUNS 7

typedef struct {
    po_exec **ex;             /* one per device */
    double *alone, *together; /* [device * CONTENTION_RUNS + round] step seconds */
    int n;
    pthread_barrier_t phase;
    po_status st;
} contention_job;

static double median_of(double *v, int n) {
    for (int i = 1; i < n; i++) /* insertion sort: a handful of values */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double timed_run(po_exec *ex, po_status *st) {
    double t0 = po__hw_now();
    po_status s = po_exec_run(ex);
    if (s) *st = s;
    return po__hw_now() - t0;
}

/* Round after round, each device computes alone (the others wait), then all compute at once:
 * interleaved, so that load from elsewhere on the machine falls on both figures alike. */
static void contention_thread(int t, void *arg) {
    contention_job *j = arg;
    po_status st = po_exec_run(j->ex[t]); /* warm-up */
    for (int r = 0; r < CONTENTION_RUNS; r++) {
        for (int i = 0; i < j->n; i++) {
            pthread_barrier_wait(&j->phase);
            if (i == t) j->alone[t * CONTENTION_RUNS + r] = timed_run(j->ex[t], &st);
        }
        pthread_barrier_wait(&j->phase);
        j->together[t * CONTENTION_RUNS + r] = timed_run(j->ex[t], &st);
    }
    if (st) __atomic_store_n(&j->st, st, __ATOMIC_RELAXED);
}

/* Each device's step (at its data-parallel share of the batch) timed alone and then with every
 * device computing at once: the ratio is what sharing caches and memory bandwidth costs it. */
static po_status measure_contention(po_planner *p, const po_optim_opts *o, const po_device_list *devs,
                                    const po_planner_opts *opts) {
    int n = devs->n;
    int64_t rows = po_workload_batch(p->w) / n > 0 ? po_workload_batch(p->w) / n : 1;
    if (opts->progress) {
        char what[128];
        snprintf(what, sizeof what, "contention: %d devices computing at once, %lld rows each", n, (long long)rows);
        opts->progress(what, opts->progress_ctx);
    }
    po_model *model = NULL;
    po_params **params = calloc((size_t)n, sizeof *params);
    int *cores = calloc((size_t)n, sizeof *cores);
    contention_job j = {calloc((size_t)n, sizeof(po_exec *)),
                        calloc((size_t)n * CONTENTION_RUNS, sizeof(double)),
                        calloc((size_t)n * CONTENTION_RUNS, sizeof(double)),
                        n,
                        {{0}},
                        PO_OK};
    po_status st =
        params && cores && j.ex && j.alone && j.together ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    if (!st) st = po_model_build_step(po_workload_name(p->w), rows, o, &model);
    for (int i = 0; !st && i < n; i++) {
        cores[i] = devs->dev[i].first_core;
        st = po__measure_exec_open(model->graph, &devs->dev[i], &params[i], &j.ex[i]);
    }
    if (!st) {
        pthread_barrier_init(&j.phase, NULL, (unsigned)n);
        st = po__run_pinned(p->m, cores, n, contention_thread, &j);
        pthread_barrier_destroy(&j.phase);
        if (!st) st = j.st;
    }
    for (int i = 0; !st && i < n; i++) {
        /* Each round's own ratio (its alone and together runs are moments apart), then the median
         * over rounds: a core's speed here drifts in phases of a second or so, and a ratio of
         * medians taken across phases read 1.6-1.8x where training then ran at about 1.05x. */
        double ratio[CONTENTION_RUNS];
        for (int r = 0; r < CONTENTION_RUNS; r++) {
            double alone = j.alone[i * CONTENTION_RUNS + r], together = j.together[i * CONTENTION_RUNS + r];
            ratio[r] = alone > 0.0 ? together / alone : 1.0;
        }
        double f = median_of(ratio, CONTENTION_RUNS);
        st = po_cost_model_set_contention(p->cm, devs->dev[i].id, f < 1.0 ? 1.0 : f > 100.0 ? 100.0 : f);
    }
    for (int i = 0; i < n; i++) {
        if (j.ex) po_exec_free(j.ex[i]);
        if (params) po_params_free(params[i]);
    }
    po_model_free(model);
    free(j.ex), free(j.alone), free(j.together), free(params), free(cores);
    return st;
}

po_status po_planner_new(const char *spec, int64_t batch, const po_optim_opts *o, const po_device_list *devs,
                         const po_planner_opts *opts, po_planner **out) {
    *out = NULL;
    po_planner_opts d = po_planner_opts_default();
    if (!opts) opts = &d;
    po_optim_opts adam = po_optim_opts_default(PO_OPTIM_ADAM);
    if (!o) o = &adam;
    if (!devs || devs->n < 1) return po_fail(PO_ERR_INVALID_ARG, "planner: no devices");
    if (opts->calibrate < 0) return po_fail(PO_ERR_INVALID_ARG, "planner: calibrate must be at least 0");
    po_planner *p = calloc(1, sizeof *p);
    if (!p) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_measure_opts mo = po_measure_opts_default();
    mo.level = opts->level;
    mo.progress = opts->progress;
    mo.progress_ctx = opts->progress_ctx;
    po_status st = po_workload_from_model(spec, batch, o, &p->w);
    if (!st) st = po_machine_discover(NULL, &p->m);
    if (!st) st = po_hw_profile_get(p->m, devs, &mo, &p->prof);
    if (!st) st = po_cluster_from_profile(p->m, p->prof, &p->cluster);
    if (!st) st = po_cost_model_new(p->cluster, &p->cm);
    if (!st && opts->calibrate > 0) st = calibrate(p, po_workload_name(p->w), o, devs, opts);
    if (!st && opts->calibrate > 0 && devs->n > 1) st = measure_contention(p, o, devs, opts);
    if (st) {
        po_planner_free(p);
        return st;
    }
    *out = p;
    return PO_OK;
}

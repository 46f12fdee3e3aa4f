/* Calibration: every op of a training step timed on real devices, each op's median recorded in
 * the cost model (paropt/plan.h, po_cost_model_calibrate_many).
 *
 * The devices take turns, one step each, round after round, rather than one device after the
 * other: on a shared machine a neighbour's burst lasting a second or two would otherwise land on
 * one device's runs only and make alike devices look unlike (seen here: one of two identical
 * cores measured 1.4x slower, and the planner gave it 15% of the batch). Taking turns, every
 * device sees the same bursts, and per-op medians drop them. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"
#include "paropt/analyze.h"
#include "paropt/runtime.h"
#include "paropt/trace.h"
#include "plan/plan_internal.h"

#define MAX_CALIB_RUNS 25
/* Per device: short steps get more runs, so small kernels are timed often. On this project's
 * shared VM a core's speed drifts in phases of a second or so; 0.2 s fell within one phase and
 * a batch's figure moved 25% from one calibration to the next. */
#define MIN_TIMED_S 0.4
/* Warm-up before the timed runs. A thread's first steps run slow: oneDNN's sgemm started some
 * products at a third of their speed (backend/cpu/gemm.c now warms it per thread), and more
 * than that (first touches, caches: not pinned down) takes a few steps. With one warm-up step,
 * mnist_mlp's single-core step on the 2-core Zen 5 VM was predicted 9.0-11.1 ms against 7.2-7.4
 * measured before that sgemm warm-up, and still 8.75-10.9 against 7.95-8.65 (-26% to -1%)
 * after it; with these warm-ups, 7.75-7.97 against 7.78-8.01 (-2% to +1%), alternated runs of
 * paropt train --model mnist_mlp --devices cpu:0,cpu:1 --plan single. */
#define WARM_RUNS 10
#define WARM_S    0.25

typedef struct {
    po_params *params;
    po_exec *ex;
    double warm_s;   /* the last warm-up step */
    double *per_run; /* [node * runs + run] */
} calib_device;

typedef struct {
    const po_graph *g;
    calib_device *dev;
    int n;
    int min_runs, runs; /* runs: set once every device has warmed up */
    pthread_mutex_t lock;
    pthread_cond_t turn_changed;
    int turn;    /* whose step it is: turn % n, in round turn / n */
    int arrived; /* devices done with their warm-up */
    po_status st;
    char err[256];
} calib_job;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs per device: at least min_runs, more (up to MAX_CALIB_RUNS) until the fastest device has
 * MIN_TIMED_S timed. */
static int runs_for(const calib_job *j) {
    double fastest = INFINITY;
    for (int i = 0; i < j->n; i++)
        fastest = fmin(fastest, j->dev[i].warm_s);
    int runs = j->min_runs;
    if (fastest > 0.0 && isfinite(fastest) && fastest * runs < MIN_TIMED_S)
        runs = (int)fmin(MAX_CALIB_RUNS, ceil(MIN_TIMED_S / fastest));
    return runs < j->min_runs ? j->min_runs : runs;
}

static void fail_job(calib_job *j, po_status st) {
    if (!j->st) {
        j->st = st;
        snprintf(j->err, sizeof j->err, "%s", po_last_error());
    }
}

/* Device t's thread: warm-up steps (first-touch pages, oneDNN primitives, caches), then one
 * profiled step at each of its turns. A failure ends every device's loop. */
static void calib_thread(int t, void *arg) {
    calib_job *j = arg;
    calib_device *d = &j->dev[t];
    int n_nodes = po_graph_size(j->g);
    /* Warm-up steps until WARM_RUNS or WARM_S, whichever comes first; warm_s keeps the last. */
    po_status st = PO_OK;
    double began = po_trace_now();
    for (int w = 0; !st && (w == 0 || (w < WARM_RUNS && po_trace_now() - began < WARM_S)); w++) {
        double t0 = po_trace_now();
        st = po_exec_run(d->ex);
        d->warm_s = po_trace_now() - t0;
    }
    pthread_mutex_lock(&j->lock);
    if (st) fail_job(j, st);
    if (++j->arrived == j->n) {
        j->runs = runs_for(j);
        for (int i = 0; i < j->n && !j->st; i++) {
            j->dev[i].per_run = calloc((size_t)n_nodes * (size_t)j->runs, sizeof(double));
            if (!j->dev[i].per_run) fail_job(j, po_fail(PO_ERR_NO_MEMORY, "out of memory"));
        }
        pthread_cond_broadcast(&j->turn_changed);
    }
    while (j->arrived < j->n)
        pthread_cond_wait(&j->turn_changed, &j->lock);
    pthread_mutex_unlock(&j->lock);
    po_exec_set_profiling(d->ex, true);
    for (int r = 0; r < j->runs; r++) {
        pthread_mutex_lock(&j->lock);
        while (!j->st && j->turn != r * j->n + t)
            pthread_cond_wait(&j->turn_changed, &j->lock);
        bool stop = j->st;
        pthread_mutex_unlock(&j->lock);
        if (stop) break;
        po_exec_reset_profile(d->ex);
        st = po_exec_run(d->ex);
        for (int i = 0; i < n_nodes && !st; i++)
            d->per_run[(size_t)i * (size_t)j->runs + (size_t)r] = po_exec_node_seconds(d->ex, po_graph_node(j->g, i));
        pthread_mutex_lock(&j->lock);
        if (st) fail_job(j, st);
        j->turn++;
        pthread_cond_broadcast(&j->turn_changed);
        pthread_mutex_unlock(&j->lock);
    }
    po_exec_set_profiling(d->ex, false);
}

po_status po__measure_exec_open(const po_graph *g, const po_device *d, po_params **params, po_exec **ex) {
    *params = NULL;
    *ex = NULL;
    po_status st = po_params_new(g, params);
    if (!st) {
        po_params_init(*params, 1);
        st = po_exec_new(g, *params, ex);
    }
    /* Timing runs do all of a step's work but do not train: with zero inputs and targets the
     * model would learn its one answer within tens of Adam steps, after which its softmax
     * underflows and gradients drift towards denormals, which are slow on x86 and which
     * training on real data does not meet. A learning rate of 0 keeps the parameters as they
     * were and the optimizer's arithmetic as it is. */
    if (!st) po_exec_set_lr_scale(*ex, 0.0f);
    const char *slow = po_device_opt_get(d, "slowdown");
    if (!st && slow) st = po_exec_set_slowdown(*ex, strtof(slow, NULL));
    for (int i = 0; !st && i < po_graph_size(g); i++) {
        const po_node *n = po_graph_node(g, i);
        if (po_node_op(n) != PO_OP_INPUT) continue;
        po_shape s = po_node_shape(n);
        memset(po_exec_input_data(*ex, n), 0, (size_t)po_shape_numel(&s) * po_dtype_size(po_node_dtype(n)));
    }
    return st;
}

po_status po_cost_model_calibrate_many(po_cost_model *cm, const po_machine *m, const po_device *devs, int n_devs,
                                       const po_graph *g, int runs) {
    if (runs < 1) return po_fail(PO_ERR_INVALID_ARG, "calibrate: runs must be at least 1");
    if (n_devs < 1) return po_fail(PO_ERR_INVALID_ARG, "calibrate: no devices");
    for (int i = 0; i < n_devs; i++) {
        const po_device *d = &devs[i];
        if (po_cluster_find(po_cost_model_cluster(cm), d->id) < 0)
            return po_fail(PO_ERR_NOT_FOUND, "calibrate: device \"%s\" is not in the cluster", d->id);
        if (d->is_virtual || d->kind != PO_DEVICE_CPU || !po_machine_is_real(m))
            return po_fail(PO_ERR_UNSUPPORTED, "calibrate: \"%s\" is not a CPU device of this machine", d->id);
    }
    calib_job j = {.g = g, .n = n_devs, .min_runs = runs};
    j.dev = calloc((size_t)n_devs, sizeof *j.dev);
    int *first = calloc((size_t)n_devs, sizeof *first), *count = calloc((size_t)n_devs, sizeof *count);
    po_status st = j.dev && first && count ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < n_devs && !st; i++) {
        first[i] = devs[i].first_core;
        count[i] = devs[i].n_cores;
        st = po__measure_exec_open(g, &devs[i], &j.dev[i].params, &j.dev[i].ex);
    }
    if (!st) {
        pthread_mutex_init(&j.lock, NULL);
        pthread_cond_init(&j.turn_changed, NULL);
        st = po__run_on_groups(m, first, count, n_devs, calib_thread, &j);
        pthread_cond_destroy(&j.turn_changed);
        pthread_mutex_destroy(&j.lock);
        if (!st && j.st) st = po_fail(j.st, "calibrate: %s", j.err);
    }
    /* Per node and device: the median of its per-run times (a run caught by a timer interrupt or
     * a neighbour's burst moves a mean, not a median). */
    for (int i = 0; i < n_devs && !st; i++)
        for (int k = 0; k < po_graph_size(g) && !st; k++) {
            const po_node *n = po_graph_node(g, k);
            po_cost c = po_node_cost(n);
            if (c.flops == 0.0 && c.bytes_read + c.bytes_written == 0.0) continue;
            double *v = j.dev[i].per_run + (size_t)k * (size_t)j.runs;
            qsort(v, (size_t)j.runs, sizeof *v, cmp_double);
            double median = j.runs % 2 ? v[j.runs / 2] : 0.5 * (v[j.runs / 2 - 1] + v[j.runs / 2]);
            st = po_cost_model_record(cm, n, devs[i].id, median);
        }
    for (int i = 0; j.dev && i < n_devs; i++) {
        free(j.dev[i].per_run);
        po_exec_free(j.dev[i].ex);
        po_params_free(j.dev[i].params);
    }
    free(j.dev), free(first), free(count);
    return st;
}

po_status po_cost_model_calibrate(po_cost_model *cm, const po_machine *m, const po_device *d, const po_graph *g,
                                  int runs) {
    return po_cost_model_calibrate_many(cm, m, d, 1, g, runs);
}

#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "runtime/dp.h"

#include <sched.h>

#include "paropt/trace.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/balance.h"
#include "runtime/dp_buckets.h"
#include "runtime/optim_split.h"
#include "runtime/exec_internal.h"


typedef struct worker {
    struct po_dp *dp;
    int index;
    po_model *model;
    po_params *params; /* worker 0: the shared storage; others: replicas */
    po_exec *exec;
    int64_t rows, first_row;
    double weight;               /* rows / batch */
    int first_core, n_cores;
    float slowdown;   /* emulation factor applied to its executor */
    double compute_s; /* its forward + backward time in the last step */
    int64_t fit_rows; /* rows and median compute seconds of the window before the last re-split */
    double fit_s;     /* (0: none), for the affine fit of time against rows */
    pthread_t thread;
    bool started;
    float loss;
    po_status status;
    char error[512];
} worker;

struct po_dp {
    int k;
    worker *w;
    int64_t batch;
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    uint64_t generation; /* bumped for each step */
    int finished;        /* workers done with the current step */
    bool quit;
    pthread_barrier_t barrier;
    const po_tensor *x, *y; /* the current batch */
    /* Rebalancing: shares follow measured speed when finish times drift apart. */
    const po_optim_opts *optim;
    po_optim_opts optim_copy;
    char spec[512];
    bool rebalance;
    int64_t rebalances; /* how often shares were re-solved */
    po__balance bal;    /* when to re-split (runtime/balance.h) */
    po__opt_piece *opt; /* worker 0's optimizer updates shared out: worker k applies */
    int *opt_first;     /* opt[opt_first[k] .. opt_first[k + 1]) (runtime/optim_split.h) */
    po_trace *trace;    /* one track per worker, or NULL */
    po_dp_buckets bk;   /* the all-reduce in buckets, started as the backward pass finishes them */
};


static po_status fail_worker(worker *w, po_status st) {
    w->status = st;
    snprintf(w->error, sizeof w->error, "worker %d: %s", w->index, po_last_error());
    return st;
}

static void copy_rows(const po_tensor *src, int64_t first, int64_t rows, po_node *input, po_exec *ex) {
    size_t row = (size_t)(po_tensor_numel(src) / src->shape.dim[0]) * po_dtype_size(src->dtype);
    memcpy(po_exec_input_data(ex, input), (const char *)src->data + (size_t)first * row, (size_t)rows * row);
}

/* Gradients into worker 0's buffer: g0 = sum_i weight_i g_i over [begin, end), always in worker
 * order, so every run sums the same way whoever reduces which bucket. */
static void reduce_range(po_dp *dp, size_t begin, size_t end) {
    float *g0 = po_params_grads(dp->w[0].params);
    float w0 = (float)dp->w[0].weight;
#pragma omp simd
    for (size_t e = begin; e < end; e++)
        g0[e] *= w0;
    for (int i = 1; i < dp->k; i++) {
        const float *gi = po_params_grads(dp->w[i].params);
        float wi = (float)dp->w[i].weight;
#pragma omp simd
        for (size_t e = begin; e < end; e++)
            g0[e] += wi * gi[e];
    }
}

/* Forward, then backward bucket by bucket: each bucket is announced as soon as this worker's
 * part of it is final (its emulated slowness paid first, as a slow device's results arrive
 * late). On failure every bucket not yet announced is announced anyway, so no worker waits for
 * it; the step then fails and nothing is updated. */
static po_status forward_backward(worker *w) {
    po_dp *dp = w->dp;
    po_dp_buckets *bk = &dp->bk;
    po_status st = po_exec_run_phases(w->exec, 1u << PO_PHASE_FORWARD);
    int done = 0, b = 0;
    for (; b < bk->n && !st; b++) {
        int cut = bk->b[b].cut;
        if (cut > done) {
            st = po__exec_run_list(w->exec, bk->bwd + done, cut - done);
            po__exec_pay_idle(w->exec);
            done = cut;
        }
        if (!st) atomic_fetch_add_explicit(&bk->b[b].ready, 1, memory_order_release);
    }
    if (!st && done < bk->n_bwd) st = po__exec_run_list(w->exec, bk->bwd + done, bk->n_bwd - done);
    po__exec_pay_idle(w->exec);
    for (b = st ? b - 1 : bk->n; b < bk->n; b++)
        atomic_fetch_add_explicit(&bk->b[b].ready, 1, memory_order_release);
    return st;
}

/* Reduces buckets every worker has finished, earliest first, until none is left unclaimed;
 * returns the seconds spent reducing (not waiting). */
static double reduce_buckets(worker *w, double *first, double *last) {
    po_dp *dp = w->dp;
    po_dp_buckets *bk = &dp->bk;
    double busy = 0.0;
    for (;;) {
        bool left = false, took = false;
        for (int b = 0; b < bk->n && !took; b++) {
            po_dp_bucket *x = &bk->b[b];
            if (atomic_load_explicit(&x->claimed, memory_order_relaxed)) continue;
            left = true;
            if (atomic_load_explicit(&x->ready, memory_order_acquire) < dp->k) continue;
            int free_ = 0;
            if (!atomic_compare_exchange_strong(&x->claimed, &free_, 1)) continue;
            double t0 = po_trace_now();
            reduce_range(dp, x->begin, x->end);
            double t1 = po_trace_now();
            busy += t1 - t0;
            if (*first < 0.0) *first = t0;
            *last = t1;
            if (po_trace_recording(dp->trace)) po_trace_slice(dp->trace, w->index, "all-reduce", "communication", t0, t1);
            took = true;
        }
        if (!left) return busy;
        if (!took) sched_yield(); /* the others are still computing the next bucket */
    }
}

/* An emulated slow device (po_exec_set_slowdown) idles (F - 1) times work_s seconds of work it
 * did outside its executor (its all-reduce buckets, its optimizer updates), as its executor does
 * after each kernel. */
static void emulate_slowness(const worker *w, double work_s) {
    if (w->slowdown <= 1.0f) return;
    double idle = work_s * (double)(w->slowdown - 1.0f);
    struct timespec ts = {(time_t)idle, (long)((idle - (double)(time_t)idle) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void step_worker(worker *w) {
    po_dp *dp = w->dp;
    po_status st = PO_OK;
    copy_rows(dp->x, w->first_row, w->rows, w->model->x, w->exec);
    copy_rows(dp->y, w->first_row, w->rows, w->model->y, w->exec);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = forward_backward(w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    w->compute_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (!st)
        w->loss = *(const float *)po_exec_output(w->exec, w->model->loss);
    else
        fail_worker(w, st);
    /* The buckets the others have finished while this worker computed, then its share of the
     * rest (a failed step reduces garbage, harmlessly: the optimizer does not run). */
    double r0 = -1.0, r1 = 0.0;
    emulate_slowness(w, reduce_buckets(w, &r0, &r1));
    /* Every worker goes through the barrier even after an error, so none is left waiting. */
    pthread_barrier_wait(&dp->barrier);
    bool ok = true;
    for (int i = 0; i < dp->k; i++)
        ok = ok && dp->w[i].status == PO_OK;
    double o0 = po_trace_now();
    if (ok && (st = po__optim_apply(dp->w[0].exec, dp->opt, dp->opt_first, w->index))) fail_worker(w, st);
    emulate_slowness(w, po_trace_now() - o0);
    if (po_trace_recording(dp->trace)) {
        /* Each worker reads its buckets of every other worker's gradients: a flow from each. */
        for (int i = 0; r0 >= 0.0 && i < dp->k; i++)
            if (i != w->index) po_trace_flow(dp->trace, i, w->index, "gradients", r0, r1);
        po_trace_slice(dp->trace, w->index, "optimizer", "optimizer", o0, po_trace_now());
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    po_dp *dp = w->dp;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&dp->lock);
        while (!dp->quit && dp->generation == seen)
            pthread_cond_wait(&dp->go, &dp->lock);
        if (dp->quit) {
            pthread_mutex_unlock(&dp->lock);
            return NULL;
        }
        seen = dp->generation;
        pthread_mutex_unlock(&dp->lock);
        step_worker(w);
        pthread_mutex_lock(&dp->lock);
        if (++dp->finished == dp->k) pthread_cond_signal(&dp->done);
        pthread_mutex_unlock(&dp->lock);
    }
}

static po_status pin(worker *w) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = w->first_core; c < w->first_core + w->n_cores; c++)
        CPU_SET(c, &set);
    if (pthread_setaffinity_np(w->thread, sizeof set, &set) != 0)
        return po_fail(PO_ERR_INVALID_ARG, "cannot pin worker %d to cores %d-%d", w->index, w->first_core,
                       w->first_core + w->n_cores - 1);
    return PO_OK;
}

/* Rows per worker from the shares (even when all are 0): rounded so they add up to the batch,
 * each at least one. */
static po_status split_rows(po_dp *dp, const po_trainer_opts *opts) {
    double total = 0.0;
    for (int i = 0; i < dp->k; i++)
        total += opts->workers[i].share;
    int64_t given = 0;
    for (int i = 0; i < dp->k; i++) {
        double share = total > 0.0 ? opts->workers[i].share / total : 1.0 / dp->k;
        dp->w[i].rows = (int64_t)llround(share * (double)dp->batch);
        given += dp->w[i].rows;
    }
    dp->w[dp->k - 1].rows += dp->batch - given; /* rounding leftovers to the last worker */
    int64_t first = 0;
    for (int i = 0; i < dp->k; i++) {
        if (dp->w[i].rows < 1)
            return po_fail(PO_ERR_INVALID_ARG, "batch %lld is too small to give each of %d workers a sample",
                           (long long)dp->batch, dp->k);
        dp->w[i].first_row = first;
        dp->w[i].weight = (double)dp->w[i].rows / (double)dp->batch;
        first += dp->w[i].rows;
    }
    return PO_OK;
}

/* Shares worker 0's optimizer updates out by element, in proportion to the workers' rows (a
 * worker's rows follow its measured speed), runtime/optim_split.h. */
static po_status share_optimizer(po_dp *dp) {
    double shares[PO__DP_MAX_WORKERS];
    for (int k = 0; k < dp->k; k++)
        shares[k] = dp->w[k].weight;
    free(dp->opt), free(dp->opt_first);
    return po__optim_split_exec(dp->w[0].exec, NULL, 0, shares, dp->k, &dp->opt, &dp->opt_first);
}

/* Builds worker w's model for its rows and its executor (worker 0: also the optimizer and,
 * when it has none yet, the shared parameter storage initialised from seed). */
static po_status build_worker(po_dp *dp, worker *w, uint64_t seed) {
    po_status st = po_model_build(dp->spec, w->rows, &w->model);
    if (!st) st = po_graph_backward(w->model->graph, w->model->loss);
    if (!st && w->index == 0) st = po_graph_add_optimizer(w->model->graph, dp->optim);
    if (!st && !w->params) {
        st = po_params_new(w->model->graph, &w->params);
        if (!st) po_params_init(w->params, seed);
    }
    if (!st) st = po_exec_new(w->model->graph, w->params, &w->exec);
    if (!st) st = po_exec_set_slowdown(w->exec, w->slowdown);
    if (!st) po_exec_set_trace(w->exec, dp->trace, w->index);
    return st;
}

po_status po__dp_new(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                     const po_trainer_opts *opts, po_dp **out) {
    *out = NULL;
    po_dp *dp = calloc(1, sizeof *dp);
    if (!dp) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    dp->k = opts->n_workers;
    dp->batch = batch;
    dp->optim_copy = *o;
    dp->optim = &dp->optim_copy;
    dp->rebalance = opts->rebalance;
    po__balance_init(&dp->bal, dp->k);
    snprintf(dp->spec, sizeof dp->spec, "%s", spec);
    dp->w = calloc((size_t)dp->k, sizeof *dp->w);
    pthread_mutex_init(&dp->lock, NULL);
    pthread_cond_init(&dp->go, NULL);
    pthread_cond_init(&dp->done, NULL);
    pthread_barrier_init(&dp->barrier, NULL, (unsigned)dp->k);
    po_status st = !dp->w                       ? po_fail(PO_ERR_NO_MEMORY, "out of memory")
                   : dp->k > PO__DP_MAX_WORKERS ? po_fail(PO_ERR_INVALID_ARG, "at most %d workers", PO__DP_MAX_WORKERS)
                                                : split_rows(dp, opts);
    for (int i = 0; i < dp->k && !st; i++) {
        worker *w = &dp->w[i];
        w->dp = dp;
        w->index = i;
        w->first_core = opts->workers[i].first_core;
        w->n_cores = opts->workers[i].n_cores > 0 ? opts->workers[i].n_cores : 1;
        w->slowdown = 1.0f;
        if (i == 0) {
            /* Worker 0's graph carries the optimizer, so its storage is made from it. */
            st = build_worker(dp, w, seed);
        } else {
            st = po_params_new_replica(dp->w[0].params, &w->params);
            if (!st) st = build_worker(dp, w, seed);
        }
    }
    if (!st) st = share_optimizer(dp);
    if (!st) st = po__dp_buckets_plan(dp->w[0].model->graph, dp->w[0].params, dp->k, &dp->bk);
    for (int i = 0; i < dp->k && !st; i++) {
        if (pthread_create(&dp->w[i].thread, NULL, worker_main, &dp->w[i]) != 0) {
            st = po_fail(PO_ERR_NO_MEMORY, "cannot start worker thread %d", i);
            break;
        }
        dp->w[i].started = true;
        st = pin(&dp->w[i]);
    }
    if (st) {
        po__dp_free(dp);
        return st;
    }
    *out = dp;
    return PO_OK;
}

void po__dp_free(po_dp *dp) {
    if (!dp) return;
    pthread_mutex_lock(&dp->lock);
    dp->quit = true;
    pthread_cond_broadcast(&dp->go);
    pthread_mutex_unlock(&dp->lock);
    for (int i = 0; dp->w && i < dp->k; i++)
        if (dp->w[i].started) pthread_join(dp->w[i].thread, NULL);
    /* Replicas and their executors go before the shared storage they point into. */
    for (int i = dp->k - 1; dp->w && i >= 0; i--) {
        po_exec_free(dp->w[i].exec);
        po_params_free(dp->w[i].params);
        po_model_free(dp->w[i].model);
    }
    po__dp_buckets_free(&dp->bk);
    free(dp->opt);
    free(dp->opt_first);
    pthread_barrier_destroy(&dp->barrier);
    pthread_cond_destroy(&dp->go);
    pthread_cond_destroy(&dp->done);
    pthread_mutex_destroy(&dp->lock);
    free(dp->w);
    free(dp);
}

/* Each worker's compute time as a + b * rows, through its last two windows' measurements (at
 * different row counts); false when some worker has no such pair or the fit is not a plausible
 * cost (time falling with rows, or a negative fixed cost beyond noise). */
static bool affine_fit(const po_dp *dp, const double *median_s, double *a, double *b) {
    for (int i = 0; i < dp->k; i++) {
        const worker *w = &dp->w[i];
        /* Rows a few apart make the slope mostly timing noise. */
        int64_t apart = llabs(w->rows - w->fit_rows);
        if (w->fit_rows <= 0 || apart < 4 || (double)apart < 0.08 * (double)dp->batch) return false;
        b[i] = (median_s[i] - w->fit_s) / (double)(w->rows - w->fit_rows);
        a[i] = median_s[i] - b[i] * (double)w->rows;
        if (!(b[i] > 0.0) || a[i] < -0.25 * median_s[i]) return false;
    }
    return true;
}

/* Re-splits the batch toward equal finish times and rebuilds the workers' graphs for their new
 * row counts; the parameters, optimizer state and step count carry over.
 * - With two windows' measurements at different row counts for every worker, each worker's time
 *   is fitted as fixed cost + per-row cost and the split goes straight to where the fitted times
 *   are equal: one more re-split after the first usually lands on the balance.
 * - Otherwise (the first re-split, rows too close for a slope, or a change of speed making the
 *   fit implausible) each worker's target rows are proportional to its measured speed (rows per
 *   second): the split moves there when the times are more than PO__BALANCE_FAR_APART apart, else halfway,
 *   so that timing noise does not make it oscillate. Time is not proportional to rows (fixed
 *   per-step costs), so the target lies between the split and the balance. */
static po_status resplit(po_dp *dp, const double *median_s) {
    int64_t given = 0, moved = 0;
    int64_t rows[PO__DP_MAX_WORKERS];
    double a[PO__DP_MAX_WORKERS], b[PO__DP_MAX_WORKERS];
    bool fitted = affine_fit(dp, median_s, a, b);
    if (fitted) {
        double inv = 0.0, lead = 0.0; /* equal finish time T: sum over i of (T - a_i) / b_i = batch */
        for (int i = 0; i < dp->k; i++)
            inv += 1.0 / b[i], lead += a[i] / b[i];
        double T = ((double)dp->batch + lead) / inv;
        for (int i = 0; i < dp->k; i++) {
            rows[i] = llround((T - a[i]) / b[i]);
            if (rows[i] < 1) rows[i] = 1;
            given += rows[i];
        }
    } else {
        double speed_total = 0.0, fastest = INFINITY, slowest = 0.0;
        for (int i = 0; i < dp->k; i++) {
            speed_total += (double)dp->w[i].rows / median_s[i];
            fastest = fmin(fastest, median_s[i]);
            slowest = fmax(slowest, median_s[i]);
        }
        /* Far apart (a device slowed down, a first split far off): all the way to the target,
         * which with fixed per-step costs stops short of the balance, never past it. */
        double step = slowest > PO__BALANCE_FAR_APART * fastest ? 1.0 : 0.5;
        for (int i = 0; i < dp->k; i++) {
            double target = (double)dp->batch * ((double)dp->w[i].rows / median_s[i]) / speed_total;
            rows[i] = llround((double)dp->w[i].rows + step * (target - (double)dp->w[i].rows));
            if (rows[i] < 1) rows[i] = 1;
            given += rows[i];
        }
    }
    int biggest = 0;
    for (int i = 1; i < dp->k; i++)
        if (rows[i] > rows[biggest]) biggest = i;
    rows[biggest] += dp->batch - given;
    for (int i = 0; i < dp->k; i++)
        moved += llabs(rows[i] - dp->w[i].rows);
    /* Moving a row or two (or under 2% of the batch) is within the noise: not worth rebuilding. */
    if (moved <= 2 || (double)moved < 0.02 * (double)dp->batch || rows[biggest] < 1) return PO_OK;
    po__balance_moved(&dp->bal, rows[0] > dp->w[0].rows ? 1 : -1);
    int64_t steps = po_exec_steps(dp->w[0].exec), first = 0;
    po_status st = PO_OK;
    for (int i = 0; i < dp->k && !st; i++) {
        worker *w = &dp->w[i];
        w->fit_rows = w->rows;
        w->fit_s = median_s[i];
        po_exec_free(w->exec);
        po_model_free(w->model);
        w->exec = NULL;
        w->model = NULL;
        w->rows = rows[i];
        w->first_row = first;
        w->weight = (double)rows[i] / (double)dp->batch;
        first += rows[i];
        st = build_worker(dp, w, 0);
    }
    if (!st) st = share_optimizer(dp);
    po__dp_buckets_free(&dp->bk);
    if (!st) st = po__dp_buckets_plan(dp->w[0].model->graph, dp->w[0].params, dp->k, &dp->bk);
    if (st) return po_fail(st, "re-splitting the batch: %s", po_last_error());
    po_exec_set_steps(dp->w[0].exec, steps);
    dp->rebalances++;
    return PO_OK;
}

/* Re-splits when the workers' median compute times over a window drift apart
 * (runtime/balance.h). */
static po_status maybe_rebalance(po_dp *dp) {
    double busy_s[PO__DP_MAX_WORKERS], median_s[PO__DP_MAX_WORKERS];
    for (int i = 0; i < dp->k; i++)
        busy_s[i] = dp->w[i].compute_s;
    return po__balance_step(&dp->bal, busy_s, median_s) ? resplit(dp, median_s) : PO_OK;
}

po_status po__dp_set_slowdown(po_dp *dp, int i, float factor) {
    if (i < 0 || i >= dp->k) return po_fail(PO_ERR_INVALID_ARG, "no worker %d", i);
    po_status st = po_exec_set_slowdown(dp->w[i].exec, factor);
    if (!st) dp->w[i].slowdown = factor;
    return st;
}

void po__dp_stats(const po_dp *dp, int i, po_worker_stats *out) {
    const worker *w = &dp->w[i];
    *out = (po_worker_stats){w->rows, w->compute_s, w->weight};
}

int64_t po__dp_rebalances(const po_dp *dp) { return dp->rebalances; }

void po__dp_set_trace(po_dp *dp, po_trace *tr) {
    dp->trace = tr;
    for (int i = 0; i < dp->k; i++)
        po_exec_set_trace(dp->w[i].exec, tr, i);
}
int po__dp_workers(const po_dp *dp) { return dp->k; }

po_status po__dp_step(po_dp *dp, const po_tensor *x, const po_tensor *y, float *loss) {
    pthread_mutex_lock(&dp->lock);
    dp->x = x;
    dp->y = y;
    dp->finished = 0;
    for (int i = 0; i < dp->k; i++)
        dp->w[i].status = PO_OK;
    po__dp_buckets_reset(&dp->bk);
    dp->generation++;
    pthread_cond_broadcast(&dp->go);
    while (dp->finished < dp->k)
        pthread_cond_wait(&dp->done, &dp->lock);
    pthread_mutex_unlock(&dp->lock);
    double total = 0.0;
    for (int i = 0; i < dp->k; i++) {
        if (dp->w[i].status) return po_fail(dp->w[i].status, "%s", dp->w[i].error);
        total += dp->w[i].weight * (double)dp->w[i].loss;
    }
    po_exec *ex0 = dp->w[0].exec;
    po_exec_set_steps(ex0, po_exec_steps(ex0) + 1);
    if (loss) *loss = (float)total;
    return dp->rebalance ? maybe_rebalance(dp) : PO_OK;
}

po_params *po__dp_params(po_dp *dp) { return dp->w[0].params; }
po_exec *po__dp_exec(po_dp *dp) { return dp->w[0].exec; }
int64_t po__dp_rows(const po_dp *dp, int i) { return i >= 0 && i < dp->k ? dp->w[i].rows : 0; }

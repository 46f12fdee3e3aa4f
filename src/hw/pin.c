/* Threads pinned to cores. Measurements must run where the planner will run the work: a figure
 * taken on a thread the scheduler moves between cores measures the scheduler. */
#define _GNU_SOURCE
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"

/* Start gate: every thread pins itself, then waits until all have, so that no thread starts
 * work (a ping-pong, a timed concurrent GEMM) whose partner failed or never started. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int arrived;
    bool go, failed;
} gate;

typedef struct {
    const po_machine *m;
    int first, n; /* cores this thread may run on */
    int t;
    po__pinned_fn fn;
    void *arg;
    gate *g;
    po_status st;
    char err[256];
} worker;

static po_status pin_self(const po_machine *m, int first, int n) {
    if (!m->real) return po_fail(PO_ERR_UNSUPPORTED, "a synthetic topology has no cores to run on");
    if (first < 0 || n < 1 || first + n > m->cpu.cores)
        return po_fail(PO_ERR_RANGE, "cores %d-%d: no such cores (0-%d)", first, first + n - 1, m->cpu.cores - 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = first; c < first + n; c++)
        for (int pu = 0; pu < PO_CPU_MASK_BITS && pu < CPU_SETSIZE; pu++)
            if ((m->cores[c].pu_mask[pu / 64] >> (pu % 64)) & 1) CPU_SET(pu, &set);
    int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (e) return po_fail(PO_ERR_BACKEND, "cannot pin a thread to cores %d-%d: %s", first, first + n - 1, strerror(e));
    return PO_OK;
}

static void *trampoline(void *p) {
    worker *w = p;
    w->st = pin_self(w->m, w->first, w->n);
    if (w->st) snprintf(w->err, sizeof w->err, "%s", po_last_error());
    pthread_mutex_lock(&w->g->lock);
    w->g->arrived++;
    if (w->st) w->g->failed = true;
    pthread_cond_broadcast(&w->g->cond);
    while (!w->g->go)
        pthread_cond_wait(&w->g->cond, &w->g->lock);
    bool run = !w->g->failed;
    pthread_mutex_unlock(&w->g->lock);
    if (run) {
        omp_set_num_threads(1); /* oneDNN's OpenMP: one thread per worker, paropt owns the cores */
        w->fn(w->t, w->arg);
    }
    return NULL;
}

static po_status run_threads(const po_machine *m, int n, const int *first, const int *count, po__pinned_fn fn,
                             void *arg) {
    worker *w = calloc((size_t)n, sizeof *w);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!w || !th) {
        free(w);
        free(th);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for %d threads", n);
    }
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};
    int started = 0;
    for (int t = 0; t < n; t++)
        w[t] = (worker){m, first[t], count[t], t, fn, arg, &g, PO_OK, ""};
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, trampoline, &w[started]) != 0) break;
    pthread_mutex_lock(&g.lock);
    while (g.arrived < started)
        pthread_cond_wait(&g.cond, &g.lock);
    if (started < n) g.failed = true;
    g.go = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&g.lock);
    pthread_cond_destroy(&g.cond);
    po_status st =
        started < n ? po_fail(PO_ERR_BACKEND, "cannot start measurement thread %d of %d", started + 1, n) : PO_OK;
    for (int t = 0; t < started && !st; t++)
        if (w[t].st) st = po_fail(w[t].st, "%s", w[t].err);
    free(w);
    free(th);
    return st;
}

po_status po__run_pinned(const po_machine *m, const int *cores, int n, po__pinned_fn fn, void *arg) {
    int *ones = malloc((size_t)n * sizeof *ones);
    if (!ones) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int t = 0; t < n; t++)
        ones[t] = 1;
    po_status st = run_threads(m, n, cores, ones, fn, arg);
    free(ones);
    return st;
}

po_status po__run_per_core(const po_machine *m, int first, int n, po__pinned_fn fn, void *arg) {
    int *cores = malloc((size_t)n * sizeof *cores);
    if (!cores) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int t = 0; t < n; t++)
        cores[t] = first + t;
    po_status st = po__run_pinned(m, cores, n, fn, arg);
    free(cores);
    return st;
}

po_status po__run_on_group(const po_machine *m, int first, int n, po__pinned_fn fn, void *arg) {
    return run_threads(m, 1, &first, &n, fn, arg);
}

po_status po__run_on_groups(const po_machine *m, const int *first, const int *count, int n, po__pinned_fn fn,
                            void *arg) {
    return run_threads(m, n, first, count, fn, arg);
}

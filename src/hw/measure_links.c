/* Transfers between two core groups through shared memory: bandwidth is a buffer written on a
 * thread pinned to the first group and copied by a thread pinned to the second (what a pipeline
 * stage handing activations to the next does), latency half the round trip of a ping-pong on
 * one cache line (what a synchronisation costs), and the reclaim cost: how much longer the
 * second thread takes to rewrite a buffer the first has just read than one it alone touched
 * (what data-parallel replicas pay to update parameters that every replica read: on the
 * 2-core Zen 5 VM two threads each updating half of a 4 MiB weight with Adam took 0.74-1.17 ns
 * an element when each had read all of it before, 0.35-0.41 when each had read only its half:
 * bench/bench_reclaim), and the wake-up: half the round trip of a hand-off between threads that
 * block on a condition variable while they wait, after each had been idle (what handing a
 * training step to runner threads and being woken at its end costs: on the Zen 5 VM, 41 us one
 * way, against 0.23 for a spinning ping-pong). One thread on each side, on the group's first
 * core. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/hw_internal.h"

/* The reclaim buffer: a layer's weight, larger than a core's L2. Rounds: medians of each kind,
 * after a warm-up round (page faults). */
#define RECLAIM_BYTES  (4u << 20)
#define RECLAIM_ROUNDS 9
/* Wake-up round trips (medians), each after WAKE_IDLE_S of idling: longer than the scheduler
 * keeps a blocked thread's core polling, as between two training steps. */
#define WAKE_ROUNDS_QUICK 40
#define WAKE_ROUNDS_FULL  200
#define WAKE_IDLE_S       200e-6

typedef struct {
    size_t bytes;
    char *src, *dst; /* malloc'd untouched: first touch by the writer (src) and reader (dst) */
    float *shared;   /* RECLAIM_BYTES, first touched by the second thread */
    int rounds, pingpongs;
    double budget_s; /* for the ping-pong */
    _Alignas(64) atomic_int turn;
    _Alignas(64) atomic_int ball;
    _Alignas(64) atomic_int phase;
    _Alignas(64) double best_gbs;
    double latency_us;
    double alone_s[RECLAIM_ROUNDS], after_read_s[RECLAIM_ROUNDS];
    pthread_mutex_t wake_lock;
    pthread_cond_t wake_cv;
    int wake_turn, wake_rounds;
    double wake_rt[WAKE_ROUNDS_FULL];
    volatile char sink;
    volatile float fsink;
} link_job;

static void spin_until(atomic_int *v, int want) {
    while (atomic_load_explicit(v, memory_order_acquire) != want) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* Read-modify-write of every element, as an optimizer's update of a parameter is. */
static double rewrite(float *x, size_t n) {
    double t0 = po__hw_now();
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] * 0.5f + 0.25f;
    return po__hw_now() - t0;
}

/* Round after round, the second thread rewrites the buffer it alone touched (timed), the first
 * reads all of it, and the second rewrites it again (timed). */
static void reclaim_rounds(int t, link_job *j) {
    size_t n = RECLAIM_BYTES / sizeof(float);
    for (int r = 0; r <= RECLAIM_ROUNDS; r++) {
        if (t == 1) {
            if (r == 0) memset(j->shared, 0, RECLAIM_BYTES);
            double alone = rewrite(j->shared, n);
            atomic_store_explicit(&j->phase, 2 * r + 1, memory_order_release);
            spin_until(&j->phase, 2 * r + 2);
            double after = rewrite(j->shared, n);
            if (r > 0) j->alone_s[r - 1] = alone, j->after_read_s[r - 1] = after;
        } else {
            spin_until(&j->phase, 2 * r + 1);
            float s = 0.0f;
            for (size_t i = 0; i < n; i += 16) /* a line at a time: the line is what moves */
                s += j->shared[i];
            j->fsink = s;
            atomic_store_explicit(&j->phase, 2 * r + 2, memory_order_release);
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Round after round, the first thread idles, then wakes the second (blocked on the condition
 * variable) and blocks until the second wakes it back: the round trip, timed by the first. */
static void wake_rounds(int t, link_job *j) {
    for (int r = 0; r <= j->wake_rounds; r++) { /* round 0: a warm-up */
        if (t == 0) {
            struct timespec idle = {0, (long)(WAKE_IDLE_S * 1e9)};
            nanosleep(&idle, NULL);
            double t0 = po__hw_now();
            pthread_mutex_lock(&j->wake_lock);
            j->wake_turn = 2 * r + 1;
            pthread_cond_broadcast(&j->wake_cv);
            while (j->wake_turn != 2 * r + 2)
                pthread_cond_wait(&j->wake_cv, &j->wake_lock);
            pthread_mutex_unlock(&j->wake_lock);
            if (r > 0) j->wake_rt[r - 1] = po__hw_now() - t0;
        } else {
            pthread_mutex_lock(&j->wake_lock);
            while (j->wake_turn != 2 * r + 1)
                pthread_cond_wait(&j->wake_cv, &j->wake_lock);
            j->wake_turn = 2 * r + 2;
            pthread_cond_broadcast(&j->wake_cv);
            pthread_mutex_unlock(&j->wake_lock);
        }
    }
}

static void link_thread(int t, void *arg) {
    link_job *j = arg;
    /* Round 0 is a warm-up: page faults on both buffers. */
    for (int r = 0; r <= j->rounds; r++) {
        if (t == 0) {
            memset(j->src, r & 0xff, j->bytes);
            atomic_store_explicit(&j->turn, 2 * r + 1, memory_order_release);
            spin_until(&j->turn, 2 * r + 2);
        } else {
            spin_until(&j->turn, 2 * r + 1);
            double t0 = po__hw_now();
            memcpy(j->dst, j->src, j->bytes);
            double dt = po__hw_now() - t0;
            j->sink = j->dst[j->bytes / 2];
            if (r > 0 && dt > 0 && j->bytes / dt * 1e-9 > j->best_gbs) j->best_gbs = j->bytes / dt * 1e-9;
            atomic_store_explicit(&j->turn, 2 * r + 2, memory_order_release);
        }
    }
    reclaim_rounds(t, j);
    wake_rounds(t, j);
    /* Ping-pong until the count or the time budget runs out (on a loaded machine each handoff can
     * wait for a scheduler time slice); the writer ends it by sending -1. */
    int warm = j->pingpongs / 10 + 1;
    double t0 = 0;
    for (int i = 0;; i++) {
        if (t == 0) {
            if (i == warm) t0 = po__hw_now();
            if (i > warm && (i == warm + j->pingpongs || ((i & 63) == 0 && po__hw_now() - t0 > j->budget_s))) {
                j->latency_us = (po__hw_now() - t0) / (i - warm) / 2 * 1e6;
                atomic_store_explicit(&j->ball, -1, memory_order_release);
                break;
            }
            atomic_store_explicit(&j->ball, 2 * i + 1, memory_order_release);
            spin_until(&j->ball, 2 * i + 2);
        } else {
            int v;
            while ((v = atomic_load_explicit(&j->ball, memory_order_acquire)) != 2 * i + 1 && v != -1) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            }
            if (v == -1) break;
            atomic_store_explicit(&j->ball, 2 * i + 2, memory_order_release);
        }
    }
}

po_status po__measure_cpu_link(const po_machine *m, const po_device *from, const po_device *to,
                               const po__measure_cfg *c, po_link_perf *l) {
    link_job *j = calloc(1, sizeof *j);
    if (!j) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    j->bytes = c->link_bytes > 0 ? (size_t)c->link_bytes : (16u << 20);
    j->rounds = c->level == PO_BENCH_FULL ? 10 : 4;
    /* A round trip costs well under a microsecond between cores: thousands fit in a few ms. */
    j->pingpongs = c->level == PO_BENCH_FULL ? 20000 : 2000;
    if (c->link_bytes > 0 && c->link_bytes < (1 << 20)) j->pingpongs = 200;
    j->budget_s = c->point_seconds;
    atomic_init(&j->turn, 0);
    atomic_init(&j->ball, 0);
    atomic_init(&j->phase, 0);
    j->wake_rounds = c->level == PO_BENCH_FULL ? WAKE_ROUNDS_FULL : WAKE_ROUNDS_QUICK;
    pthread_mutex_init(&j->wake_lock, NULL);
    pthread_cond_init(&j->wake_cv, NULL);
    j->src = malloc(j->bytes);
    j->dst = malloc(j->bytes);
    j->shared = malloc(RECLAIM_BYTES);
    po_status st = j->src && j->dst && j->shared
                       ? PO_OK
                       : po_fail(PO_ERR_NO_MEMORY, "out of memory for a %zu-byte link buffer", j->bytes);
    po__progress(c, "link %s -> %s: bandwidth (%zu MiB), reclaim, latency and wake-up", from->id, to->id,
                 j->bytes >> 20);
    int cores[2] = {from->first_core, to->first_core};
    if (!st) st = po__run_pinned(m, cores, 2, link_thread, j);
    if (!st) {
        snprintf(l->from, sizeof l->from, "%s", from->id);
        snprintf(l->to, sizeof l->to, "%s", to->id);
        l->bandwidth_gbs = j->best_gbs;
        l->latency_us = j->latency_us;
        qsort(j->alone_s, RECLAIM_ROUNDS, sizeof(double), cmp_double);
        qsort(j->after_read_s, RECLAIM_ROUNDS, sizeof(double), cmp_double);
        double extra = j->after_read_s[RECLAIM_ROUNDS / 2] - j->alone_s[RECLAIM_ROUNDS / 2];
        l->reclaim_ns_per_byte = extra > 0.0 ? extra / RECLAIM_BYTES * 1e9 : 0.0;
        qsort(j->wake_rt, (size_t)j->wake_rounds, sizeof(double), cmp_double);
        l->wake_us = j->wake_rt[j->wake_rounds / 2] / 2 * 1e6;
        l->measured = true;
    }
    pthread_cond_destroy(&j->wake_cv);
    pthread_mutex_destroy(&j->wake_lock);
    free(j->shared);
    free(j->src);
    free(j->dst);
    free(j);
    return st;
}

/* Memory bandwidth (a STREAM-style triad over a working set well beyond the last-level cache)
 * and element-wise throughput (on a cache-resident array: the rate an element-wise kernel
 * reaches when its operands are in cache). A core group runs one stream per core at once. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "hw/hw_internal.h"

typedef struct {
    int64_t triad_elems, ew_elems; /* per thread */
    int rounds;
    double point_seconds;
    pthread_barrier_t barrier;
    int reps;
    double t_start;
    double best_triad_gbs, best_ew_gelems;
    int n_threads;
    volatile int failed;
    volatile float sink; /* keeps the loops' results observable */
} mem_job;

static void triad(float *restrict a, const float *restrict b, const float *restrict c, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
}

static void axpb(float *restrict y, const float *restrict x, float a, float b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = a * x[i] + b;
}

/* Times `rounds` rounds of `reps` calls of kernel k on all threads at once; thread 0 keeps the
 * best rate (units per second, units = per-call amount times threads). */
typedef void (*kernel_fn)(float *, float *, float *, int64_t, int);

static void k_triad(float *a, float *b, float *c, int64_t n, int r) { triad(a, b, c, 1.0f + (float)(r & 1), n); }
static void k_ew(float *a, float *b, float *c, int64_t n, int r) {
    (void)c;
    axpb(b, a, 0.5f, (float)(r & 3), n);
}

static double timed(mem_job *j, int t, kernel_fn k, float *a, float *b, float *c, int64_t n, double amount) {
    double best = 0;
    pthread_barrier_wait(&j->barrier);
    double w0 = po__hw_now();
    k(a, b, c, n, 0); /* warm-up; also chooses the repetitions */
    double one = po__hw_now() - w0;
    if (t == 0) j->reps = one > 0 ? (int)fmin(fmax(j->point_seconds / j->rounds / one, 2.0), 1e7) : 2;
    for (int r = 0; r < j->rounds; r++) {
        pthread_barrier_wait(&j->barrier);
        if (t == 0) j->t_start = po__hw_now();
        for (int i = 0; i < j->reps; i++)
            k(a, b, c, n, i);
        pthread_barrier_wait(&j->barrier);
        if (t == 0) {
            double rate = amount * j->reps * j->n_threads / (po__hw_now() - j->t_start);
            if (rate > best) best = rate;
        }
    }
    if (t == 0) j->sink = a[n / 2] + b[n / 3]; /* one writer: the threads' stores would race */
    return best;
}

static void mem_thread(int t, void *arg) {
    mem_job *j = arg;
    int64_t n = j->triad_elems;
    float *a = po_aligned_calloc((size_t)n * sizeof(float)), *b = po_aligned_calloc((size_t)n * sizeof(float)),
          *c = po_aligned_calloc((size_t)n * sizeof(float));
    float *x = po_aligned_calloc((size_t)j->ew_elems * sizeof(float)),
          *y = po_aligned_calloc((size_t)j->ew_elems * sizeof(float));
    bool ok = a && b && c && x && y;
    if (!ok) {
        j->failed = 1;
        /* Every thread must still pass every barrier: run on a one-element stand-in. */
        n = 1;
    }
    float spare[3] = {0, 0, 0};
    float *ta = ok ? a : &spare[0], *tb = ok ? b : &spare[1], *tc = ok ? c : &spare[2];
    /* First touch on this thread: the pages land on its NUMA node, as a worker's buffers would. */
    for (int64_t i = 0; ok && i < n; i++) {
        a[i] = 0.0f;
        b[i] = (float)(i & 7);
        c[i] = 0.5f;
    }
    double triad_rate = timed(j, t, k_triad, ta, tb, tc, n, 12.0 * (double)n);
    int64_t ne = ok ? j->ew_elems : 1;
    for (int64_t i = 0; ok && i < ne; i++)
        x[i] = (float)(i & 15);
    double ew_rate = timed(j, t, k_ew, ok ? x : &spare[0], ok ? y : &spare[1], NULL, ne, (double)ne);
    if (t == 0) {
        j->best_triad_gbs = triad_rate * 1e-9;
        j->best_ew_gelems = ew_rate * 1e-9;
    }
    po_aligned_free(a);
    po_aligned_free(b);
    po_aligned_free(c);
    po_aligned_free(x);
    po_aligned_free(y);
}

po_status po__measure_memory(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p) {
    mem_job *j = calloc(1, sizeof *j);
    if (!j) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    /* Four times the last-level cache the group can reach, at least 64 MiB: every pass streams
     * from DRAM. */
    int64_t llc = m->cpu.l3_bytes > 0 ? m->cpu.l3_bytes : m->cpu.l2_bytes;
    int64_t total = c->stream_bytes > 0 ? c->stream_bytes : (4 * llc > (64ll << 20) ? 4 * llc : (64ll << 20));
    j->triad_elems = total / 12 / d->n_cores;
    if (j->triad_elems < 64) j->triad_elems = 64;
    /* Element-wise on half the L2 (two arrays): cache-resident, so the figure is the core's. */
    int64_t l2 = m->cpu.l2_bytes > 0 ? m->cpu.l2_bytes : (256 << 10);
    j->ew_elems = l2 / 4 / 4;
    if (c->stream_bytes > 0 && j->ew_elems > c->stream_bytes / 8) j->ew_elems = c->stream_bytes / 8;
    if (j->ew_elems < 64) j->ew_elems = 64;
    j->rounds = c->level == PO_BENCH_FULL ? 5 : 3;
    j->point_seconds = c->point_seconds;
    j->n_threads = d->n_cores;
    if (pthread_barrier_init(&j->barrier, NULL, (unsigned)d->n_cores) != 0) {
        free(j);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for a barrier");
    }
    po__progress(c, "%s: memory bandwidth (triad over %lld MiB) and element-wise throughput", d->id,
                 (long long)(12 * j->triad_elems * d->n_cores >> 20));
    po_status st = po__run_per_core(m, d->first_core, d->n_cores, mem_thread, j);
    if (!st && j->failed)
        st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for the %lld-byte bandwidth test", d->id,
                     (long long)(12 * j->triad_elems * d->n_cores));
    if (!st) {
        p->mem_bandwidth_gbs = j->best_triad_gbs;
        p->elementwise_gelems = j->best_ew_gelems;
    }
    pthread_barrier_destroy(&j->barrier);
    free(j);
    return st;
}

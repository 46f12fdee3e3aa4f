/* GEMM throughput of a device at several sizes: the efficiency curve the cost model reads
 * (small products run far below peak), through the project's own GEMM entry point, so the
 * figures are those of the library the executor will call. A core group runs one product per
 * core at once and reports the aggregate, which is what the group delivers when its cores
 * share the work (and share caches and memory bandwidth while doing it). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "hw/hw_internal.h"

typedef struct {
    po_gemm_point shape[PO_GEMM_CURVE_MAX];
    int n_shapes;
    int rounds;
    double point_seconds;
    pthread_barrier_t barrier;
    int reps;       /* chosen by thread 0 from its warm-up call, read after a barrier */
    double t_start; /* thread 0 */
    double best[PO_GEMM_CURVE_MAX];
    volatile int failed; /* a GEMM call failed (not expected: the sizes are valid) */
    int n_threads;
} gemm_job;

static void gemm_thread(int t, void *arg) {
    gemm_job *j = arg;
    int64_t max_a = 0, max_b = 0, max_c = 0;
    for (int s = 0; s < j->n_shapes; s++) {
        const po_gemm_point *p = &j->shape[s];
        if (p->m * p->k > max_a) max_a = p->m * p->k;
        if (p->k * p->n > max_b) max_b = p->k * p->n;
        if (p->m * p->n > max_c) max_c = p->m * p->n;
    }
    float *A = po_aligned_calloc((size_t)max_a * sizeof(float));
    float *B = po_aligned_calloc((size_t)max_b * sizeof(float));
    float *C = po_aligned_calloc((size_t)max_c * sizeof(float));
    if (!A || !B || !C) j->failed = 1;
    /* Small non-zero values: denormals or NaNs would change the speed of some kernels. */
    for (int64_t i = 0; A && i < max_a; i++)
        A[i] = (float)((i * 7 + t) % 13) * 0.01f;
    for (int64_t i = 0; B && i < max_b; i++)
        B[i] = (float)((i * 5 + t) % 11) * 0.01f;
    for (int s = 0; s < j->n_shapes; s++) {
        const po_gemm_point *p = &j->shape[s];
        pthread_barrier_wait(&j->barrier);
        double w0 = po__hw_now();
        if (!j->failed && po__sgemm(false, false, p->m, p->n, p->k, 1.0f, A, p->k, B, p->n, 0.0f, C, p->n))
            j->failed = 1;
        double one = po__hw_now() - w0;
        if (t == 0) {
            /* Enough calls to fill the round's share of the time, at least two. */
            double per_round = j->point_seconds / j->rounds;
            j->reps = one > 0 ? (int)fmin(fmax(per_round / one, 2.0), 1e6) : 2;
        }
        for (int r = 0; r < j->rounds; r++) {
            pthread_barrier_wait(&j->barrier);
            if (t == 0) j->t_start = po__hw_now();
            for (int i = 0; i < j->reps && !j->failed; i++)
                if (po__sgemm(false, false, p->m, p->n, p->k, 1.0f, A, p->k, B, p->n, 0.0f, C, p->n)) j->failed = 1;
            pthread_barrier_wait(&j->barrier);
            if (t == 0) {
                double dt = po__hw_now() - j->t_start;
                double gflops = 2.0 * (double)p->m * (double)p->n * (double)p->k * j->reps * j->n_threads / dt * 1e-9;
                if (gflops > j->best[s]) j->best[s] = gflops;
            }
        }
    }
    po_aligned_free(A);
    po_aligned_free(B);
    po_aligned_free(C);
}

po_status po__measure_gemm(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p) {
    gemm_job *j = calloc(1, sizeof *j);
    if (!j) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    int64_t top = c->gemm_max > 0 ? c->gemm_max : (c->level == PO_BENCH_FULL ? 2048 : 1024);
    for (int64_t s = 64; s <= top && j->n_shapes < PO_GEMM_CURVE_MAX - 1; s *= 2)
        j->shape[j->n_shapes++] = (po_gemm_point){s, s, s, 0};
    if (top < 64) j->shape[j->n_shapes++] = (po_gemm_point){top, top, top, 0};
    /* Tall-skinny: many rows against a narrow weight (a batch of activations times a small
     * projection), the shape where per-call packing costs show. */
    int64_t tall = top >= 1024 ? 8192 : 8 * top, narrow = top >= 1024 ? 64 : (top / 16 > 4 ? top / 16 : 4),
            depth = top >= 1024 ? 512 : (top / 2 > 4 ? top / 2 : 4);
    j->shape[j->n_shapes++] = (po_gemm_point){tall, narrow, depth, 0};
    j->rounds = c->level == PO_BENCH_FULL ? 5 : 3;
    j->point_seconds = c->point_seconds;
    j->n_threads = d->n_cores;
    if (pthread_barrier_init(&j->barrier, NULL, (unsigned)d->n_cores) != 0) {
        free(j);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for a barrier");
    }
    po__progress(c, "%s: GEMM, %d sizes up to %lld^3", d->id, j->n_shapes - 1, (long long)top);
    po_status st = po__run_per_core(m, d->first_core, d->n_cores, gemm_thread, j);
    if (!st && j->failed)
        st = po_fail(PO_ERR_BACKEND, "%s: GEMM measurement failed (out of memory, or the GEMM library failed)", d->id);
    if (!st) {
        p->n_gemm = j->n_shapes;
        for (int s = 0; s < j->n_shapes; s++) {
            p->gemm[s] = j->shape[s];
            p->gemm[s].gflops = j->best[s];
        }
        /* Headline: the 1024^3 point, else the largest square measured. */
        p->gemm_gflops = NAN;
        for (int s = 0; s < j->n_shapes; s++)
            if (j->shape[s].m == j->shape[s].n && j->shape[s].m <= 1024) p->gemm_gflops = j->best[s];
    }
    pthread_barrier_destroy(&j->barrier);
    free(j);
    return st;
}

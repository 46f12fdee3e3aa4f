/* Is `paropt devices` right about GEMM? The headline single-core figure (the 1024^3 point of the
 * efficiency curve, measured by the library on a pinned thread) against a standalone large SGEMM
 * (2048^3) called directly on the same GEMM library, on the same core, alternating in rounds so
 * that the machine's drift hits both alike. Prints every round, the medians and their ratio;
 * the issue asks for the device figure to be within 10% of the standalone one.
 *
 *     ./bench_devices [rounds] [quick|full]      (default 5 quick) */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "paropt/hw.h"
#include "paropt/paropt.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int die(const char *what) {
    fprintf(stderr, "bench_devices: %s: %s\n", what, po_last_error());
    exit(1);
}

/* The library po__sgemm picks for a 1024^3 product under the default setting. */
static po_gemm_provider library(void) { return po_gemm_default_provider(); }

/* Best-of GFLOP/s of an n^3 SGEMM straight into the library, on the calling (pinned) thread. */
static double standalone(int n, int reps) {
    float *A = po_aligned_calloc((size_t)n * n * sizeof(float)), *B = po_aligned_calloc((size_t)n * n * sizeof(float)),
          *C = po_aligned_calloc((size_t)n * n * sizeof(float));
    if (!A || !B || !C) die("out of memory");
    for (size_t i = 0; i < (size_t)n * n; i++) {
        A[i] = (float)(i % 13) * 0.01f;
        B[i] = (float)(i % 11) * 0.01f;
    }
    double best = 0;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        if (library() == PO_GEMM_OPENBLAS)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        else if (dnnl_sgemm('N', 'N', n, n, n, 1.0f, A, n, B, n, 0.0f, C, n) != dnnl_success)
            die("dnnl_sgemm");
        double t = now_s() - t0;
        if (r > 0 && 2.0 * n * n * (double)n / t * 1e-9 > best) best = 2.0 * n * n * (double)n / t * 1e-9;
    }
    po_aligned_free(A);
    po_aligned_free(B);
    po_aligned_free(C);
    return best;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    po_bench_level level = PO_BENCH_QUICK;
    if (argc > 2 && po_bench_level_parse(argv[2], &level)) die("level");
    if (rounds < 1) rounds = 1;
    po_hw_opts ho = po_hw_opts_default();
    ho.cuda_lib = ho.nvml_lib = "";
    po_machine *m;
    if (po_machine_discover(&ho, &m)) die("discover");
    po_device_list l;
    if (po_devices_parse(m, "cpu:0", &l)) die("devices");

    /* The standalone runs on this thread, pinned to core 0 as the device's measurement is. */
    const po_cpu_core *core0 = &po_machine_cpu(m)->core[0];
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int pu = 0; pu < PO_CPU_MASK_BITS && pu < CPU_SETSIZE; pu++)
        if ((core0->pu_mask[pu / 64] >> (pu % 64)) & 1) CPU_SET(pu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) die("pin");
    omp_set_num_threads(1);

    printf("machine: %s (%s), GEMM library for large products: %s; device cpu:0, %s bench\n", po_machine_cpu(m)->model,
           po_machine_cpu(m)->uarch, po_gemm_provider_name(library()), po_bench_level_name(level));
    printf("%5s %22s %24s %7s\n", "round", "device GEMM 1024^3", "standalone SGEMM 2048^3", "ratio");
    double *dev = malloc((size_t)rounds * sizeof *dev), *alone = malloc((size_t)rounds * sizeof *alone);
    for (int r = 0; r < rounds; r++) {
        po_measure_opts mo = po_measure_opts_default();
        mo.level = level;
        mo.cache_dir = ""; /* measure every round; never touch the user's cache */
        po_hw_profile *p;
        if (po_hw_profile_get(m, &l, &mo, &p)) die("measure");
        dev[r] = p->perf[0].gemm_gflops;
        po_hw_profile_free(p);
        alone[r] = standalone(2048, 3);
        printf("%5d %16.1f GFLOP/s %18.1f GFLOP/s %7.3f\n", r + 1, dev[r], alone[r], dev[r] / alone[r]);
    }
    double md = median(dev, rounds), ma = median(alone, rounds), ratio = md / ma;
    printf("median %15.1f GFLOP/s %18.1f GFLOP/s %7.3f  (%s 10%%)\n", md, ma, ratio,
           fabs(ratio - 1.0) <= 0.10 ? "within" : "NOT within");
    free(dev);
    free(alone);
    po_device_list_free(&l);
    po_machine_free(m);
    return 0;
}

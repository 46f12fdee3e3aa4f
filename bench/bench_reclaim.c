/* What updating parameters costs when another core has read them: the effect behind operator
 * split's K-cut input gradients (src/runtime/gemm_team.c, split_along_k) and the planner's
 * reclaim cost for data-parallel replicas (paropt devices' reclaim_ns_per_byte).
 *
 * Two threads pinned to two cores share a weight of N floats; each owns half of it, with its
 * own gradient and Adam moments. Round after round each computes a gradient for its half, then
 * reads either its own half of the weight ("own": x W^T cut by the weight's rows) or all of it
 * ("all": dY W cut into row blocks of C, every member reading all of W), and then applies Adam
 * to its half (timed). The kinds take turns, so load from elsewhere on the machine falls on
 * both: an "all" round, an untimed "own" round (which takes back the lines the other core read,
 * so they do not count against the next), a timed "own" round. Medians over the rounds.
 *
 *   build/bench/bench_reclaim [N floats, default 1048576 (a 1024 x 1024 weight)] [rounds, 41]
 *     [core A, 0] [core B, 1]
 *
 * On the 2-core Zen 5 VM of 2026-12-05, two runs: own 0.35-0.41 ns an element, all 0.74-1.17
 * (2.0-2.9x). Run one kind at a time, in separate processes (a first version), own was 0.18-0.28
 * and all 1.0-1.2. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_ROUNDS = 1001 };

typedef struct {
    long n, rounds;
    int cores[2];
    float *w, *m, *v, *g;
    pthread_barrier_t bar;
    double own_s[2][MAX_ROUNDS], all_s[2][MAX_ROUNDS];
    volatile float sink[2];
} job;

typedef struct {
    job *j;
    int me;
} arg;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *run(void *p) {
    const arg *a = p;
    job *j = a->j;
    int me = a->me;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(j->cores[me], &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        fprintf(stderr, "bench_reclaim: cannot pin to core %d; measuring unpinned\n", j->cores[me]);
    long half = j->n / 2, lo = me * half, hi = me ? j->n : half;
    for (long r = 0; r < 3 * j->rounds + 3; r++) {
        int kind = (int)(r % 3); /* 0: all, 1: own (untimed), 2: own; the first three warm up */
        bool all = kind == 0;
        for (long i = lo; i < hi; i++) /* this member's rows of the gradient */
            j->g[i] = (float)((i * 7 + r) % 13) * 1e-3f;
        pthread_barrier_wait(&j->bar);
        float s = 0.0f;
        for (long i = all ? 0 : lo; i < (all ? j->n : hi); i++)
            s += j->w[i];
        j->sink[me] = s;
        pthread_barrier_wait(&j->bar);
        double t0 = now_s();
        for (long i = lo; i < hi; i++) {
            float g = j->g[i];
            float m = j->m[i] = 0.9f * j->m[i] + 0.1f * g;
            float v = j->v[i] = 0.999f * j->v[i] + 0.001f * g * g;
            j->w[i] -= 1e-3f * m / (sqrtf(v) + 1e-8f);
        }
        double t = now_s() - t0;
        if (r >= 3 && kind != 1) (all ? j->all_s : j->own_s)[me][r / 3 - 1] = t;
        pthread_barrier_wait(&j->bar);
    }
    return NULL;
}

int main(int argc, char **argv) {
    static job j;
    j.n = argc > 1 ? atol(argv[1]) : 1L << 20;
    j.rounds = argc > 2 ? atol(argv[2]) : 41;
    j.cores[0] = argc > 3 ? atoi(argv[3]) : 0;
    j.cores[1] = argc > 4 ? atoi(argv[4]) : 1;
    if (j.n < 2 || j.rounds < 1 || j.rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: bench_reclaim [N floats >= 2] [rounds 1-%d] [core A] [core B]\n", MAX_ROUNDS);
        return 2;
    }
    j.w = calloc((size_t)j.n, sizeof(float));
    j.m = calloc((size_t)j.n, sizeof(float));
    j.v = calloc((size_t)j.n, sizeof(float));
    j.g = calloc((size_t)j.n, sizeof(float));
    if (!j.w || !j.m || !j.v || !j.g) {
        fprintf(stderr, "bench_reclaim: out of memory for %ld floats\n", j.n);
        return 1;
    }
    pthread_barrier_init(&j.bar, NULL, 2);
    pthread_t th[2];
    arg args[2] = {{&j, 0}, {&j, 1}};
    for (int k = 0; k < 2; k++)
        if (pthread_create(&th[k], NULL, run, &args[k]) != 0) {
            fprintf(stderr, "bench_reclaim: cannot start a thread\n");
            return 1;
        }
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    printf("Adam on half of a %ld-float weight per core (cores %d and %d), medians of %ld rounds:\n", j.n,
           j.cores[0], j.cores[1], j.rounds);
    for (int k = 0; k < 2; k++) {
        qsort(j.own_s[k], (size_t)j.rounds, sizeof(double), cmp_double);
        qsort(j.all_s[k], (size_t)j.rounds, sizeof(double), cmp_double);
        double own = j.own_s[k][j.rounds / 2], all = j.all_s[k][j.rounds / 2], per = 1e9 / (double)(j.n / 2);
        printf("  core %d: own half read %.3f ns/element, all read %.3f ns/element (%.2fx)\n", j.cores[k], own * per,
               all * per, all / own);
    }
    free(j.w), free(j.m), free(j.v), free(j.g);
    return 0;
}

/* Matrix products from several threads at once give the products one thread gives, bit for bit,
 * with each provider. Debian's serial OpenBLAS keeps no lock around its buffer pool, so without
 * the locked pool wrappers paropt links in (CMakeLists.txt, src/backend/cpu/gemm.c) about 1 in
 * 600 of these products came out wrong: data-parallel workers, pipeline stages and operator-split
 * helpers all multiply at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm.h"
#include "po_test.h"

#define M 64
#define N 256
#define K 128
#define THREADS 3
#define ROUNDS 4000

typedef struct {
    float a[M * K], b[K * N], want[M * N], c[M * N];
    int wrong;
    po_status st;
} job;

static void *worker(void *arg) {
    job *j = arg;
    for (int r = 0; r < ROUNDS && !j->st; r++) {
        j->st = po__sgemm(false, r % 2 == 1, M, N, K, 1.0f, j->a, K, j->b, r % 2 ? K : N, 0.0f, j->c, N);
        if (r % 2 == 0 && memcmp(j->c, j->want, sizeof j->c) != 0) j->wrong++;
    }
    return NULL;
}

static void concurrent(po_gemm_provider provider) {
    po_set_gemm_provider(provider);
    static job jobs[THREADS];
    uint64_t seed = 42;
    for (int t = 0; t < THREADS; t++) {
        job *j = &jobs[t];
        memset(j, 0, sizeof *j);
        for (int i = 0; i < M * K; i++)
            j->a[i] = (float)((seed = seed * 6364136223846793005ull + 1) >> 40) / (float)(1 << 24) - 0.5f;
        for (int i = 0; i < K * N; i++)
            j->b[i] = (float)((seed = seed * 6364136223846793005ull + 1) >> 40) / (float)(1 << 24) - 0.5f;
        PO_CHECK(po__sgemm(false, false, M, N, K, 1.0f, j->a, K, j->b, N, 0.0f, j->want, N));
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    int wrong = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        PO_CHECK(jobs[t].st);
        wrong += jobs[t].wrong;
    }
    print_message("%s: %d of %d products wrong with %d threads\n", po_gemm_provider_name(provider), wrong,
                  THREADS * ROUNDS / 2, THREADS);
    assert_int_equal(wrong, 0);
    po_set_gemm_provider(PO_GEMM_DEFAULT);
}

static void openblas_from_threads(void **st) {
    (void)st;
    assert_true(po__gemm_concurrent(PO_GEMM_OPENBLAS)); /* the wrappers are linked in */
    concurrent(PO_GEMM_OPENBLAS);
}

static void onednn_from_threads(void **st) {
    (void)st;
    concurrent(PO_GEMM_ONEDNN);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(openblas_from_threads), cmocka_unit_test(onednn_from_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Matrix products from several threads at once give the products one thread gives, bit for bit,
 * with each provider. Debian's serial OpenBLAS keeps no lock around its buffer pool, so without
 * the locked pool wrappers paropt links in (CMakeLists.txt, src/backend/cpu/gemm.c) about 1 in
 * 600 of these products came out wrong: data-parallel workers, pipeline stages and operator-split
 * helpers all multiply at once. With K = 512 both layouts' products go through oneDNN's matmul
 * primitive (backend/cpu/gemm_matmul.h), of which each thread keeps its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_matmul.h"
#include "po_test.h"

#define M       128
#define N       256
#define MAX_K   512
#define THREADS 3

typedef struct {
    int k, rounds;
    float a[M * MAX_K], b[MAX_K * N], want[2][M * N], c[M * N]; /* want[t]: B transposed or not */
    int wrong;
    po_status st;
} job;

/* Alternates the product with B as it is and B read transposed, checking each. */
static void *worker(void *arg) {
    job *j = arg;
    for (int r = 0; r < j->rounds && !j->st; r++) {
        bool tb = r % 2 == 1;
        j->st = po__sgemm(false, tb, M, N, j->k, 1.0f, j->a, j->k, j->b, tb ? j->k : N, 0.0f, j->c, N);
        if (memcmp(j->c, j->want[tb], sizeof j->c) != 0) j->wrong++;
    }
    return NULL;
}

static void concurrent(po_gemm_provider provider, int k, int rounds) {
    po_set_gemm_provider(provider);
    static job jobs[THREADS];
    uint64_t seed = 42;
    for (int t = 0; t < THREADS; t++) {
        job *j = &jobs[t];
        memset(j, 0, sizeof *j);
        j->k = k;
        j->rounds = rounds;
        for (int i = 0; i < M * k; i++)
            j->a[i] = (float)((seed = seed * 6364136223846793005ull + 1) >> 40) / (float)(1 << 24) - 0.5f;
        for (int i = 0; i < k * N; i++)
            j->b[i] = (float)((seed = seed * 6364136223846793005ull + 1) >> 40) / (float)(1 << 24) - 0.5f;
        PO_CHECK(po__sgemm(false, false, M, N, k, 1.0f, j->a, k, j->b, N, 0.0f, j->want[0], N));
        PO_CHECK(po__sgemm(false, true, M, N, k, 1.0f, j->a, k, j->b, k, 0.0f, j->want[1], N));
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
    print_message("%s, K = %d: %d of %d products wrong with %d threads\n", po_gemm_provider_name(provider), k, wrong,
                  THREADS * rounds, THREADS);
    assert_int_equal(wrong, 0);
    po_set_gemm_provider(PO_GEMM_DEFAULT);
}

static void openblas_from_threads(void **st) {
    (void)st;
    assert_true(po__gemm_concurrent(PO_GEMM_OPENBLAS)); /* the wrappers are linked in */
    concurrent(PO_GEMM_OPENBLAS, 128, 4000);
}

static void onednn_from_threads(void **st) {
    (void)st;
    concurrent(PO_GEMM_ONEDNN, 128, 4000);
}

/* Whether oneDNN has brgemm kernels here: AVX-512 cores (unless ONEDNN_MAX_CPU_ISA holds it to less). */
static bool has_brgemm(void) {
    return (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
}

static void onednn_matmul_primitive_from_threads(void **st) {
    (void)st;
    int64_t before = po__gemm_matmul_count();
    concurrent(PO_GEMM_ONEDNN, MAX_K, 600);
    /* Every thread's products (B as it is and transposed), and the two one-thread references
     * each was checked against, went through the primitive. */
    if (has_brgemm()) assert_int_equal(po__gemm_matmul_count() - before, THREADS * 600 + 2 * THREADS);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(openblas_from_threads), cmocka_unit_test(onednn_from_threads),
                                       cmocka_unit_test(onednn_matmul_primitive_from_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

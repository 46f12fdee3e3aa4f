/* The matrix-product backend against a naive double-precision product: every path (oneDNN's
 * sgemm, its matmul primitive where gemm_matmul.h's rule sends a product, OpenBLAS) on the
 * strides, beta, bias and shapes the ops use. (From several threads at once: unit/test_gemm_threads.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_matmul.h"
#include "po_test.h"

typedef struct {
    bool ta, tb;
    int64_t M, N, K;
    int64_t pad; /* extra elements at the end of every row of A, B and C */
    float beta;
    bool primitive; /* meant for oneDNN's matmul primitive */
    bool bias;      /* through po__sgemm_bias (beta 0): a bias[N] added to every row */
    int64_t pad_c;  /* more extra elements at the end of C's rows alone (a column block's C) */
    int64_t pad_a;  /* more at the end of A's rows alone (a row block of op(A) when A is transposed) */
} gcase;

/* max |c - ref| / (sum over k of |a||b| + |beta c0|): the rounding a float product may make,
 * scaled away; a wrong element (a missed row, a stale block) is off by order 1. */
static double check(const gcase *g, po_gemm_provider provider) {
    int64_t ar = g->ta ? g->K : g->M, ac = g->ta ? g->M : g->K, br = g->tb ? g->N : g->K, bc = g->tb ? g->K : g->N;
    int64_t lda = ac + g->pad + g->pad_a, ldb = bc + g->pad, ldc = g->N + g->pad + g->pad_c;
    float *a = malloc((size_t)(ar * lda) * sizeof *a), *b = malloc((size_t)(br * ldb) * sizeof *b);
    float *c = malloc((size_t)(g->M * ldc) * sizeof *c), *c0 = malloc((size_t)(g->M * ldc) * sizeof *c0);
    float *bias = malloc((size_t)g->N * sizeof *bias);
    assert_non_null(bias);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(c0);
    po_test_fill_uniform(a, ar * lda, -1.0f, 1.0f, 1);
    po_test_fill_uniform(b, br * ldb, -1.0f, 1.0f, 2);
    po_test_fill_uniform(c0, g->M * ldc, -1.0f, 1.0f, 3);
    po_test_fill_uniform(bias, g->N, -1.0f, 1.0f, 4);
    memcpy(c, c0, (size_t)(g->M * ldc) * sizeof *c);
    po_set_gemm_provider(provider);
    if (g->bias)
        PO_CHECK(po__sgemm_bias(g->ta, g->tb, g->M, g->N, g->K, a, lda, b, ldb, bias, c, ldc));
    else
        PO_CHECK(po__sgemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, a, lda, b, ldb, g->beta, c, ldc));
    po_set_gemm_provider(PO_GEMM_DEFAULT);
    double worst = 0.0;
    for (int64_t i = 0; i < g->M; i++) {
        for (int64_t j = 0; j < g->N; j++) {
            double s = 0.0, mag = 0.0;
            for (int64_t k = 0; k < g->K; k++) {
                double x = g->ta ? a[k * lda + i] : a[i * lda + k], y = g->tb ? b[j * ldb + k] : b[k * ldb + j];
                s += x * y;
                mag += fabs(x * y);
            }
            double extra = g->bias ? (double)bias[j] : (double)g->beta * c0[i * ldc + j];
            s += extra;
            mag += fabs(extra);
            double e = fabs((double)c[i * ldc + j] - s) / (mag > 0.0 ? mag : 1.0);
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
        for (int64_t j = g->N; j < ldc; j++) /* padding untouched */
            assert_true(c[i * ldc + j] == c0[i * ldc + j]);
    }
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias);
    return worst;
}

/* Whether oneDNN has brgemm kernels here: AVX-512 cores (unless ONEDNN_MAX_CPU_ISA holds it to less). */
static bool has_avx512(void) {
#if defined(__x86_64__)
    return (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
#else
    return false;
#endif
}

static void products_match_naive(void **st) {
    (void)st;
    const gcase cases[] = {
        /* the matmul primitive's shapes, whole and as operator-split row blocks: */
        /* x W^T with K >= 512 (Linear forwards) */
        {false, true, 128, 1024, 1024, 0, 1.0f, true, false, 0, 0},
        {false, true, 64, 256, 4096, 0, 1.0f, true, false, 0, 0},
        {false, true, 7, 64, 512, 0, 0.0f, true, false, 0, 0},
        {false, true, 1, 300, 1000, 0, 0.0f, true, false, 0, 0},
        {false, true, 33, 100, 768, 0, 1.0f, true, false, 0, 0},
        {false, true, 64, 256, 1024, 0, 0.0f, true, true, 0, 0},
        /* x W^T + bias with a small W (tiny_gpt's attention projection) */
        {false, true, 100, 256, 256, 0, 0.0f, true, true, 0, 0},
        /* x W^T's column blocks (operator split), C staged dense */
        {false, true, 128, 512, 1024, 0, 0.0f, true, false, 512, 0},
        {false, true, 50, 80, 256, 0, 0.0f, true, true, 3, 0},
        /* dY W (Linear input gradients) from 128 rows */
        {false, false, 128, 1024, 1024, 0, 0.0f, true, false, 0, 0},
        {false, false, 200, 80, 10, 0, 1.0f, true, false, 0, 0},
        /* dY^T x with dY's rows a multiple of 512 floats apart and K >= 512 (Linear weight gradients) */
        {true, false, 512, 200, 512, 0, 0.0f, true, false, 0, 0},
        {true, false, 1024, 96, 600, 0, 1.0f, true, false, 0, 0},
        /* the others: sgemm (operands with gaps between rows, as operator split's column blocks have) */
        {false, true, 33, 100, 768, 16, 1.0f, false, false, 0, 0},
        {false, true, 128, 10, 1024, 0, 1.0f, false, false, 0, 0},
        {false, true, 50, 70, 64, 2, 0.0f, false, false, 0, 0},
        {false, true, 50, 70, 64, 2, 0.0f, false, true, 0, 0},
        {false, true, 64, 1024, 256, 0, 0.0f, false, true, 0, 0},
        {false, true, 128, 10, 1024, 0, 0.0f, false, true, 0, 0},
        {false, false, 64, 1024, 1024, 3, 0.0f, false, false, 0, 0},
        {false, true, 50, 80, 256, 0, 1.0f, false, false, 3, 0},
        {false, true, 50, 80, 200, 0, 0.0f, false, false, 3, 0},
        {false, false, 64, 512, 1024, 0, 0.0f, false, false, 512, 0},
        {false, false, 64, 32, 1024, 0, 0.0f, false, false, 0, 0},
        {false, false, 64, 1024, 1024, 0, 0.0f, false, false, 0, 0},
        {true, false, 512, 200, 128, 0, 0.0f, false, false, 0, 0},
        {true, false, 300, 200, 128, 4, 0.0f, false, false, 0, 0},
        {true, false, 300, 200, 128, 0, 0.0f, false, false, 0, 0},
        {true, false, 512, 200, 128, 2, 0.0f, false, false, 0, 0},
        /* mnist_mlp's hidden weight gradients (a short sum), whole, at half batch and as an
         * operator-split row block (A's rows further apart than its width) */
        {true, false, 1024, 1024, 128, 0, 0.0f, false, false, 0, 0},
        {true, false, 1024, 1024, 64, 0, 0.0f, false, false, 0, 0},
        {true, false, 512, 1024, 128, 0, 0.0f, false, false, 0, 512},
        {true, false, 512, 512, 128, 0, 1.0f, false, false, 0, 0},
        {true, false, 500, 512, 128, 0, 0.0f, false, false, 0, 12},
        {true, true, 40, 90, 600, 1, 1.0f, false, false, 0, 0},
    };
    const po_gemm_provider providers[] = {PO_GEMM_ONEDNN, PO_GEMM_OPENBLAS};
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const gcase *g = &cases[i];
            int64_t before = po__gemm_matmul_count();
            double e = check(g, providers[p]);
            int64_t through = po__gemm_matmul_count() - before;
            int64_t lda = (g->ta ? g->M : g->K) + g->pad + g->pad_a, ldb = (g->tb ? g->K : g->N) + g->pad,
                    ldc = g->N + g->pad + g->pad_c;
            float dummy = 0.0f;
            po__gemm_call call = {g->ta,
                                  g->tb,
                                  g->M,
                                  g->N,
                                  g->K,
                                  1.0f,
                                  g->beta,
                                  0,
                                  0,
                                  0,
                                  lda,
                                  ldb,
                                  ldc,
                                  providers[p],
                                  g->bias ? &dummy : NULL};
            bool wanted = providers[p] == PO_GEMM_ONEDNN && po__gemm_matmul_wanted(&call);
            print_message("%s ta=%d tb=%d %lldx%lldx%lld pad %lld+%lld beta %g%s: error %.2e%s\n",
                          po_gemm_provider_name(providers[p]), g->ta, g->tb, (long long)g->M, (long long)g->N,
                          (long long)g->K, (long long)g->pad, (long long)g->pad_c, g->beta, g->bias ? " bias" : "", e,
                          through ? " (matmul primitive)" : "");
            assert_true(e < 1e-6);
            /* The rule picks the shapes meant for the primitive, and where oneDNN has brgemm
             * kernels (AVX-512) they reach it. */
            assert_int_equal(wanted, g->primitive && providers[p] == PO_GEMM_ONEDNN);
            assert_int_equal(through, wanted && has_avx512() ? 1 : 0);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(products_match_naive)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

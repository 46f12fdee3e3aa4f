/* Single-precision GEMM on the calling thread.
 *
 * Row-major: C[M, N] = alpha * op(A) op(B) + beta * C, where op(A) is [M, K] (A stored [K, M]
 * when trans_a) and op(B) is [K, N] (B stored [N, K] when trans_b); lda/ldb/ldc are row
 * strides in elements.
 *
 * Two providers, both single-threaded (paropt owns the cores): oneDNN's JIT sgemm and
 * OpenBLAS (Debian's serial build, linked statically so no alternatives switch changes it).
 * Neither wins everywhere; po_set_gemm_provider (runtime.h) says how one is picked. */
#ifndef PO_BACKEND_CPU_GEMM_H
#define PO_BACKEND_CPU_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/runtime.h"

po_status po__sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* C[M, N] = op(A) op(B) + bias, bias[N] added to every row (a Linear layer's forward). Where the
 * product goes through oneDNN's matmul primitive the bias is added there, saving a pass over C;
 * elsewhere C starts as the bias and the product accumulates onto it. */
po_status po__sgemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                         const float *B, int64_t ldb, const float *bias, float *C, int64_t ldc);

/* One po__sgemm call, with the provider chosen for the whole product. */
typedef struct po__gemm_call {
    bool trans_a, trans_b;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int64_t lda, ldb, ldc;
    po_gemm_provider provider; /* ONEDNN or OPENBLAS */
    const float *bias;         /* [N] added to every row of C, or NULL; only with beta 0 */
} po__gemm_call;

/* Runs c on the calling thread with c->provider (a block of a split product uses the provider
 * chosen for the whole one, so splitting changes rounding as little as possible). */
po_status po__gemm_run(const po__gemm_call *c);

/* Whether provider p (ONEDNN or OPENBLAS) may run on several threads at once: oneDNN always;
 * the serial OpenBLAS only when linked with its buffer pool locked (see gemm.c). */
bool po__gemm_concurrent(po_gemm_provider p);

/* Hands the calling thread's po__sgemm calls to fn (operator split shares them out across a
 * team of threads: src/runtime/gemm_team.c) until cleared with fn = NULL. Thread-local. fn gets
 * every non-empty call, the provider already chosen, and must compute the whole product. */
typedef po_status (*po__gemm_hook_fn)(void *ctx, const po__gemm_call *c);
void po__gemm_set_hook(po__gemm_hook_fn fn, void *ctx);

#endif

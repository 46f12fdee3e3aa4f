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

#endif

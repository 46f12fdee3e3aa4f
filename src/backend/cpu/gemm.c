#include "backend/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

po_status po__sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                    int64_t ldc) {
    if (M == 0 || N == 0) return PO_OK;
    dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda,
                                 B, ldb, beta, C, ldc);
    if (s != dnnl_success)
        return po_fail(PO_ERR_BACKEND, "oneDNN sgemm failed (status %d) for M=%lld N=%lld K=%lld", (int)s,
                       (long long)M, (long long)N, (long long)K);
    return PO_OK;
}

/* GELU and its derivative on AVX-512 lanes (ops/gelu_math.h). */
#include "ops/gelu_math.h"

#include "core/vmath512.h"

#if defined(__x86_64__) && defined(__GNUC__)

PO_INLINE_AVX512 __m512 gelu16(__m512 x) {
    __m512 erf = po_erff16(_mm512_mul_ps(x, _mm512_set1_ps(PO_INV_SQRT2)));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

PO_INLINE_AVX512 __m512 gelu_grad16(__m512 gy, __m512 x) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(PO_INV_SQRT2)), az = _mm512_abs_ps(z);
    __m512 e = po_expf16(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), z), z));
    __m512 t =
        _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), az, _mm512_set1_ps(1.0f)));
    __m512 poly = _mm512_fmadd_ps(t, _mm512_set1_ps(1.061405429f), _mm512_set1_ps(-1.453152027f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(1.421413741f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(-0.284496736f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(0.254829592f));
    poly = _mm512_mul_ps(t, poly);
    __m512 erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0f));
    __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 erf = _mm512_mask_sub_ps(erf_abs, neg, _mm512_setzero_ps(), erf_abs);
    __m512 cdf = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
    __m512 slope = _mm512_mul_ps(x, _mm512_set1_ps(PO_INV_SQRT_2PI));
    return _mm512_mul_ps(gy, _mm512_fmadd_ps(slope, e, cdf));
}

PO_AVX512 void po__gelu_avx512(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = po_lanes16(n - i);
        _mm512_mask_storeu_ps(y + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

PO_AVX512 void po__gelu_grad_avx512(const float *gy, const float *x, float *gx, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gx + i, gelu_grad16(_mm512_loadu_ps(gy + i), _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = po_lanes16(n - i);
        _mm512_mask_storeu_ps(gx + i, m,
                              gelu_grad16(_mm512_maskz_loadu_ps(m, gy + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

#else

void po__gelu_avx512(const float *x, float *y, int64_t n) { (void)x, (void)y, (void)n; }
void po__gelu_grad_avx512(const float *gy, const float *x, float *gx, int64_t n) {
    (void)gy, (void)x, (void)gx, (void)n;
}

#endif

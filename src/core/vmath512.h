/* core/vmath.h's exp and erf on sixteen lanes of AVX-512, step for step, for kernels written
 * with intrinsics (attention's softmax, GELU): the compiler's own vectorisation of the scalar
 * functions reloads every constant in the loop and handles NaN by selects, which left GELU 1.25-1.5x
 * slower than these. Compiled for AVX-512 whatever the build's -march: call them only from
 * functions with the same target attribute, after checking the CPU (po_cpu_avx512).
 * tests/unit/test_vmath.c holds them to the scalar functions. */
#ifndef PO_CORE_VMATH512_H
#define PO_CORE_VMATH512_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define PO_AVX512        __attribute__((target("avx512f")))
#define PO_INLINE_AVX512 static inline __attribute__((always_inline, target("avx512f")))

/* Whether this CPU runs AVX-512 F. */
static inline bool po_cpu_avx512(void) { return __builtin_cpu_supports("avx512f"); }

/* po_expf on each lane (NaN lanes stay NaN). */
PO_INLINE_AVX512 __m512 po_expf16(__m512 x_in) {
    __mmask16 ok = _mm512_cmp_ps_mask(x_in, x_in, _CMP_ORD_Q);
    __m512 x = _mm512_maskz_mov_ps(ok, x_in);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33f)), _mm512_set1_ps(88.37f));
    __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mask_mul_ps(x_in, ok, p, _mm512_castsi512_ps(bits));
}

/* po_erff on each lane. */
PO_INLINE_AVX512 __m512 po_erff16(__m512 x) {
    /* The constant first: max and min hand back their second operand for a NaN, as the scalar
     * clamps keep it. */
    x = _mm512_min_ps(_mm512_set1_ps(4.0f), _mm512_max_ps(_mm512_set1_ps(-4.0f), x));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(p, x);
    __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(_mm512_set1_ps(-1.0f), _mm512_div_ps(p, q)));
}

/* The first n (0..16) lanes. */
static inline __mmask16 po_lanes16(int64_t n) { return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }

#else

static inline bool po_cpu_avx512(void) { return false; }

#endif

#endif

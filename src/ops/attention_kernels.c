/* AVX-512 kernels for one attention head's products (ops/attention_kernels.h). Built for
 * AVX-512 whatever the build's -march, and chosen at run time. */
#include "ops/attention_kernels.h"

#include <math.h>

#include "core/vmath512.h"

#if defined(__x86_64__) && defined(__GNUC__)

bool po__attn_kernels_ok(int64_t T, int64_t hd) {
    return po_cpu_avx512() && T > 0 && T % 16 == 0 && hd > 0 && hd % 16 == 0 && hd <= 64;
}

/* Rows r0 .. r0 + 7 against keys j0 .. j0 + 16 NV of the transposed B (8 x 48 keys: 24
 * accumulators; a tiny_gpt layer's 32 heads in 0.43-0.48 ms on one Zen 4 core, against
 * 0.50-0.54 in tiles of 4 x 64). */
PO_INLINE_AVX512 void scores_tile(const float *A, int64_t lda, const float *bt, int64_t T, int64_t hd, float alpha,
                                  float *S, int64_t r0, int64_t j0, const int NV) {
    enum { R = 8 };
    __m512 acc[8][4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = _mm512_setzero_ps();
    const float *a = A + r0 * lda;
    for (int64_t d = 0; d < hd; d++) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            b[v] = _mm512_loadu_ps(bt + d * T + j0 + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + d]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
        }
    }
    __m512 s = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(S + (r0 + r) * T + j0 + 16 * v, _mm512_mul_ps(acc[r][v], s));
}

/* bt[d0 + i, j0 ..] = B[j0 .., d0 + i] for a 16 x 16 block: unpacks pair rows, then
 * 128-bit lanes are shuffled into place (1.5 us a 128 x 64 head, against 3.1 gathering). */
PO_INLINE_AVX512 void transpose16(const float *B, int64_t ldb, float *bt, int64_t T) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(B + i * ldb);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        __m512 b0 = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88), b1 = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        __m512 b2 = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88),
               b3 = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
        t[i] = _mm512_shuffle_f32x4(b0, b2, 0x88);
        t[i + 8] = _mm512_shuffle_f32x4(b0, b2, 0xdd);
        t[i + 4] = _mm512_shuffle_f32x4(b1, b3, 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(b1, b3, 0xdd);
    }
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(bt + i * T, t[i]);
}

PO_AVX512 void po__attn_scores(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t T, int64_t hd,
                               float alpha, float *S, float *bt) {
    for (int64_t j0 = 0; j0 < T; j0 += 16) /* bt[d, j] = B[j, d] */
        for (int64_t d0 = 0; d0 < hd; d0 += 16)
            transpose16(B + j0 * ldb + d0, ldb, bt + d0 * T + j0, T);
    for (int64_t r0 = 0; r0 < T; r0 += 8) {
        int64_t keys = (r0 + 8 + 15) / 16 * 16; /* the group's last row meets keys up to r0 + 7 */
        if (keys > T) keys = T;
        int64_t j0 = 0;
        for (; j0 + 48 <= keys; j0 += 48)
            scores_tile(A, lda, bt, T, hd, alpha, S, r0, j0, 3);
        switch ((keys - j0) / 16) {
        case 2: scores_tile(A, lda, bt, T, hd, alpha, S, r0, j0, 2); break;
        case 1: scores_tile(A, lda, bt, T, hd, alpha, S, r0, j0, 1); break;
        default: break;
        }
    }
}

/* Rows r0 .. r0 + R - 1 of C (NV vectors of 16 wide), summing k over [k0, k1). Tiles of 6 rows
 * (24 accumulators) with W's layout a constant: a tiny_gpt layer's 32 heads in 0.32 ms on one
 * Zen 4 core, against 0.38-0.41 in tiles of 4 rows with the layout looked up in the loop. */
PO_INLINE_AVX512 void weighted_tile(const float *W, const bool transposed, const float *B, int64_t ldb, int64_t T,
                                    float alpha, float *C, int64_t ldc, int64_t r0, int64_t k0, int64_t k1, const int R,
                                    const int NV) {
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int64_t k = k0; k < k1; k++) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            b[v] = _mm512_loadu_ps(B + k * ldb + 16 * v);
        const float *w = transposed ? W + k * T + r0 : W + r0 * T + k;
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(transposed ? w[r] : w[r * T]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
        }
    }
    __m512 s = _mm512_set1_ps(alpha);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(C + (r0 + r) * ldc + 16 * v, _mm512_mul_ps(acc[r][v], s));
}

/* All rows of C, W's layout a constant: tiles of 6 rows, the last of 4 or 2 (T is even). */
PO_INLINE_AVX512 void weighted_all(const float *W, const bool transposed, const float *B, int64_t ldb, int64_t T,
                                   int64_t hd, float alpha, float *C, int64_t ldc) {
    for (int64_t r0 = 0; r0 < T;) {
        int R = T - r0 >= 6 ? 6 : T - r0 >= 4 ? 4 : 2;
        /* W is zero above its diagonal: row r meets k <= r, column r meets k >= r. */
        int64_t k0 = transposed ? r0 : 0, k1 = transposed ? T : r0 + R;
#define TILE(RR, NN) weighted_tile(W, transposed, B, ldb, T, alpha, C, ldc, r0, k0, k1, RR, NN)
#define TILES(RR)                                                                                                      \
    switch (hd / 16) {                                                                                                 \
    case 4: TILE(RR, 4); break;                                                                                        \
    case 3: TILE(RR, 3); break;                                                                                        \
    case 2: TILE(RR, 2); break;                                                                                        \
    default: TILE(RR, 1); break;                                                                                       \
    }
        if (R == 6) {
            TILES(6)
        } else if (R == 4) {
            TILES(4)
        } else {
            TILES(2)
        }
#undef TILES
#undef TILE
        r0 += R;
    }
}

PO_AVX512 void po__attn_weighted_rows(const float *W, bool transposed, const float *B, int64_t ldb, int64_t T,
                                      int64_t hd, float alpha, float *C, int64_t ldc) {
    if (transposed)
        weighted_all(W, true, B, ldb, T, hd, alpha, C, ldc);
    else
        weighted_all(W, false, B, ldb, T, hd, alpha, C, ldc);
}

/* The rows of S in three passes of sixteen keys (the maximum, the exponentials and their sum, the
 * scaling), the last vector of each row masked: 0.14 ms a tiny_gpt layer's 32 heads on one Zen 4
 * core, against 0.38 for the compiler's vectorisation of the same steps over rows of 8-key
 * multiples. */
PO_AVX512 void po__attn_softmax_rows(float *p, int64_t T) {
    for (int64_t i = 0; i < T; i++) {
        float *row = p + i * T;
        int64_t n = i + 1, j;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (j = 0; j + 16 <= n; j += 16)
            mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + j));
        __mmask16 tail = po_lanes16(n - j);
        if (n > j) mx = _mm512_mask_max_ps(mx, tail, mx, _mm512_maskz_loadu_ps(tail, row + j));
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
        for (j = 0; j + 16 <= n; j += 16) {
            __m512 e = po_expf16(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
            _mm512_storeu_ps(row + j, e);
            sum = _mm512_add_ps(sum, e);
        }
        if (n > j) {
            __m512 e = _mm512_maskz_mov_ps(tail, po_expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + j), m)));
            _mm512_storeu_ps(row + j, e);
            sum = _mm512_add_ps(sum, e);
            j += 16;
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int64_t k = 0; k < j; k += 16)
            _mm512_storeu_ps(row + k, _mm512_mul_ps(_mm512_loadu_ps(row + k), inv));
        for (; j < T; j += 16)
            _mm512_storeu_ps(row + j, _mm512_setzero_ps());
    }
}

#else

bool po__attn_kernels_ok(int64_t T, int64_t hd) {
    (void)T, (void)hd;
    return false;
}
void po__attn_scores(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t T, int64_t hd, float alpha,
                     float *S, float *bt) {
    (void)A, (void)lda, (void)B, (void)ldb, (void)T, (void)hd, (void)alpha, (void)S, (void)bt;
}
void po__attn_weighted_rows(const float *W, bool transposed, const float *B, int64_t ldb, int64_t T, int64_t hd,
                            float alpha, float *C, int64_t ldc) {
    (void)W, (void)transposed, (void)B, (void)ldb, (void)T, (void)hd, (void)alpha, (void)C, (void)ldc;
}
void po__attn_softmax_rows(float *S, int64_t T) { (void)S, (void)T; }

#endif

/* AVX-512 kernels for one attention head's products (causal_attention and its gradient).
 *
 * The head's products are small (T x T x hd with hd = 64 in tiny_gpt) and causal: sgemm on
 * row blocks of 32 ran them at about 70 GFLOP/s on one Zen 4 core, where the big products of
 * the same step reach 105. These kernels skip the masked triangle by 16 keys (or 2-8 rows) at a
 * time and need no packing except one transpose of K (or V) per head.
 *
 * Every kernel accumulates over k in increasing order with FMAs, one output element at a time,
 * so results do not depend on how heads are dealt out (operator split's units stay bit-equal
 * to the whole node). They round differently from sgemm: the op's tests compare both paths
 * against a double-precision reference. */
#ifndef PO_OPS_ATTENTION_KERNELS_H
#define PO_OPS_ATTENTION_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* Whether the kernels run here for T positions and head size hd: an AVX-512 CPU, T and hd
 * multiples of 16, hd at most 64. Otherwise the op uses sgemm. */
bool po__attn_kernels_ok(int64_t T, int64_t hd);

/* Causal scores: S[i, j] = alpha * sum_d A[i, d] B[j, d] for every row i < T and at least the
 * keys j < i + 1 rounded up to 16 (by groups of 8 rows; the rest of the row is left as it was). A and B have row
 * strides lda and ldb; S is [T, T]; bt is T * hd floats of scratch (B transposed). */
void po__attn_scores(const float *A, int64_t lda, const float *B, int64_t ldb, int64_t T, int64_t hd, float alpha,
                     float *S, float *bt);

/* C[r, :hd] = alpha * sum_k W(r, k) B[k, :hd] over the k a causal row meets, with W a [T, T]
 * matrix that is zero above its diagonal:
 *   lower (transposed = false): W(r, k) = W[r, k], k = 0 .. r   (P V, dS K);
 *   upper (transposed = true):  W(r, k) = W[k, r], k = r .. T-1 (P^T dY, dS^T Q).
 * B and C have row strides ldb and ldc. */
void po__attn_weighted_rows(const float *W, bool transposed, const float *B, int64_t ldb, int64_t T, int64_t hd,
                            float alpha, float *C, int64_t ldc);

/* P[i, :] = softmax of S[i, 0 .. i] in place, and 0 above the diagonal, for a [T, T] S: the
 * op's causal softmax (with the exponential of core/vmath.h), vectorised by hand. */
void po__attn_softmax_rows(float *S, int64_t T);

#endif

/* The products that oneDNN's sgemm does worse than its matmul primitive (brgemm kernels).
 *
 * sgemm packs an operand slowly when its rows are a multiple of 512 floats apart (cache-set
 * aliasing), and the primitive's brgemm kernels do not. Measured on one Zen 4 core, medians of
 * 31 with L2 flushed, sgemm against the primitive (ms):
 *   x W^T (Linear forwards), B's rows K floats apart: 128x1024x1024 3.01 / 2.54; 64x1024x1024,
 *     mnist_mlp's middle layer at half batch, 1.84 / 1.37; 128x256x4096, cifar_cnn's first
 *     linear layer, 3.08 / 2.54; 1024x256x1024, tiny_gpt's second MLP layer, 5.10 / 4.88;
 *     elsewhere with K >= 512 within 4% either way, except N = 10, where brgemm loses. With a
 *     bias the primitive adds it and saves sgemm's pass that fills C with it beforehand: worth
 *     it for a small W (below);
 *   dY W (Linear input gradients): 64x1024x1024 1.46 / 1.30, 128x4096x256 2.74 / 2.60,
 *     1024x256x1024 4.81 / 4.69, 128x1024x10 0.047 / 0.030; 1024x1024x256 4.81 / 4.89;
 *   dY^T x (Linear weight gradients) with dY's rows a multiple of 512 floats apart:
 *     1024x256x1024 (tiny_gpt's first MLP layer) 5.39 / 5.02, 1024x784x128 1.95 / 1.84;
 *     1024x1024x128 2.46 / 2.47; with other strides sgemm is as fast or up to 3% faster.
 * In tiny_gpt's training step (one core) these took 206.6 -> 204.5 ms.
 *
 * Each thread keeps its own primitives (one per shape, made on first use, freed when the thread
 * ends), memory objects, stream and scratchpad, so any number of threads run products at once;
 * each primitive runs on the calling thread alone. */
#ifndef PO_BACKEND_CPU_GEMM_MATMUL_H
#define PO_BACKEND_CPU_GEMM_MATMUL_H

#include <stdbool.h>

#include "backend/cpu/gemm.h"

/* Whether c (a oneDNN product) should go through the matmul primitive: N >= 64, alpha 1, beta 0
 * or 1 (0 with a bias), every operand dense (oneDNN 2.6 has brgemm kernels for those alone;
 * operator split's row blocks of x W^T and dY W stay dense, its column blocks do not), and one
 * of: x W^T with K >= 512 or with a bias and a W of at most 128K floats; dY W; dY^T x with
 * lda a multiple of 512. */
bool po__gemm_matmul_wanted(const po__gemm_call *c);

/* Runs c (one po__gemm_matmul_wanted accepts) through this thread's matmul primitive for its
 * shape. *ran is false (and nothing is
 * written) when oneDNN offers no brgemm kernel for it on this CPU (the primitive would only
 * wrap sgemm) or cannot make the primitive: the caller then runs sgemm. */
po_status po__gemm_matmul_run(const po__gemm_call *c, bool *ran);

/* Products the matmul primitive has run, in every thread, since the process started (tests
 * check that the shapes meant for it reach it). */
int64_t po__gemm_matmul_count(void);

#endif

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
 *   dY W (Linear input gradients): 128x4096x256 2.74 / 2.60, 1024x256x1024 4.81 / 4.69,
 *     128x1024x10 0.047 / 0.030; 1024x1024x256 4.81 / 4.89; in training mnist_mlp's
 *     128x1024x1024 2.65 -> 2.54, but operator split's 64-row blocks of it 1.24 -> 1.36 (two
 *     cores streaming the weight at once), so only from 128 rows;
 *   dY^T x (Linear weight gradients) with dY's rows a multiple of 512 floats apart and a long
 *     sum (K >= 512): tiny_gpt's first MLP layer, 1024x256x1024, 5.39 / 5.02 (5.25 -> 5.02 in
 *     training); with K = 128 (mnist_mlp's batch) it lost in training (2.46 -> 2.57 ms);
 *   x W^T's column blocks (operator split of a Linear forward whose W is larger than x, so
 *     each member reads its slice of W, not all of it): the primitive writes a dense block
 *     copied out after; mnist_mlp's middle layer over two cores 1.34 -> 1.28 ms.
 * In training on one core: tiny_gpt 206.6 -> 203.3 ms per step, mnist_mlp 13.34 -> 12.95.
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
 * of: x W^T with K >= 512 or with a bias and a W of at most 128K floats; dY W with M >= 128;
 * dY^T x with lda a multiple of 512 and K >= 512 (a short sum, as mnist_mlp's 128-row batch,
 * stays on sgemm, see above; its slow first calls in each thread are met by backend/cpu/gemm.c's
 * warm-up). C may have gaps between its rows (ldc > N) for x W^T with beta 0 and K >= 256: the
 * primitive then writes a dense C of the thread's own, copied out. */
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

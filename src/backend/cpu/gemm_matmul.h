/* The products C = A B^T (+ C) that oneDNN's sgemm does badly, through its matmul primitive.
 *
 * A Linear layer's forward is x W^T with W stored [out, in], so B^T's rows are `in` floats
 * apart. oneDNN's sgemm packs such a B slowly when that stride is a multiple of 512 floats
 * (cache-set aliasing), and the matmul primitive's brgemm kernels do not (one Zen 4 core,
 * best of 40, hot: 128x1024x1024 2.97 ms against 2.41; 64x1024x1024, mnist_mlp's middle
 * layer at half batch, 1.80 against 1.26; 64x256x4096, cifar_cnn's first linear layer, 1.82
 * against 1.27; 1024x256x1024, tiny_gpt's second MLP layer, 5.08 against 4.77; elsewhere with
 * K >= 512 within 4% either way, except N = 10, where brgemm loses).
 *
 * Each thread keeps its own primitives (one per shape and strides, made on first use, freed
 * when the thread ends), memory objects, stream and scratchpad, so any number of threads run
 * products at once; each primitive runs on the calling thread alone. */
#ifndef PO_BACKEND_CPU_GEMM_MATMUL_H
#define PO_BACKEND_CPU_GEMM_MATMUL_H

#include <stdbool.h>

#include "backend/cpu/gemm.h"

/* Whether c (a oneDNN product) should go through the matmul primitive: not op(A) transposed,
 * B transposed, K >= 512, N >= 64, alpha 1, beta 0 or 1, and every operand dense (lda = ldb =
 * K, ldc = N: oneDNN 2.6 has brgemm kernels for those alone; operator split's row blocks stay
 * dense, its column blocks do not). */
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

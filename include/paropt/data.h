/* Datasets: samples and targets held in memory, served as batches.
 *
 * A dataset holds N samples x[N, ...] (F32 images/features or I64 token ids) and N targets
 * y[N, ...] (I64 class ids). Batches are consecutive samples, wrapping around at the end. */
#ifndef PAROPT_DATA_H
#define PAROPT_DATA_H

#include <stdint.h>

#include "paropt/models.h"
#include "paropt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_dataset po_dataset;

/* The tensors "input.x" and "input.y" of a safetensors file (I32 ids and targets are widened
 * to I64). Their first dims (the sample count) must agree. */
po_status po_dataset_open_safetensors(const char *path, po_dataset **out);
/* Random samples shaped for model m: N(0, 1) features, or ids and targets uniform over the
 * vocabulary/classes; `samples` of them, drawn from `seed`. */
po_status po_dataset_synthetic(const po_model *m, int64_t samples, uint64_t seed, po_dataset **out);
void po_dataset_free(po_dataset *d);

int64_t po_dataset_size(const po_dataset *d);

/* Checks that d fits model m: sample shape and dtype, target shape, every target in
 * [0, classes) and every token id in [0, vocab). One-line error naming the first problem. */
po_status po_dataset_check(const po_dataset *d, const po_model *m);

/* Copies batch number `index` (samples index*B .. index*B + B - 1, modulo N; B = the first dim
 * of x_out) into x_out and y_out, which must be contiguous and shaped [B, ...] like the
 * dataset's samples and targets. */
po_status po_dataset_batch(const po_dataset *d, int64_t index, po_tensor *x_out, po_tensor *y_out);

#ifdef __cplusplus
}
#endif
#endif

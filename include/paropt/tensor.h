/* Tensors: typed, shaped, strided views of reference-counted storage.
 *
 * Layout is row-major with explicit strides in elements, so reshape (of contiguous data),
 * transpose, narrow and split return views that share storage with their source instead of
 * copying. po_tensor_contiguous() makes a packed copy when a consumer needs one. */
#ifndef PAROPT_TENSOR_H
#define PAROPT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(enum, safetensors name, bytes per element) — the single list of element types. */
#define PO_DTYPE_LIST(X)                                                                                               \
    X(PO_F32, "F32", 4)                                                                                                \
    X(PO_I32, "I32", 4)                                                                                                \
    X(PO_I64, "I64", 8)

typedef enum {
#define PO_DTYPE_ENUM(e, name, size) e,
    PO_DTYPE_LIST(PO_DTYPE_ENUM)
#undef PO_DTYPE_ENUM
        PO_DTYPE_COUNT
} po_dtype;

size_t po_dtype_size(po_dtype t);      /* bytes per element; 0 for an invalid value */
const char *po_dtype_name(po_dtype t); /* "F32", "I32", "I64" (safetensors spelling) */
/* Parses a safetensors dtype name; PO_ERR_DTYPE for names paropt does not handle. */
po_status po_dtype_parse(const char *name, po_dtype *out);

/* Maximum rank. Eight covers every layout the reference workloads and ONNX tests use. */
#define PO_MAX_DIMS 8

typedef struct po_shape {
    int ndim;                 /* 0 (a scalar) .. PO_MAX_DIMS */
    int64_t dim[PO_MAX_DIMS]; /* extents; each >= 0 */
} po_shape;

/* Builds a shape from n extents. PO_SHAPE(2, 3) is a convenience for literal shapes. */
po_shape po_shape_make(int ndim, const int64_t *dims);
#define PO_SHAPE(...) po_shape_make((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
int64_t po_shape_numel(const po_shape *s);
bool po_shape_equal(const po_shape *a, const po_shape *b);
/* Writes "[2, 3, 4]" into buf (always NUL-terminated); returns buf. */
char *po_shape_format(const po_shape *s, char *buf, size_t size);

struct po_storage; /* reference-counted allocation; internal */

typedef struct po_tensor {
    po_dtype dtype;
    po_shape shape;
    int64_t stride[PO_MAX_DIMS]; /* in elements */
    void *data;                  /* address of element [0, ..., 0] */
    struct po_storage *storage;  /* owner shared by views; NULL when data is borrowed */
} po_tensor;

/* Allocates a zero-filled contiguous tensor (64-byte aligned). Free with po_tensor_free. */
po_status po_tensor_new(po_dtype dtype, po_shape shape, po_tensor **out);
/* Wraps caller-owned contiguous memory without copying; the caller keeps `data` alive for
 * the tensor's lifetime and its views'. */
po_status po_tensor_wrap(po_dtype dtype, po_shape shape, void *data, po_tensor **out);
/* Releases the tensor; storage is freed when its last view is released. NULL is a no-op. */
void po_tensor_free(po_tensor *t);

int64_t po_tensor_numel(const po_tensor *t);
bool po_tensor_is_contiguous(const po_tensor *t);

/* Views (share storage; each must be freed with po_tensor_free). */
/* New shape with the same element count; needs contiguous input (else PO_ERR_UNSUPPORTED:
 * make it contiguous first). One extent may be -1 (inferred). */
po_status po_tensor_reshape(const po_tensor *t, po_shape shape, po_tensor **out);
/* Swaps dimensions d0 and d1 (negative counts from the end). */
po_status po_tensor_transpose(const po_tensor *t, int d0, int d1, po_tensor **out);
/* Elements [start, start+len) along dim. */
po_status po_tensor_narrow(const po_tensor *t, int dim, int64_t start, int64_t len, po_tensor **out);
/* Splits dim into parts of `size` elements (the last may be smaller), like torch.split.
 * Writes at most max_parts views to out and their count to *n_parts. */
po_status po_tensor_split(const po_tensor *t, int dim, int64_t size, po_tensor **out, int max_parts, int *n_parts);

/* A contiguous tensor with the same values: a new reference when t already is contiguous,
 * else a packed copy. */
po_status po_tensor_contiguous(const po_tensor *t, po_tensor **out);
/* Copies values element by element (any strides); shapes and dtypes must match. */
po_status po_tensor_copy(po_tensor *dst, const po_tensor *src);

/* Element access by multi-index, for tests and tools (slow). */
float po_tensor_get_f32(const po_tensor *t, const int64_t *index);
int64_t po_tensor_get_int(const po_tensor *t, const int64_t *index);

#ifdef __cplusplus
}
#endif
#endif

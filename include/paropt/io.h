/* safetensors files: read, validate, write.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the end of the header)
 * plus an optional "__metadata__" object of string values, then the raw little-endian data.
 * paropt reads F32, I32 and I64 tensors. Every malformed file (truncated, header length past
 * the end, bad JSON, unknown dtype, offsets outside the data or disagreeing with the shape,
 * overlapping tensors, duplicate names) is a PO_ERR_FORMAT or PO_ERR_DTYPE with a one-line
 * message naming the problem, and a valid file paropt cannot hold (rank above PO_MAX_DIMS) is
 * PO_ERR_UNSUPPORTED; never a crash. Gaps between tensors and trailing bytes are accepted. */
#ifndef PAROPT_IO_H
#define PAROPT_IO_H

#include <stddef.h>

#include "paropt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_st_file po_st_file;

/* Reads and validates the whole file at path. Messages start with the path. */
po_status po_st_read(const char *path, po_st_file **out);
/* Parses and validates a safetensors image held in memory (the bytes are copied). */
po_status po_st_parse(const void *data, size_t len, po_st_file **out);
void po_st_free(po_st_file *f);

/* Tensors are numbered in file order: the order of their data offsets. Out-of-range indices
 * give NULL, PO_DTYPE_COUNT, an empty shape, or PO_ERR_INVALID_ARG respectively. */
int po_st_count(const po_st_file *f);
const char *po_st_name(const po_st_file *f, int i);
int po_st_find(const po_st_file *f, const char *name); /* index, or -1 */
po_dtype po_st_dtype(const po_st_file *f, int i);
po_shape po_st_shape(const po_st_file *f, int i);
/* A new contiguous tensor holding a copy of tensor i (independent of f; free it). */
po_status po_st_tensor(const po_st_file *f, int i, po_tensor **out);
/* Same by name; PO_ERR_NOT_FOUND ("FILE has no tensor \"NAME\"") when absent. */
po_status po_st_get(const po_st_file *f, const char *name, po_tensor **out);
/* Value of a __metadata__ entry, or NULL. */
const char *po_st_meta(const po_st_file *f, const char *key);

/* Writes n tensors (any strides; written packed) under the given names, plus n_meta metadata
 * strings. Names must be unique, valid UTF-8 and not "__metadata__", metadata keys unique;
 * anything else is PO_ERR_INVALID_ARG before the disk is touched. The write is atomic: the data goes to a temporary
 * file in the same directory that is fsynced and renamed over path, so path always holds either its old content or the
 * complete new file. */
po_status po_st_write(const char *path, int n, const char *const *names, const po_tensor *const *tensors, int n_meta,
                      const char *const *meta_keys, const char *const *meta_values);

#ifdef __cplusplus
}
#endif
#endif

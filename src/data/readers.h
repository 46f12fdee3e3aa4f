/* Internal to src/data: the dataset representation shared by the readers and the loader, the
 * file loader, and parse-from-memory entry points (used by the readers and the fuzz targets). */
#ifndef PO_DATA_READERS_H
#define PO_DATA_READERS_H

#include <stddef.h>
#include <stdint.h>

#include "paropt/data.h"

typedef enum {
    PO__DS_TENSOR, /* x, y: in-memory tensors (safetensors, synthetic) */
    PO__DS_IMAGE,  /* pixels: N * sample bytes, labels: N bytes; scaled as batches are made */
    PO__DS_TEXT,   /* text: bytes of windows first..first+N-1 (N * seq + 1 bytes) */
} po__ds_kind;

struct po_dataset {
    po__ds_kind kind;
    int64_t n;        /* samples */
    po_shape sample;  /* one sample, no batch dim */
    po_shape target;  /* one sample's targets: [] or [seq] */
    po_dtype dtype;   /* batched sample dtype (F32 or I64) */
    int64_t classes;  /* see po_dataset_classes */
    bool classes_known; /* a fixed class count (IDX, CIFAR, text), not the largest label seen */
    po_tensor *x, *y; /* PO__DS_TENSOR: contiguous [N, ...]; y is I64 */
    uint8_t *pixels;  /* PO__DS_IMAGE: N * numel(sample) bytes, sample-major */
    uint8_t *labels;  /* PO__DS_IMAGE: N labels, each < classes */
    uint8_t *text;    /* PO__DS_TEXT: N * seq + 1 bytes, window k at text + k * seq */
    char *name;       /* the spec, for po_dataset_name */
    char *origin;     /* the file(s), for messages */
};

/* A new empty dataset of the given kind named `name` (copied), messages naming `origin`
 * (copied). NULL when out of memory (po_fail already called). */
po_dataset *po__dataset_alloc(po__ds_kind kind, const char *name, const char *origin);

/* Writes rows samples idx[0..rows) into x (rows * numel(sample) elements of d->dtype) and
 * their targets into y (rows * numel(target) I64), scaling pixels to [0, 1]. Indices must be
 * in [0, n). Never fails; safe from any thread (reads d only). */
void po__dataset_fill(const po_dataset *d, const int64_t *idx, int64_t rows, void *x, int64_t *y);

/* Checks that t is a contiguous tensor of dtype `dtype` shaped [B, ...] whose rows each hold
 * `row` elements. `what` names it in the message ("batch samples"). */
po_status po__check_batch_tensor(const po_tensor *t, po_dtype dtype, int64_t B, int64_t row, const char *what);

/* Reads the whole file at path into a new malloc'd buffer (free it), inflating it when it
 * starts with the gzip magic 1f 8b. Fails, with a message starting with path: PO_ERR_IO
 * (cannot open/read), PO_ERR_FORMAT (corrupt gzip, bytes after the gzip stream), PO_ERR_RANGE
 * (more than max bytes, before or after inflating). The buffer grows with the data actually
 * inflated, so a forged gzip size field cannot cause a large allocation. An empty file gives
 * len 0 and a non-NULL buffer. */
po_status po__read_file(const char *path, uint64_t max, uint8_t **out, size_t *len);
/* Inflates a gzip image held in memory (one or more concatenated members); same errors as
 * po__read_file with origin in place of the path. */
po_status po__gunzip(const void *buf, size_t len, uint64_t max, const char *origin, uint8_t **out, size_t *out_len);

/* buf = "dir/name"; PO_ERR_INVALID_ARG when it does not fit in size bytes (never truncated). */
po_status po__path_join(char *buf, size_t size, const char *dir, const char *name);

/* One parsed IDX file of unsigned bytes (type 0x08): magic 00 00 08 ndim, ndim big-endian
 * u32 extents, then prod(extents) bytes and nothing more. */
typedef struct po__idx {
    int ndim;            /* as required by the caller */
    int64_t dim[3];      /* extents, each >= 1 */
    const uint8_t *data; /* points into the parsed buffer */
    size_t bytes;        /* prod(dim) */
} po__idx;

/* Parses buf as an IDX file of rank ndim (1 for labels, 3 for images). Errors start with
 * origin: wrong magic (PO_ERR_FORMAT), element type other than unsigned byte (PO_ERR_FORMAT),
 * a zero extent or a product that overflows or exceeds PO_DATASET_MAX_BYTES (PO_ERR_RANGE),
 * fewer bytes than the extents need (PO_ERR_FORMAT, "truncated"), bytes after them
 * (PO_ERR_FORMAT, "trailing"). */
po_status po__idx_parse(const void *buf, size_t len, int ndim, const char *origin, po__idx *out);

/* Builds a dataset from an images file image (rank 3) and a labels file image (rank 1) held in
 * memory: counts must agree (PO_ERR_FORMAT) and labels be <= 9 (PO_ERR_RANGE). The bytes are
 * copied; the buffers may be freed afterwards. */
po_status po__idx_dataset(const void *images, size_t images_len, const char *images_origin, const void *labels,
                          size_t labels_len, const char *labels_origin, const char *name, po_dataset **out);

/* CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (3x32x32). */
#define PO__CIFAR_PIXELS 3072
#define PO__CIFAR_RECORD (1 + PO__CIFAR_PIXELS)
/* Validates buf as a whole number (>= 1) of records with labels <= 9; *records = the count.
 * When pixels/labels are not NULL, writes records * 3072 pixel bytes and records label bytes
 * there. Errors start with origin: empty or not a multiple of 3073 bytes (PO_ERR_FORMAT,
 * "truncated" or "trailing"), a label > 9 (PO_ERR_RANGE). */
po_status po__cifar_parse(const void *buf, size_t len, const char *origin, int64_t *records, uint8_t *pixels,
                          uint8_t *labels);

/* Text windows: the windows [*first, *first + *count) of a file of `size` bytes form `split`
 * (see data.h). PO_ERR_RANGE (message starting with origin) when size < seq + 1, seq < 1, or
 * the split would need more than PO_DATASET_MAX_BYTES. */
po_status po__text_windows(uint64_t size, int64_t seq, po_data_split split, const char *origin, int64_t *first,
                           int64_t *count);

/* Readers behind po_dataset_open. dir/path as given in the spec; name = the whole spec. */
po_status po__idx_open(const char *dir, po_data_split split, const char *name, po_dataset **out);
po_status po__cifar_open(const char *dir, po_data_split split, const char *name, po_dataset **out);
po_status po__text_open(const char *path, po_data_split split, int64_t seq, const char *name, po_dataset **out);
po_status po__safetensors_open(const char *path, po_data_split split, const char *name, po_dataset **out);

#endif

/* libFuzzer target for the IDX reader. An input is an images file (idx3-ubyte) followed by its
 * labels file (idx1-ubyte), or either alone, plain or gzip: any byte string must give a clean
 * one-line error or a dataset whose every sample scales into [0, 1] with a label in 0..9. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(void) {
    if (strchr(po_last_error(), '\n')) __builtin_trap();
}

static void check_parse(const uint8_t *data, size_t size, int ndim) {
    po__idx f;
    if (po__idx_parse(data, size, ndim, "fuzz", &f) != PO_OK) {
        one_line();
        return;
    }
    uint64_t total = 1;
    for (int i = 0; i < ndim; i++)
        total *= (uint64_t)f.dim[i];
    size_t header = 4 + 4 * (size_t)ndim;
    if (f.ndim != ndim || f.bytes != total || f.data != data + header || header + f.bytes != size) __builtin_trap();
}

/* images = the prefix the header describes, labels = the rest. */
static void check_pair(const uint8_t *data, size_t size) {
    size_t split = size;
    if (size >= 16) {
        uint64_t n = 1;
        for (int i = 0; i < 3; i++)
            n *= (uint64_t)data[4 + 4 * i] << 24 | (uint64_t)data[5 + 4 * i] << 16 | (uint64_t)data[6 + 4 * i] << 8 |
                 data[7 + 4 * i];
        if (n <= size - 16) split = 16 + (size_t)n;
    }
    po_dataset *d = NULL;
    if (po__idx_dataset(data, split, "fuzz-images", data + split, size - split, "fuzz-labels", "fuzz", &d)) {
        one_line();
        return;
    }
    int64_t n = po_dataset_size(d), sx = po_shape_numel((po_shape[]){po_dataset_sample_shape(d)});
    if (n < 1 || (uint64_t)n * (uint64_t)sx + 16 > size) __builtin_trap();
    float *x = malloc((size_t)(n * sx) * sizeof *x);
    int64_t *y = malloc((size_t)n * sizeof *y), *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++)
        idx[i] = n - 1 - i;
    po__dataset_fill(d, idx, n, x, y);
    for (int64_t i = 0; i < n * sx; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) __builtin_trap();
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] > 9) __builtin_trap();
    free(x);
    free(y);
    free(idx);
    po_dataset_free(d);
}

static void check_all(const uint8_t *data, size_t size) {
    check_parse(data, size, 3);
    check_parse(data, size, 1);
    check_pair(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_all(data, size);
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        uint8_t *out = NULL;
        size_t len = 0;
        if (po__gunzip(data, size, 1 << 20, "fuzz.gz", &out, &len) != PO_OK) {
            one_line();
            if (out) __builtin_trap();
            return 0;
        }
        if (len > 1 << 20) __builtin_trap();
        check_all(out, len);
        free(out);
    }
    return 0;
}

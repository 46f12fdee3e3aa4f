/* libFuzzer target for the safetensors reader: any byte string must give either a clean error
 * or a file whose every tensor and metadata entry can be read back. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "paropt/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    po_st_file *f = NULL;
    if (po_st_parse(data, size, &f) != PO_OK) {
        /* Messages must be one line. */
        if (strchr(po_last_error(), '\n')) __builtin_trap();
        return 0;
    }
    volatile uint64_t sink = 0;
    for (int i = 0; i < po_st_count(f); i++) {
        const char *name = po_st_name(f, i);
        if (!name || po_st_find(f, name) != i) __builtin_trap();
        po_shape s = po_st_shape(f, i);
        po_tensor *t = NULL;
        if (po_st_tensor(f, i, &t) != PO_OK) continue; /* only out of memory may fail here */
        if (t->dtype != po_st_dtype(f, i) || !po_shape_equal(&t->shape, &s)) __builtin_trap();
        size_t bytes = (size_t)po_tensor_numel(t) * po_dtype_size(t->dtype);
        /* Touch every byte so ASan checks the whole copy. */
        for (size_t b = 0; b < bytes; b++)
            sink += ((const unsigned char *)t->data)[b];
        po_tensor_free(t);
    }
    const char *meta_keys[] = {"format", "config", "", "__metadata__"};
    for (size_t k = 0; k < sizeof meta_keys / sizeof *meta_keys; k++) {
        const char *v = po_st_meta(f, meta_keys[k]);
        if (v) sink += strlen(v);
    }
    (void)sink;
    po_st_free(f);
    return 0;
}

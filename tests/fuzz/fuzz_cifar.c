/* libFuzzer target for the CIFAR-10 binary-batch reader, plain or gzip: any byte string must
 * give a clean one-line error or records whose labels and pixels are copied exactly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size) {
    int64_t n = -1;
    if (po__cifar_parse(data, size, "fuzz", &n, NULL, NULL) != PO_OK) {
        if (strchr(po_last_error(), '\n') || n != 0) __builtin_trap();
        return;
    }
    if (n < 1 || (size_t)n * PO__CIFAR_RECORD != size) __builtin_trap();
    uint8_t *pixels = malloc((size_t)n * PO__CIFAR_PIXELS), *labels = malloc((size_t)n);
    int64_t m = 0;
    if (po__cifar_parse(data, size, "fuzz", &m, pixels, labels) != PO_OK || m != n) __builtin_trap();
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *rec = data + (size_t)r * PO__CIFAR_RECORD;
        if (labels[r] != rec[0] || labels[r] > 9) __builtin_trap();
        if (memcmp(pixels + (size_t)r * PO__CIFAR_PIXELS, rec + 1, PO__CIFAR_PIXELS)) __builtin_trap();
    }
    free(pixels);
    free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        uint8_t *out = NULL;
        size_t len = 0;
        if (po__gunzip(data, size, 1 << 20, "fuzz.gz", &out, &len) != PO_OK) {
            if (strchr(po_last_error(), '\n') || out) __builtin_trap();
            return 0;
        }
        check(out, len);
        free(out);
    }
    return 0;
}

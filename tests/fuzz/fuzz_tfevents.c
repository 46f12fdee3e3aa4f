/* libFuzzer target for the TensorBoard events reader: any byte string must give either a clean
 * one-line error or events whose tags are readable strings. The reader takes a path, so each input
 * goes through a file of this process's own. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "paropt/tfevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static po_status on_event(void *ctx, double wall_time, int64_t step, const char *file_version, const char *tag,
                          float value) {
    volatile size_t *sink = ctx;
    *sink += (size_t)step + (wall_time > 0) + (value > 0);
    if (file_version) *sink += strlen(file_version);
    if (tag) *sink += strlen(tag);
    return PO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_tfevents.%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    volatile size_t sink = 0;
    if (po_tfevents_read(path, on_event, (void *)&sink) != PO_OK && strchr(po_last_error(), '\n')) __builtin_trap();
    return 0;
}

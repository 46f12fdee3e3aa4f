/* CIFAR-10 binary batches: 1 label byte + 3x32x32 channel-major pixels per record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/readers.h"

po_status po__cifar_parse(const void *buf, size_t len, const char *origin, int64_t *records, uint8_t *pixels,
                          uint8_t *labels) {
    *records = 0;
    const uint8_t *b = buf;
    if (len == 0)
        return po_fail(PO_ERR_FORMAT, "%s: empty file, expected records of %d bytes", origin, PO__CIFAR_RECORD);
    if (len % PO__CIFAR_RECORD)
        return po_fail(PO_ERR_FORMAT,
                       "%s: %zu bytes is not a whole number of %d-byte records (truncated record or %zu trailing "
                       "bytes)",
                       origin, len, PO__CIFAR_RECORD, len % PO__CIFAR_RECORD);
    size_t n = len / PO__CIFAR_RECORD;
    for (size_t r = 0; r < n; r++) {
        const uint8_t *rec = b + r * PO__CIFAR_RECORD;
        if (rec[0] > 9) return po_fail(PO_ERR_RANGE, "%s: label %u of record %zu is outside 0..9", origin, rec[0], r);
        if (labels) labels[r] = rec[0];
        if (pixels) memcpy(pixels + r * PO__CIFAR_PIXELS, rec + 1, PO__CIFAR_PIXELS);
    }
    *records = (int64_t)n;
    return PO_OK;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

po_status po__cifar_open(const char *dir, po_data_split split, const char *name, po_dataset **out) {
    *out = NULL;
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    const char *const *files = split == PO_SPLIT_TRAIN ? train : test;
    int nfiles = split == PO_SPLIT_TRAIN ? 5 : 1;
    /* The official tarball unpacks into cifar-10-batches-bin/; accept DIR or its parent. */
    char base[4096], path[4096];
    if (strlen(dir) >= sizeof base) return po_fail(PO_ERR_INVALID_ARG, "%.64s...: path too long", dir);
    memcpy(base, dir, strlen(dir) + 1);
    po_status st = po__path_join(path, sizeof path, base, files[0]);
    if (st) return st;
    if (!exists(path)) {
        if ((st = po__path_join(base, sizeof base, dir, "cifar-10-batches-bin"))) return st;
        if ((st = po__path_join(path, sizeof path, base, files[0]))) return st;
        if (!exists(path))
            return po_fail(PO_ERR_IO, "%s/%s: no such file (nor in %s/cifar-10-batches-bin)", dir, files[0], dir);
    }
    po_dataset *d = po__dataset_alloc(PO__DS_IMAGE, name, path);
    if (!d) return PO_ERR_NO_MEMORY;
    d->sample = PO_SHAPE(3, 32, 32);
    d->target.ndim = 0;
    d->dtype = PO_F32;
    d->classes = 10;
    d->classes_known = true;
    for (int f = 0; f < nfiles && !st; f++) {
        if ((st = po__path_join(path, sizeof path, base, files[f]))) break;
        uint8_t *buf;
        size_t len;
        int64_t n;
        if ((st = po__read_file(path, PO_DATASET_MAX_BYTES, &buf, &len))) break;
        st = po__cifar_parse(buf, len, path, &n, NULL, NULL); /* validate before growing */
        if (!st) {
            size_t total = (size_t)(d->n + n);
            uint8_t *p = realloc(d->pixels, total * PO__CIFAR_PIXELS), *l = p ? realloc(d->labels, total) : NULL;
            if (p) d->pixels = p;
            if (l) d->labels = l;
            if (!p || !l)
                st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for %zu images", path, total);
            else
                st = po__cifar_parse(buf, len, path, &n, d->pixels + (size_t)d->n * PO__CIFAR_PIXELS, d->labels + d->n);
            if (!st) d->n += n;
        }
        free(buf);
    }
    if (st) {
        po_dataset_free(d);
        return st;
    }
    *out = d;
    return PO_OK;
}

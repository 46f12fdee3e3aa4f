/* IDX files (the MNIST family): big-endian header, unsigned-byte images and labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/readers.h"

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

po_status po__idx_parse(const void *buf, size_t len, int ndim, const char *origin, po__idx *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *b = buf;
    const char *kind = ndim == 1 ? "labels (idx1-ubyte)" : "images (idx3-ubyte)";
    uint32_t want = 0x00000800u | (uint32_t)ndim;
    if (ndim != 1 && ndim != 3) return po_fail(PO_ERR_INVALID_ARG, "%s: IDX rank must be 1 or 3", origin);
    if (len < 4) return po_fail(PO_ERR_FORMAT, "%s: %zu bytes, too short for an IDX header (truncated)", origin, len);
    uint32_t magic = be32(b);
    if (magic != want)
        return po_fail(PO_ERR_FORMAT, "%s: wrong magic 0x%08x, expected 0x%08x for IDX %s", origin, magic, want, kind);
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < header) return po_fail(PO_ERR_FORMAT, "%s: truncated IDX header (%zu of %zu bytes)", origin, len, header);
    uint64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        uint32_t e = be32(b + 4 + 4 * i);
        if (e == 0) return po_fail(PO_ERR_RANGE, "%s: IDX dimension %d is 0", origin, i);
        /* Each extent < 2^32 and the running product <= the limit (2^32), so no overflow. */
        total *= e;
        if (total > PO_DATASET_MAX_BYTES) {
            char dims[64] = "";
            for (int k = 0; k < ndim; k++)
                snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%u", k ? " x " : "", be32(b + 4 + 4 * k));
            return po_fail(PO_ERR_RANGE, "%s: IDX dimensions %s exceed %llu bytes", origin, dims,
                           (unsigned long long)PO_DATASET_MAX_BYTES);
        }
        out->dim[i] = e;
    }
    size_t have = len - header;
    if (have < total)
        return po_fail(PO_ERR_FORMAT, "%s: truncated: the IDX dimensions need %llu data bytes, the file has %zu",
                       origin, (unsigned long long)total, have);
    if (have > total)
        return po_fail(PO_ERR_FORMAT, "%s: %llu trailing bytes after the IDX data", origin,
                       (unsigned long long)(have - total));
    out->ndim = ndim;
    out->data = b + header;
    out->bytes = (size_t)total;
    return PO_OK;
}

po_status po__idx_dataset(const void *images, size_t images_len, const char *images_origin, const void *labels,
                          size_t labels_len, const char *labels_origin, const char *name, po_dataset **out) {
    *out = NULL;
    po__idx im, lb;
    po_status st = po__idx_parse(images, images_len, 3, images_origin, &im);
    if (st) return st;
    if ((st = po__idx_parse(labels, labels_len, 1, labels_origin, &lb))) return st;
    if (im.dim[0] != lb.dim[0])
        return po_fail(PO_ERR_FORMAT, "%s: %lld images, but %s has %lld labels", images_origin, (long long)im.dim[0],
                       labels_origin, (long long)lb.dim[0]);
    for (size_t i = 0; i < lb.bytes; i++)
        if (lb.data[i] > 9)
            return po_fail(PO_ERR_RANGE, "%s: label %u at position %zu is outside 0..9", labels_origin, lb.data[i], i);
    po_dataset *d = po__dataset_alloc(PO__DS_IMAGE, name, images_origin);
    if (!d) return PO_ERR_NO_MEMORY;
    d->n = im.dim[0];
    d->sample = PO_SHAPE(1, im.dim[1], im.dim[2]);
    d->target.ndim = 0;
    d->dtype = PO_F32;
    d->classes = 10;
    d->classes_known = true;
    d->pixels = malloc(im.bytes);
    d->labels = malloc(lb.bytes);
    if (!d->pixels || !d->labels) {
        po_dataset_free(d);
        return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for %zu pixels", images_origin, im.bytes);
    }
    memcpy(d->pixels, im.data, im.bytes);
    memcpy(d->labels, lb.data, lb.bytes);
    *out = d;
    return PO_OK;
}

/* DIR/BASE or, failing that, DIR/BASE.gz into path. */
static po_status find(const char *dir, const char *base, char *path, size_t size) {
    struct stat sb;
    char gz[128];
    snprintf(gz, sizeof gz, "%s.gz", base);
    po_status st = po__path_join(path, size, dir, gz); /* the longer name: both fit after this */
    if (st) return st;
    po__path_join(path, size, dir, base);
    if (stat(path, &sb) == 0) return PO_OK;
    po__path_join(path, size, dir, gz);
    if (stat(path, &sb) == 0) return PO_OK;
    return po_fail(PO_ERR_IO, "%s/%s: no such file (nor %s.gz)", dir, base, base);
}

po_status po__idx_open(const char *dir, po_data_split split, const char *name, po_dataset **out) {
    *out = NULL;
    const char *prefix = split == PO_SPLIT_TRAIN ? "train" : "t10k";
    char base[64], ipath[4096], lpath[4096];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    po_status st = find(dir, base, ipath, sizeof ipath);
    if (st) return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if ((st = find(dir, base, lpath, sizeof lpath))) return st;
    uint8_t *ib = NULL, *lb = NULL;
    size_t ilen = 0, llen = 0;
    st = po__read_file(ipath, PO_DATASET_MAX_BYTES, &ib, &ilen);
    if (!st) st = po__read_file(lpath, PO_DATASET_MAX_BYTES, &lb, &llen);
    if (!st) st = po__idx_dataset(ib, ilen, ipath, lb, llen, lpath, name, out);
    free(ib);
    free(lb);
    return st;
}

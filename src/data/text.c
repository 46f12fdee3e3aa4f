/* Byte-level text: every byte a token; samples are non-overlapping windows of seq inputs plus
 * the one byte that follows them. Only the split's bytes are read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/readers.h"

po_status po__text_windows(uint64_t size, int64_t seq, po_data_split split, const char *origin, int64_t *first,
                           int64_t *count) {
    *first = *count = 0;
    if (seq < 1) return po_fail(PO_ERR_RANGE, "%s: window length seq = %lld must be positive", origin, (long long)seq);
    if (size < (uint64_t)seq + 1)
        return po_fail(PO_ERR_RANGE, "%s: %llu bytes, shorter than one window of seq + 1 = %llu bytes", origin,
                       (unsigned long long)size, (unsigned long long)seq + 1);
    uint64_t w = (size - 1) / (uint64_t)seq, train = w / 10 * 9 + w % 10 * 9 / 10; /* floor(0.9 w) */
    if (train < 1) train = 1;
    if (train > w - 1) train = w - 1;
    uint64_t f = 0, c = 1; /* one window: both splits are it (documented in data.h) */
    if (w > 1) {
        f = split == PO_SPLIT_TRAIN ? 0 : train;
        c = split == PO_SPLIT_TRAIN ? train : w - train;
    }
    if (c > (PO_DATASET_MAX_BYTES - 1) / (uint64_t)seq)
        return po_fail(PO_ERR_RANGE, "%s: the %s split has %llu windows of %lld bytes, more than %llu bytes", origin,
                       split == PO_SPLIT_TRAIN ? "train" : "test", (unsigned long long)c, (long long)seq,
                       (unsigned long long)PO_DATASET_MAX_BYTES);
    *first = (int64_t)f; /* f * seq < size, which fits off_t for any real file */
    *count = (int64_t)c;
    return PO_OK;
}

po_status po__text_open(const char *path, po_data_split split, int64_t seq, const char *name, po_dataset **out) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return po_fail(PO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    po_status st = PO_OK;
    int64_t first = 0, count = 0;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) st = po_fail(PO_ERR_IO, "%s: not a regular file", path);
    if (!st) st = po__text_windows((uint64_t)sb.st_size, seq, split, path, &first, &count);
    po_dataset *d = st ? NULL : po__dataset_alloc(PO__DS_TEXT, name, path);
    if (!st && !d) st = PO_ERR_NO_MEMORY;
    if (!st) {
        size_t bytes = (size_t)count * (size_t)seq + 1;
        d->n = count;
        d->sample = PO_SHAPE(seq);
        d->target = PO_SHAPE(seq);
        d->dtype = PO_I64;
        d->classes = 256;
        d->classes_known = true;
        d->text = malloc(bytes);
        if (!d->text)
            st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", path, bytes);
        else if (fseeko(fp, (off_t)first * (off_t)seq, SEEK_SET) != 0)
            st = po_fail(PO_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
        else if (fread(d->text, 1, bytes, fp) != bytes)
            st = po_fail(PO_ERR_IO, "%s: short read (the file changed while being read?)", path);
    }
    fclose(fp);
    if (st) {
        po_dataset_free(d);
        return st;
    }
    *out = d;
    return PO_OK;
}

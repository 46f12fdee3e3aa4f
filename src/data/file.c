/* Whole-file reading with transparent gzip (zlib's inflate, so a corrupt or truncated stream
 * is an error and the output buffer only grows as real data comes out). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/readers.h"

/* max + 1 as a size, saturated: the buffer may hold one byte past max, which is how "more than
 * max" is seen without a separate probe. */
static size_t limit_plus_one(uint64_t max) { return max >= SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)max + 1; }

po_status po__gunzip(const void *buf, size_t len, uint64_t max, const char *origin, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    const uint8_t *in = buf;
    size_t limit = limit_plus_one(max);
    /* Start near a typical compression ratio of the bytes we actually have; never from a size
     * field in the stream (the gzip trailer's ISIZE can lie). */
    size_t cap = len < limit / 4 ? len * 4 : limit;
    if (cap < 65536) cap = limit < 65536 ? limit : 65536;
    uint8_t *o = malloc(cap);
    if (!o) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory inflating gzip data", origin);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(o);
        return po_fail(PO_ERR_NO_MEMORY, "%s: cannot start zlib's inflate", origin);
    }
    size_t in_pos = 0, n = 0;
    po_status st = PO_OK;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < len) {
            size_t chunk = len - in_pos < UINT_MAX ? len - in_pos : UINT_MAX;
            zs.next_in = (Bytef *)(uintptr_t)(in + in_pos); /* zlib does not write through it */
            zs.avail_in = (uInt)chunk;
            in_pos += chunk;
        }
        if (n == cap) {
            if (cap >= limit) {
                st = po_fail(PO_ERR_RANGE, "%s: inflates to more than %llu bytes", origin, (unsigned long long)max);
                break;
            }
            size_t grown = cap > limit / 2 ? limit : cap * 2;
            uint8_t *g = realloc(o, grown);
            if (!g) {
                st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory inflating gzip data (%zu bytes)", origin, grown);
                break;
            }
            o = g;
            cap = grown;
        }
        size_t room = cap - n < UINT_MAX ? cap - n : UINT_MAX;
        zs.next_out = o + n;
        zs.avail_out = (uInt)room;
        int ret = inflate(&zs, Z_NO_FLUSH);
        n += room - zs.avail_out;
        if (ret == Z_STREAM_END) {
            if (n > max) {
                st = po_fail(PO_ERR_RANGE, "%s: inflates to more than %llu bytes", origin, (unsigned long long)max);
                break;
            }
            size_t rest = zs.avail_in + (len - in_pos);
            if (rest == 0) break;
            const uint8_t *p = zs.avail_in ? zs.next_in : in + in_pos;
            /* gzip(1) writes concatenated members for `cat a.gz b.gz`; read them all. */
            if (rest >= 2 && p[0] == 0x1f && p[1] == 0x8b) { /* chunks are contiguous: p[1] is in buf */
                inflateReset(&zs);
                continue;
            }
            st = po_fail(PO_ERR_FORMAT, "%s: %zu trailing bytes after the gzip stream", origin, rest);
            break;
        }
        if (ret == Z_OK) continue;
        if (ret == Z_BUF_ERROR) {
            if (zs.avail_out == 0) continue; /* out of room: grow */
            /* Room left and input refilled above, yet no progress: the input has ended. */
            st = po_fail(PO_ERR_FORMAT, "%s: truncated gzip stream (ends after %zu inflated bytes)", origin, n);
            break;
        }
        if (ret == Z_MEM_ERROR) {
            st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory in zlib", origin);
            break;
        }
        st = po_fail(PO_ERR_FORMAT, "%s: corrupt gzip data (%s)", origin, zs.msg ? zs.msg : "bad stream");
        break;
    }
    inflateEnd(&zs);
    if (st) {
        free(o);
        return st;
    }
    uint8_t *fit = realloc(o, n ? n : 1); /* give back the growth slack */
    *out = fit ? fit : o;
    *out_len = n;
    return PO_OK;
}

po_status po__path_join(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return po_fail(PO_ERR_INVALID_ARG, "%s/%s: path too long", dir, name);
    return PO_OK;
}

po_status po__read_file(const char *path, uint64_t max, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return po_fail(PO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return po_fail(PO_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max || (uint64_t)sb.st_size > SIZE_MAX - 1) {
        fclose(fp);
        return po_fail(PO_ERR_RANGE, "%s: %lld bytes, more than the %llu a dataset file may hold", path,
                       (long long)sb.st_size, (unsigned long long)max);
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(fp);
        return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, fp);
    int err = ferror(fp);
    fclose(fp);
    if (got != size || err) {
        free(buf);
        return po_fail(PO_ERR_IO, "%s: read %zu of %zu bytes%s", path, got, size, err ? ": read error" : "");
    }
    if (size >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        po_status st = po__gunzip(buf, size, max, path, out, len);
        free(buf);
        return st;
    }
    *out = buf;
    *len = size;
    return PO_OK;
}

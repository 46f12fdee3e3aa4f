/* TensorBoard event files: TFRecord framing around hand-encoded tensorflow.Event protocol
 * buffers (the few fields a scalar log needs), and a reader that checks every CRC before it
 * decodes a byte of a record. Wire format: https://protobuf.dev/programming-guides/encoding/ */
#include "paropt/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_VERSION "brain.Event:2"
#define HEADER_LEN   12u        /* uint64 length + uint32 masked CRC of it */
#define FOOTER_LEN   4u         /* uint32 masked CRC of the data */
#define MAX_TAG_LEN  (1u << 30) /* keeps every size computation below far from overflow */
#define MAX_SUFFIX   100000     /* ".1" ... before giving up on finding a free file name */
#define MAX_DEPTH    64         /* nesting of groups skipped in unknown fields */

/* Protocol buffer wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

struct po_tfevents {
    FILE *fp;
    char *path;
    int failed; /* a write failed: the file may end in a partial record */
};

/* ---- encoding ---- */

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static unsigned char *put_varint(unsigned char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static unsigned char *put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_key(unsigned char *p, unsigned field, unsigned wire) {
    return put_varint(p, (uint64_t)field << 3 | wire);
}

static unsigned char *put_bytes(unsigned char *p, unsigned field, const void *s, size_t n) {
    p = put_key(p, field, WT_LEN);
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

static uint64_t double_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Size of an Event's fields 1 and 2 (proto3 leaves out zero scalars), and their encoding. */
static size_t event_head_len(double wall_time, int64_t step) {
    return (double_bits(wall_time) ? 9 : 0) + (step ? 1 + varint_len((uint64_t)step) : 0);
}

static unsigned char *put_event_head(unsigned char *p, double wall_time, int64_t step) {
    if (double_bits(wall_time)) {
        p = put_key(p, 1, WT_I64);
        p = put_le64(p, double_bits(wall_time));
    }
    if (step) {
        p = put_key(p, 2, WT_VARINT);
        p = put_varint(p, (uint64_t)step);
    }
    return p;
}

/* Frames the event data held at rec + HEADER_LEN (event_len bytes; rec has room for the
 * header and the footer) and writes the whole record with one fwrite. */
static po_status write_record(po_tfevents *w, unsigned char *rec, size_t event_len) {
    if (w->failed) return po_fail(PO_ERR_IO, "%s: an earlier write failed; the file is no longer written", w->path);
    put_le64(rec, event_len);
    put_le32(rec + 8, po_crc32c_masked(rec, 8));
    put_le32(rec + HEADER_LEN + event_len, po_crc32c_masked(rec + HEADER_LEN, event_len));
    const size_t total = HEADER_LEN + event_len + FOOTER_LEN;
    errno = 0;
    if (fwrite(rec, 1, total, w->fp) != total) {
        w->failed = 1;
        return po_fail(PO_ERR_IO, "%s: cannot write: %s", w->path, errno ? strerror(errno) : "short write");
    }
    return PO_OK;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), as protobuf
 * parsers demand of string fields. */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

/* ---- writer ---- */

/* mkdir -p: creates every missing component of dir. An existing non-directory is left for
 * the open that follows to report. */
static po_status make_dirs(const char *dir) {
    char *p = strdup(dir);
    if (!p) return po_fail(PO_ERR_NO_MEMORY, "out of memory for the path %s", dir);
    po_status st = PO_OK;
    for (char *s = p + 1;; s++) {
        const char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            st = po_fail(PO_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
            break;
        }
        *s = c;
        if (!c) break;
    }
    free(p);
    return st;
}

static void host_name(char *buf, size_t size) {
    if (gethostname(buf, size) != 0) buf[0] = '\0';
    buf[size - 1] = '\0';
    if (!buf[0]) snprintf(buf, size, "localhost");
    for (char *c = buf; *c; c++)
        if (*c == '/') *c = '_';
}

/* Creates a file that did not exist (O_EXCL), trying base, base.1, base.2, ... */
static po_status create_unique(const char *base, char **path_out, int *fd_out) {
    const size_t size = strlen(base) + 16;
    char *path = malloc(size);
    if (!path) return po_fail(PO_ERR_NO_MEMORY, "out of memory for the path %s", base);
    for (int k = 0; k <= MAX_SUFFIX; k++) {
        if (k)
            snprintf(path, size, "%s.%d", base, k);
        else
            snprintf(path, size, "%s", base);
        const int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *path_out = path;
            *fd_out = fd;
            return PO_OK;
        }
        if (errno != EEXIST) {
            po_status st = po_fail(PO_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            free(path);
            return st;
        }
    }
    free(path);
    return po_fail(PO_ERR_IO, "%s: that name and %d suffixed ones are all taken", base, MAX_SUFFIX);
}

po_status po_tfevents_open(const char *dir, po_tfevents **out) {
    if (out) *out = NULL;
    if (!out || !dir || !dir[0])
        return po_fail(PO_ERR_INVALID_ARG, "po_tfevents_open: %s", !out ? "out is NULL" : "empty directory name");
    po_status st = make_dirs(dir);
    if (st) return st;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char host[256];
    host_name(host, sizeof host);
    const int n = snprintf(NULL, 0, "%s/events.out.tfevents.%lld.%s", dir, (long long)now.tv_sec, host);
    char *base = malloc((size_t)n + 1);
    po_tfevents *w = calloc(1, sizeof *w);
    if (!base || !w) {
        free(base);
        free(w);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory opening an event file in %s", dir);
    }
    snprintf(base, (size_t)n + 1, "%s/events.out.tfevents.%lld.%s", dir, (long long)now.tv_sec, host);
    int fd = -1;
    st = create_unique(base, &w->path, &fd);
    free(base);
    if (st) {
        free(w);
        return st;
    }
    w->fp = fdopen(fd, "wb");
    if (!w->fp) {
        st = po_fail(PO_ERR_IO, "%s: cannot open: %s", w->path, strerror(errno));
        close(fd);
        goto fail;
    }

    const double wall_time = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
    unsigned char rec[HEADER_LEN + 9 + 2 + sizeof FILE_VERSION + FOOTER_LEN];
    unsigned char *p = put_event_head(rec + HEADER_LEN, wall_time, 0);
    p = put_bytes(p, 3, FILE_VERSION, strlen(FILE_VERSION));
    st = write_record(w, rec, (size_t)(p - (rec + HEADER_LEN)));
    if (!st) st = po_tfevents_flush(w);
    if (!st) {
        *out = w;
        return PO_OK;
    }
    fclose(w->fp);
fail:
    unlink(w->path);
    free(w->path);
    free(w);
    return st;
}

const char *po_tfevents_path(const po_tfevents *w) { return w ? w->path : NULL; }

po_status po_tfevents_scalar(po_tfevents *w, const char *tag, int64_t step, double wall_time, float value) {
    if (!w || !tag) return po_fail(PO_ERR_INVALID_ARG, "po_tfevents_scalar: %s is NULL", !w ? "the writer" : "tag");
    const size_t tag_len = strlen(tag);
    if (tag_len == 0) return po_fail(PO_ERR_INVALID_ARG, "%s: empty scalar tag", w->path);
    if (tag_len >= MAX_TAG_LEN)
        return po_fail(PO_ERR_INVALID_ARG, "%s: scalar tag of %zu bytes is too long", w->path, tag_len);
    if (!valid_utf8((const unsigned char *)tag, tag_len))
        return po_fail(PO_ERR_INVALID_ARG, "%s: scalar tag is not valid UTF-8", w->path);

    /* Event { head; 5: Summary { 1: Value { 1: tag; 2: simple_value } } } */
    const size_t value_len = 1 + varint_len(tag_len) + tag_len + 5;
    const size_t summary_len = 1 + varint_len(value_len) + value_len;
    const size_t event_len = event_head_len(wall_time, step) + 1 + varint_len(summary_len) + summary_len;
    const size_t total = HEADER_LEN + event_len + FOOTER_LEN;
    unsigned char small[256];
    unsigned char *rec = total <= sizeof small ? small : malloc(total);
    if (!rec) return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for a %zu-byte record", w->path, total);

    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    unsigned char *p = put_event_head(rec + HEADER_LEN, wall_time, step);
    p = put_key(p, 5, WT_LEN);
    p = put_varint(p, summary_len);
    p = put_key(p, 1, WT_LEN);
    p = put_varint(p, value_len);
    p = put_bytes(p, 1, tag, tag_len);
    p = put_key(p, 2, WT_I32);
    p = put_le32(p, bits);
    (void)p; /* p == rec + HEADER_LEN + event_len: the sizes above are the encoding's */
    const po_status st = write_record(w, rec, event_len);
    if (rec != small) free(rec);
    return st;
}

po_status po_tfevents_flush(po_tfevents *w) {
    if (!w) return po_fail(PO_ERR_INVALID_ARG, "po_tfevents_flush: the writer is NULL");
    if (w->failed) return po_fail(PO_ERR_IO, "%s: an earlier write failed; the file is no longer written", w->path);
    if (fflush(w->fp) != 0) {
        w->failed = 1;
        return po_fail(PO_ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
    }
    return PO_OK;
}

void po_tfevents_close(po_tfevents *w) {
    if (!w) return;
    fclose(w->fp);
    free(w->path);
    free(w);
}

/* ---- reader ---- */

typedef struct {
    const unsigned char *s;
    size_t n;
    int present;
} pb_str;

static uint64_t get_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Each decoder returns NULL on success or a short description of what is wrong. */
static const char *get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p == end) return "varint runs past the end";
        const unsigned char b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return NULL;
        }
    }
    return "varint longer than 10 bytes";
}

static const char *get_key(const unsigned char **p, const unsigned char *end, uint32_t *field, unsigned *wire) {
    uint64_t key;
    const char *err = get_varint(p, end, &key);
    if (err) return err;
    if (key >> 3 == 0 || key >> 3 > 0x1FFFFFFF) return "field number out of range";
    *field = (uint32_t)(key >> 3);
    *wire = (unsigned)(key & 7);
    return NULL;
}

/* Advances *p past the payload of a field with this wire type (for a start-group, past the
 * matching end-group). */
static const char *skip_field(const unsigned char **p, const unsigned char *end, uint32_t field, unsigned wire,
                              int depth) {
    uint64_t n;
    switch (wire) {
    case WT_VARINT: return get_varint(p, end, &n);
    case WT_I64:
        if ((size_t)(end - *p) < 8) return "fixed64 runs past the end";
        *p += 8;
        return NULL;
    case WT_I32:
        if ((size_t)(end - *p) < 4) return "fixed32 runs past the end";
        *p += 4;
        return NULL;
    case WT_LEN: {
        const char *err = get_varint(p, end, &n);
        if (err) return err;
        if (n > (uint64_t)(end - *p)) return "length-delimited field runs past the end";
        *p += n;
        return NULL;
    }
    case WT_SGROUP:
        if (depth >= MAX_DEPTH) return "groups nested too deeply";
        for (;;) {
            uint32_t f;
            unsigned w;
            const char *err = get_key(p, end, &f, &w);
            if (err) return *p == end ? "unterminated group" : err;
            if (w == WT_EGROUP) return f == field ? NULL : "mismatched end-group";
            if ((err = skip_field(p, end, f, w, depth + 1))) return err;
        }
    case WT_EGROUP: return "end-group without a start-group";
    default: return "invalid wire type";
    }
}

/* Reads a length-delimited payload. */
static const char *get_len(const unsigned char **p, const unsigned char *end, pb_str *out) {
    uint64_t n;
    const char *err = get_varint(p, end, &n);
    if (err) return err;
    if (n > (uint64_t)(end - *p)) return "length-delimited field runs past the end";
    out->s = *p;
    out->n = (size_t)n;
    out->present = 1;
    *p += n;
    return NULL;
}

typedef struct {
    const unsigned char *data; /* the record's Event */
    size_t len;
    double wall_time;
    int64_t step;
    pb_str file_version;
    size_t n_values;
} event_view;

typedef struct {
    po_tfevent_cb cb;
    void *ctx;
    char *scratch;  /* room for file_version and one tag, each NUL-terminated */
    size_t fv_len;  /* file_version occupies scratch[0 .. fv_len] */
    const char *fv; /* scratch or NULL */
} emitter;

static const char *walk_value(const unsigned char *p, const unsigned char *end, pb_str *tag, float *value) {
    while (p < end) {
        uint32_t field;
        unsigned wire;
        const char *err = get_key(&p, end, &field, &wire);
        if (err) return err;
        if (field == 1 && wire == WT_LEN) {
            err = get_len(&p, end, tag);
        } else if (field == 2 && wire == WT_I32) {
            if ((size_t)(end - p) < 4) return "simple_value runs past the end";
            const uint32_t bits = get_le32(p);
            memcpy(value, &bits, sizeof *value);
            p += 4;
        } else {
            err = skip_field(&p, end, field, wire, 0);
        }
        if (err) return err;
    }
    return NULL;
}

/* Walks one Summary. With em NULL it only validates and counts the values; otherwise it calls
 * back once per Value (the summary has been validated, so only the callback can fail). */
static const char *walk_summary(const unsigned char *p, const unsigned char *end, event_view *ev, emitter *em,
                                po_status *cb_st) {
    while (p < end) {
        uint32_t field;
        unsigned wire;
        const char *err = get_key(&p, end, &field, &wire);
        if (err) return err;
        if (field != 1 || wire != WT_LEN) {
            if ((err = skip_field(&p, end, field, wire, 0))) return err;
            continue;
        }
        pb_str v;
        if ((err = get_len(&p, end, &v))) return err;
        pb_str tag = {0};
        float value = NAN;
        if ((err = walk_value(v.s, v.s + v.n, &tag, &value))) return err;
        ev->n_values++;
        if (!em) continue;
        char *t = NULL;
        if (tag.present) {
            t = em->scratch + em->fv_len + 1;
            memcpy(t, tag.s, tag.n);
            t[tag.n] = '\0';
        }
        *cb_st = em->cb(em->ctx, ev->wall_time, ev->step, em->fv, t, value);
        if (*cb_st) return NULL;
    }
    return NULL;
}

/* Walks the Event's fields. With em NULL it decodes the scalar fields and validates every
 * summary; otherwise it calls back per Value. */
static const char *walk_event(event_view *ev, emitter *em, po_status *cb_st) {
    const unsigned char *p = ev->data, *end = ev->data + ev->len;
    while (p < end) {
        uint32_t field;
        unsigned wire;
        const char *err = get_key(&p, end, &field, &wire);
        if (err) return err;
        if (field == 5 && wire == WT_LEN) {
            pb_str s;
            if ((err = get_len(&p, end, &s))) return err;
            if ((err = walk_summary(s.s, s.s + s.n, ev, em, cb_st))) return err;
            if (em && *cb_st) return NULL;
        } else if (em) {
            if ((err = skip_field(&p, end, field, wire, 0))) return err;
        } else if (field == 1 && wire == WT_I64) {
            if ((size_t)(end - p) < 8) return "wall_time runs past the end";
            const uint64_t bits = get_le64(p);
            memcpy(&ev->wall_time, &bits, sizeof bits);
            p += 8;
        } else if (field == 2 && wire == WT_VARINT) {
            uint64_t v;
            if ((err = get_varint(&p, end, &v))) return err;
            ev->step = (int64_t)v; /* two's complement, as protobuf encodes negative int64 */
        } else if (field == 3 && wire == WT_LEN) {
            err = get_len(&p, end, &ev->file_version);
        } else {
            err = skip_field(&p, end, field, wire, 0);
        }
        if (err) return err;
    }
    return NULL;
}

/* Decodes one Event and makes its callbacks. */
static po_status decode_event(const char *path, uint64_t index, uint64_t offset, const unsigned char *data, size_t len,
                              char *scratch, po_tfevent_cb cb, void *ctx) {
    event_view ev = {.data = data, .len = len};
    po_status cb_st = PO_OK;
    const char *err = walk_event(&ev, NULL, &cb_st);
    if (err)
        return po_fail(PO_ERR_FORMAT, "%s: record %llu at byte %llu: CRCs match but the data is not a valid Event: %s",
                       path, (unsigned long long)index, (unsigned long long)offset, err);
    emitter em = {.cb = cb, .ctx = ctx, .scratch = scratch};
    if (ev.file_version.present) {
        memcpy(scratch, ev.file_version.s, ev.file_version.n);
        scratch[ev.file_version.n] = '\0';
        em.fv = scratch;
        em.fv_len = ev.file_version.n;
    }
    if (ev.n_values == 0) return cb(ctx, ev.wall_time, ev.step, em.fv, NULL, NAN);
    walk_event(&ev, &em, &cb_st); /* validated above: cannot fail */
    return cb_st;
}

/* Reads up to n bytes; returns how many (short only at end of file or on error). */
static size_t read_some(FILE *fp, void *buf, size_t n) { return n ? fread(buf, 1, n, fp) : 0; }

po_status po_tfevents_read(const char *path, po_tfevent_cb cb, void *ctx) {
    if (!path || !cb) return po_fail(PO_ERR_INVALID_ARG, "po_tfevents_read: %s is NULL", !path ? "path" : "cb");
    FILE *fp = fopen(path, "rb");
    if (!fp) return po_fail(PO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));

    po_status st = PO_OK;
    unsigned char *buf = NULL; /* data + footer of the current record */
    char *scratch = NULL;
    size_t cap = 0, scratch_cap = 0;
    uint64_t offset = 0;
    for (uint64_t index = 1;; index++) {
        unsigned char head[HEADER_LEN];
        const size_t got_head = read_some(fp, head, HEADER_LEN);
        if (got_head < HEADER_LEN) {
            if (ferror(fp))
                st = po_fail(PO_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            else if (got_head)
                st = po_fail(PO_ERR_FORMAT,
                             "%s: truncated: record %llu at byte %llu ends after %zu of its %u header bytes", path,
                             (unsigned long long)index, (unsigned long long)offset, got_head, HEADER_LEN);
            break; /* a clean end of file between records */
        }
        const uint32_t len_crc = po_crc32c_masked(head, 8), stored_len_crc = get_le32(head + 8);
        if (len_crc != stored_len_crc) {
            st = po_fail(PO_ERR_FORMAT,
                         "%s: record %llu at byte %llu: length CRC mismatch (stored 0x%08x, computed 0x%08x)", path,
                         (unsigned long long)index, (unsigned long long)offset, stored_len_crc, len_crc);
            break;
        }
        const uint64_t len = get_le64(head);
        if (len > SIZE_MAX - FOOTER_LEN - 1) {
            st = po_fail(PO_ERR_FORMAT, "%s: record %llu at byte %llu: length %llu is too large", path,
                         (unsigned long long)index, (unsigned long long)offset, (unsigned long long)len);
            break;
        }
        /* The buffer grows with the bytes actually read, so a huge length in a short file
         * costs no huge allocation: it ends as a truncation. */
        const size_t need = (size_t)len + FOOTER_LEN;
        size_t got = 0;
        while (got < need) {
            if (got == cap) {
                size_t ncap = cap < 4096 ? 4096 : cap * 2;
                if (ncap > need || ncap < cap) ncap = need;
                unsigned char *nb = realloc(buf, ncap);
                if (!nb) {
                    st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for record %llu (%llu bytes)", path,
                                 (unsigned long long)index, (unsigned long long)len);
                    break;
                }
                buf = nb;
                cap = ncap;
            }
            const size_t want = (cap < need ? cap : need) - got;
            const size_t n = read_some(fp, buf + got, want);
            got += n;
            if (n < want) break;
        }
        if (st) break;
        if (got < need) {
            if (ferror(fp))
                st = po_fail(PO_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            else if (got < len)
                st =
                    po_fail(PO_ERR_FORMAT,
                            "%s: truncated: record %llu at byte %llu declares %llu data bytes, the file ends after %zu",
                            path, (unsigned long long)index, (unsigned long long)offset, (unsigned long long)len, got);
            else
                st = po_fail(PO_ERR_FORMAT, "%s: truncated: record %llu at byte %llu ends inside its data CRC", path,
                             (unsigned long long)index, (unsigned long long)offset);
            break;
        }
        const uint32_t data_crc = po_crc32c_masked(buf, (size_t)len), stored_data_crc = get_le32(buf + len);
        if (data_crc != stored_data_crc) {
            st = po_fail(PO_ERR_FORMAT,
                         "%s: record %llu at byte %llu: data CRC mismatch (stored 0x%08x, computed 0x%08x)", path,
                         (unsigned long long)index, (unsigned long long)offset, stored_data_crc, data_crc);
            break;
        }
        if (scratch_cap < (size_t)len + 2) {
            char *ns = realloc(scratch, (size_t)len + 2);
            if (!ns) {
                st = po_fail(PO_ERR_NO_MEMORY, "%s: out of memory for record %llu", path, (unsigned long long)index);
                break;
            }
            scratch = ns;
            scratch_cap = (size_t)len + 2;
        }
        if ((st = decode_event(path, index, offset, buf, (size_t)len, scratch, cb, ctx))) break;
        offset += HEADER_LEN + len + FOOTER_LEN;
    }
    free(buf);
    free(scratch);
    fclose(fp);
    return st;
}

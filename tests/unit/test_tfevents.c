/* TensorBoard event files: CRC-32C against published vectors and a bit-by-bit reference, the
 * exact bytes of an encoded Event against a record assembled by hand from the protobuf and
 * TFRecord specifications, write/read round trips, every single-byte corruption and every
 * truncation of a file, unknown fields, malformed protobufs, file naming and argument errors. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "paropt/tfevents.h"
#include "po_test.h"

static char tmp_dir[] = "/tmp/po_test_tfev_XXXXXX";

/* ---- helpers ---- */

/* CRC-32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78),
 * independent of the library's table. */
static uint32_t ref_crc32c(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static uint32_t ref_masked(const unsigned char *p, size_t n) {
    const uint32_t c = ref_crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A fresh empty directory under tmp_dir. */
static const char *fresh_dir(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir, name);
    po_test_remove_tree(buf);
    assert_int_equal(mkdir(buf, 0777), 0);
    return buf;
}

/* Frames an Event's bytes as one TFRecord (using the reference CRC); returns the length. */
static size_t frame(const unsigned char *event, size_t n, unsigned char *out) {
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)n >> (8 * i));
    put32(out + 8, ref_masked(out, 8));
    memcpy(out + 12, event, n);
    put32(out + 12 + n, ref_masked(event, n));
    return n + 16;
}

/* Everything the reader reported. */
typedef struct {
    double wall_time;
    int64_t step;
    char *file_version, *tag;
    float value;
} rec;

typedef struct {
    rec r[64];
    int n;
    int stop_after; /* 0: never */
} events;

static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    char *d = malloc(strlen(s) + 1);
    assert_non_null(d);
    strcpy(d, s);
    return d;
}

static po_status collect(void *ctx, double wall_time, int64_t step, const char *file_version, const char *tag,
                         float value) {
    events *e = ctx;
    if (e->n == (int)(sizeof e->r / sizeof e->r[0])) return po_fail(PO_ERR_RANGE, "too many events for the test");
    e->r[e->n++] = (rec){wall_time, step, dup_or_null(file_version), dup_or_null(tag), value};
    if (e->stop_after && e->n == e->stop_after) return po_fail(PO_ERR_RANGE, "stopped by the test");
    return PO_OK;
}

static void events_clear(events *e) {
    for (int i = 0; i < e->n; i++) {
        free(e->r[i].file_version);
        free(e->r[i].tag);
    }
    e->n = 0;
}

static po_status read_events(const char *path, events *e) {
    events_clear(e);
    return po_tfevents_read(path, collect, e);
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void assert_contains(const char *s, const char *needle) {
    if (!strstr(s, needle)) fail_msg("expected \"%s\" in: %s", needle, s);
}

/* Byte offsets of the record boundaries of a well-formed file (0, ..., len); returns count. */
static int boundaries(const unsigned char *buf, size_t len, size_t *at, int max) {
    int n = 0;
    size_t o = 0;
    at[n++] = 0;
    while (o < len) {
        o += 12 + (size_t)get64(buf + o) + 4;
        assert_true(o <= len && n < max);
        at[n++] = o;
    }
    return n;
}

/* ---- CRC-32C ---- */

static void test_crc32c_vectors(void **state) {
    (void)state;
    assert_int_equal(po_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(ref_crc32c((const unsigned char *)"123456789", 9), 0xE3069283u);
    const unsigned char issue[] = "\x1a\x11"
                                  "CRC test, one two";
    assert_int_equal(sizeof issue - 1, 19);
    assert_int_equal(po_crc32c_masked(issue, 19), 0x5794D08Au);
    assert_int_equal(ref_masked(issue, 19), 0x5794D08Au);
    assert_int_equal(po_crc32c(NULL, 0), 0);

    /* RFC 3720 (iSCSI) appendix B.4. */
    unsigned char b[32];
    memset(b, 0, sizeof b);
    assert_int_equal(po_crc32c(b, 32), 0x8A9136AAu);
    memset(b, 0xFF, sizeof b);
    assert_int_equal(po_crc32c(b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    assert_int_equal(po_crc32c(b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    assert_int_equal(po_crc32c(b, 32), 0x113FDB5Cu);

    /* Every length and offset of a pseudo-random buffer against the bitwise reference. */
    unsigned char r[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof r; i++) {
        x = x * 1664525u + 1013904223u;
        r[i] = (unsigned char)(x >> 24);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof r; n++) {
            assert_int_equal(po_crc32c(r + off, n), ref_crc32c(r + off, n));
            assert_int_equal(po_crc32c_masked(r + off, n), ref_masked(r + off, n));
        }
}

/* ---- exact bytes ---- */

static void test_exact_bytes(void **state) {
    (void)state;
    const char *dir = fresh_dir("exact");
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    po_tfevents *w = NULL;
    assert_int_equal(po_tfevents_open(dir, &w), PO_OK);
    clock_gettime(CLOCK_REALTIME, &t1);
    assert_int_equal(po_tfevents_scalar(w, "loss", 300, 1.5, 0.25f), PO_OK);
    assert_int_equal(po_tfevents_flush(w), PO_OK);
    size_t len;
    unsigned char *buf = po_test_read_file(po_tfevents_path(w), &len);

    /* Record 1: Event { 1: wall_time (fixed64), 3: file_version "brain.Event:2" } = 24 bytes. */
    assert_true(len >= 40);
    const unsigned char head1[8] = {24, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(buf, head1, 8);
    unsigned char crc[4];
    put32(crc, ref_masked(buf, 8));
    assert_memory_equal(buf + 8, crc, 4);
    assert_int_equal(buf[12], 0x09); /* field 1, wire type 1 */
    double wall;
    uint64_t bits = get64(buf + 13);
    memcpy(&wall, &bits, sizeof wall);
    assert_true(wall >= (double)t0.tv_sec && wall <= (double)t1.tv_sec + 1.0);
    const unsigned char fv[] = {0x1a, 0x0d, 'b', 'r', 'a', 'i', 'n', '.', 'E', 'v', 'e', 'n', 't', ':', '2'};
    assert_memory_equal(buf + 21, fv, sizeof fv);
    put32(crc, ref_masked(buf + 12, 24));
    assert_memory_equal(buf + 36, crc, 4);

    /* Record 2, assembled by hand:
     * Event  { 1: wall_time 1.5 = 0x3FF8000000000000, 2: step 300 = varint AC 02,
     *          5: Summary (13 bytes) { 1: Value (11 bytes) { 1: tag "loss", 2: simple_value 0.25f = 0x3E800000 } } }
     * = 27 bytes, framed as length (u64 LE), masked CRC of the length, data, masked CRC. */
    unsigned char expected[43] = {
        0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       /* length 27 */
        0,    0,    0,    0,                                  /* masked CRC of the length, below */
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f, /* wall_time */
        0x10, 0xac, 0x02,                                     /* step */
        0x2a, 0x0d,                                           /* summary, 13 bytes */
        0x0a, 0x0b,                                           /* value, 11 bytes */
        0x0a, 0x04, 'l',  'o',  's',  's',                    /* tag */
        0x15, 0x00, 0x00, 0x80, 0x3e,                         /* simple_value */
        0,    0,    0,    0,                                  /* masked CRC of the data, below */
    };
    put32(expected + 8, ref_masked(expected, 8));
    put32(expected + 39, ref_masked(expected + 12, 27));
    assert_int_equal(len, 40 + sizeof expected);
    assert_memory_equal(buf + 40, expected, sizeof expected);
    free(buf);
    po_tfevents_close(w);
}

/* ---- round trip ---- */

typedef struct {
    const char *tag;
    int64_t step;
    double wall_time;
    float value;
} scalar;

static double realtime_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_round_trip(void **state) {
    (void)state;
    char long_tag[1001];
    memset(long_tag, 'x', 1000);
    long_tag[1000] = '\0';
    const scalar s[] = {
        {"loss", 1, 1700000000.25, 2.5f},
        {"accuracy", 1, 1700000000.5, 0.125f},
        {"loss", 2, 1700000001.0, 1.75f},
        {"lr", 0, 0.0, 0.0f}, /* zero step and time are left out by proto3; they read as 0 */
        {"m\xc3\xa9trique/\xce\xbb", -5, -1.0, -0.0f},
        {"big/step", INT64_MAX, 1e300, INFINITY},
        {"small/step", INT64_MIN, 5e-324, -INFINITY},
        {"nan", 127, 1700000002.0, NAN},
        {"emoji \xf0\x9f\x98\x80", 128, 1700000003.0, -3.4028235e38f},
        {long_tag, 1 << 20, 1700000004.0, 1e-45f},
    };
    const int n = (int)(sizeof s / sizeof s[0]);

    const char *dir = fresh_dir("round_trip");
    /* The clock the writer reads: time() reads a coarser one that can lag it by a tick, and then
     * a stamp taken just after a second turned read as later than `after` + 1 s (seen once). */
    double before = realtime_now();
    po_tfevents *w = NULL;
    assert_int_equal(po_tfevents_open(dir, &w), PO_OK);
    double after = realtime_now();
    for (int i = 0; i < n; i++)
        assert_int_equal(po_tfevents_scalar(w, s[i].tag, s[i].step, s[i].wall_time, s[i].value), PO_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s", po_tfevents_path(w));
    po_tfevents_close(w);

    events e = {0};
    if (read_events(path, &e) != PO_OK) fail_msg("%s", po_last_error());
    assert_int_equal(e.n, n + 1);
    assert_non_null(e.r[0].file_version);
    assert_string_equal(e.r[0].file_version, "brain.Event:2");
    assert_null(e.r[0].tag);
    assert_int_equal(e.r[0].step, 0);
    assert_true(isnan(e.r[0].value));
    assert_true(e.r[0].wall_time >= before && e.r[0].wall_time <= after);
    for (int i = 0; i < n; i++) {
        const rec *r = &e.r[i + 1];
        assert_null(r->file_version);
        assert_non_null(r->tag);
        assert_string_equal(r->tag, s[i].tag);
        assert_true(r->step == s[i].step);
        assert_memory_equal(&r->wall_time, &s[i].wall_time, sizeof(double));
        assert_int_equal(float_bits(r->value), float_bits(s[i].value));
    }
    events_clear(&e);
}

/* ---- corruption and truncation ---- */

/* A small file with the first event and three scalars; its path goes to path. */
static unsigned char *sample_file(const char *name, char *path, size_t size, size_t *len) {
    po_tfevents *w = NULL;
    assert_int_equal(po_tfevents_open(fresh_dir(name), &w), PO_OK);
    assert_int_equal(po_tfevents_scalar(w, "loss", 1, 10.0, 1.0f), PO_OK);
    assert_int_equal(po_tfevents_scalar(w, "loss", 2, 11.0, 0.5f), PO_OK);
    assert_int_equal(po_tfevents_scalar(w, "accuracy", 2, 11.0, 0.75f), PO_OK);
    snprintf(path, size, "%s", po_tfevents_path(w));
    po_tfevents_close(w);
    return po_test_read_file(path, len);
}

static void test_flip_middle_byte(void **state) {
    (void)state;
    char path[4096];
    size_t len;
    unsigned char *buf = sample_file("flip", path, sizeof path, &len);
    events e = {0};
    assert_int_equal(read_events(path, &e), PO_OK);
    assert_int_equal(e.n, 4);

    /* The middle byte of record 3's data. */
    size_t at[8];
    assert_int_equal(boundaries(buf, len, at, 8), 5);
    const size_t mid = at[2] + 12 + (size_t)get64(buf + at[2]) / 2;
    buf[mid] ^= 0x10;
    po_test_write_file(path, buf, len);
    assert_int_equal(read_events(path, &e), PO_ERR_FORMAT);
    assert_contains(po_last_error(), "record 3");
    assert_contains(po_last_error(), "data CRC mismatch");
    assert_int_equal(e.n, 2); /* the records before the damage were reported */
    buf[mid] ^= 0x10;

    /* A byte of a length: caught by the length CRC before the length is trusted. */
    buf[at[1] + 1] ^= 0x40;
    po_test_write_file(path, buf, len);
    assert_int_equal(read_events(path, &e), PO_ERR_FORMAT);
    assert_contains(po_last_error(), "record 2");
    assert_contains(po_last_error(), "length CRC mismatch");
    buf[at[1] + 1] ^= 0x40;

    /* Every single-byte change anywhere is a CRC error, never a crash or a silent misread. */
    for (size_t i = 0; i < len; i++)
        for (int flip = 1; flip < 256; flip += 127) {
            buf[i] ^= (unsigned char)flip;
            po_test_write_file(path, buf, len);
            const po_status st = read_events(path, &e);
            if (st != PO_ERR_FORMAT || !strstr(po_last_error(), "CRC mismatch"))
                fail_msg("byte %zu ^ 0x%02x: status %d, %s", i, flip, (int)st, po_last_error());
            buf[i] ^= (unsigned char)flip;
        }
    events_clear(&e);
    free(buf);
}

static void test_truncation(void **state) {
    (void)state;
    char path[4096];
    size_t len;
    unsigned char *buf = sample_file("truncate", path, sizeof path, &len);
    size_t at[8];
    const int nb = boundaries(buf, len, at, 8);
    events e = {0};
    for (size_t cut = 0; cut < len; cut++) {
        po_test_write_file(path, buf, cut);
        const po_status st = read_events(path, &e);
        int records = -1;
        for (int k = 0; k < nb; k++)
            if (at[k] == cut) records = k;
        if (records >= 0) {
            if (st != PO_OK) fail_msg("cut at record boundary %zu: %s", cut, po_last_error());
            assert_int_equal(e.n, records);
        } else {
            if (st != PO_ERR_FORMAT) fail_msg("cut at %zu: status %d, %s", cut, (int)st, po_last_error());
            assert_contains(po_last_error(), "truncated");
            assert_contains(po_last_error(), path);
        }
    }
    events_clear(&e);
    free(buf);
}

/* A record whose length CRC is valid but whose length runs far past the end of the file. */
static void test_huge_length(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/huge", tmp_dir);
    unsigned char rec[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    put32(rec + 8, ref_masked(rec, 8));
    po_test_write_file(path, rec, sizeof rec);
    events e = {0};
    assert_int_equal(read_events(path, &e), PO_ERR_FORMAT);
    assert_contains(po_last_error(), "truncated");
    assert_int_equal(e.n, 0);
}

/* ---- protobuf decoding ---- */

static void test_unknown_fields(void **state) {
    (void)state;
    const unsigned char event[] = {
        0x20, 0x96, 0x01,                                           /* 4: varint 150 (unknown) */
        0x09, 0,    0,    0,    0,    0,    0,    0,    0x40,       /* 1: wall_time 2.0 */
        0x35, 1,    2,    3,    4,                                  /* 6: fixed32 (unknown) */
        0x39, 1,    2,    3,    4,    5,    6,    7,    8,          /* 7: fixed64 (unknown) */
        0x43, 0x08, 0x01, 0x13, 0x18, 0x05, 0x14, 0x44,             /* 8: group { 1: 1, 2: group { 3: 5 } } */
        0x10, 0x07,                                                 /* 2: step 7 */
        0x2a, 0x18,                                                 /* 5: summary, 24 bytes */
        0x12, 0x02, 'x',  'x',                                      /*   2: unknown bytes */
        0x0a, 0x0a,                                                 /*   1: value, 10 bytes */
        0x0a, 0x01, 'a',  0x4a, 0x00, 0x15, 0,    0,    0x40, 0x40, /*     tag "a", 9: {}, simple_value 3 */
        0x0a, 0x06,                                                 /*   1: value, 6 bytes */
        0x0a, 0x01, 'b',  0x22, 0x01, 0x00,                         /*     tag "b", 4: image (no simple_value) */
        0x1a, 0x01, 'v',                                            /* 3: file_version "v", after the summary */
    };
    unsigned char rec[sizeof event + 16];
    const size_t n = frame(event, sizeof event, rec);
    char path[4096];
    snprintf(path, sizeof path, "%s/unknown", tmp_dir);
    po_test_write_file(path, rec, n);
    events e = {0};
    if (read_events(path, &e) != PO_OK) fail_msg("%s", po_last_error());
    assert_int_equal(e.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_true(e.r[i].wall_time == 2.0);
        assert_true(e.r[i].step == 7);
        assert_string_equal(e.r[i].file_version, "v");
    }
    assert_string_equal(e.r[0].tag, "a");
    assert_true(e.r[0].value == 3.0f);
    assert_string_equal(e.r[1].tag, "b");
    assert_true(isnan(e.r[1].value));

    /* An empty record is an Event with every field at its default. */
    const size_t n0 = frame(event, 0, rec);
    po_test_write_file(path, rec, n0);
    assert_int_equal(read_events(path, &e), PO_OK);
    assert_int_equal(e.n, 1);
    assert_true(e.r[0].wall_time == 0.0 && e.r[0].step == 0);
    assert_null(e.r[0].file_version);
    assert_null(e.r[0].tag);
    events_clear(&e);
}

static void test_malformed_protobuf(void **state) {
    (void)state;
    static const struct {
        unsigned char b[24];
        size_t n;
    } bad[] = {
        {{0x08}, 1},                                                              /* varint without payload */
        {{0x0a, 0x05, 'a'}, 3},                                                   /* bytes past the end */
        {{0x0f}, 1},                                                              /* wire type 7 */
        {{0x0e, 0x00}, 2},                                                        /* wire type 6 */
        {{0x0c}, 1},                                                              /* end-group alone */
        {{0x0b}, 1},                                                              /* unterminated group */
        {{0x0b, 0x14}, 2},                                                        /* mismatched end-group */
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11}, /* 11-byte varint */
        {{0x00, 0x00}, 2},                                                        /* field number 0 */
        {{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 6},                                /* field number 2^32 */
        {{0x09, 1, 2, 3}, 4},                                                     /* short wall_time */
        {{0x10}, 1},                                                              /* step without payload */
        {{0x1a, 0x80}, 2},                                                        /* file_version length cut */
        {{0x2a, 0x02, 0x0a, 0x05}, 4},                                            /* value past the summary */
        {{0x2a, 0x03, 0x0a, 0x01, 0x15}, 5},                                      /* simple_value cut */
        {{0x2a, 0x04, 0x0a, 0x02, 0x0a, 0x05}, 6},                                /* tag past the value */
        {{0x2a, 0x01, 0x07}, 3},                                                  /* bad wire type in a summary */
        {{0x2a, 0x03, 0x0a, 0x01, 0x0f}, 5},                                      /* bad wire type in a value */
    };
    char path[4096];
    snprintf(path, sizeof path, "%s/malformed", tmp_dir);
    events e = {0};
    unsigned char rec[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const size_t n = frame(bad[i].b, bad[i].n, rec);
        po_test_write_file(path, rec, n);
        const po_status st = read_events(path, &e);
        if (st != PO_ERR_FORMAT || !strstr(po_last_error(), "not a valid Event"))
            fail_msg("case %zu: status %d, %s", i, (int)st, po_last_error());
        assert_int_equal(e.n, 0); /* no callback for a record that does not decode */
    }

    /* Groups nested past the limit are refused, not recursed into without bound. */
    unsigned char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = 0x0b;
    for (int i = 0; i < 100; i++)
        deep[n++] = 0x0c;
    n = frame(deep, n, rec);
    po_test_write_file(path, rec, n);
    assert_int_equal(read_events(path, &e), PO_ERR_FORMAT);
    assert_contains(po_last_error(), "nested");
    events_clear(&e);
}

static void test_callback_stops(void **state) {
    (void)state;
    char path[4096];
    size_t len;
    free(sample_file("stop", path, sizeof path, &len));
    events e = {.stop_after = 2};
    assert_int_equal(read_events(path, &e), PO_ERR_RANGE);
    assert_string_equal(po_last_error(), "stopped by the test");
    assert_int_equal(e.n, 2);
    events_clear(&e);
}

/* ---- files and arguments ---- */

static void host(char *buf, size_t size) {
    if (gethostname(buf, size) != 0) buf[0] = '\0';
    buf[size - 1] = '\0';
    if (!buf[0]) snprintf(buf, size, "localhost");
    for (char *c = buf; *c; c++)
        if (*c == '/') *c = '_';
}

static void test_file_names(void **state) {
    (void)state;
    char h[256];
    host(h, sizeof h);
    const char *dir = fresh_dir("names");
    const time_t t0 = (time_t)realtime_now(); /* the writer's clock, not time()'s coarser one */
    po_tfevents *w = NULL;
    assert_int_equal(po_tfevents_open(dir, &w), PO_OK);
    const time_t t1 = (time_t)realtime_now();
    const char *p = po_tfevents_path(w);
    assert_true(strncmp(p, dir, strlen(dir)) == 0 && p[strlen(dir)] == '/');
    long long secs = -1;
    int used = 0;
    assert_int_equal(sscanf(p + strlen(dir), "/events.out.tfevents.%lld.%n", &secs, &used), 1);
    assert_true(secs >= (long long)t0 && secs <= (long long)t1);
    assert_string_equal(p + strlen(dir) + used, h);
    po_tfevents_close(w);

    /* Names already taken for this second and the next ones: the writer adds a suffix and
     * leaves the existing files alone. */
    dir = fresh_dir("taken");
    const time_t now = (time_t)realtime_now();
    char taken[3][4096];
    for (int i = 0; i < 3; i++) {
        snprintf(taken[i], sizeof taken[i], "%s/events.out.tfevents.%lld.%s", dir, (long long)now + i, h);
        po_test_write_file(taken[i], "keep", 4);
    }
    char taken1[4200];
    snprintf(taken1, sizeof taken1, "%s.1", taken[0]);
    po_test_write_file(taken1, "keep", 4);
    po_tfevents *a = NULL, *b = NULL;
    assert_int_equal(po_tfevents_open(dir, &a), PO_OK);
    assert_int_equal(po_tfevents_open(dir, &b), PO_OK);
    assert_string_not_equal(po_tfevents_path(a), po_tfevents_path(b));
    for (int i = 0; i < 3; i++) {
        assert_string_not_equal(po_tfevents_path(a), taken[i]);
        assert_string_not_equal(po_tfevents_path(b), taken[i]);
    }
    assert_string_not_equal(po_tfevents_path(a), taken1);
    assert_string_not_equal(po_tfevents_path(b), taken1);
    for (int i = 0; i < 3; i++) {
        size_t n;
        unsigned char *c = po_test_read_file(taken[i], &n);
        assert_int_equal(n, 4);
        assert_memory_equal(c, "keep", 4);
        free(c);
    }
    events e = {0};
    assert_int_equal(read_events(po_tfevents_path(a), &e), PO_OK);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.r[0].file_version, "brain.Event:2");
    events_clear(&e);
    po_tfevents_close(a);
    po_tfevents_close(b);

    /* Missing parents are created. */
    char nested[4096];
    snprintf(nested, sizeof nested, "%s/new/a/b", tmp_dir);
    assert_int_equal(po_tfevents_open(nested, &w), PO_OK);
    assert_int_equal(po_tfevents_scalar(w, "x", 1, 1.0, 1.0f), PO_OK);
    assert_int_equal(po_tfevents_flush(w), PO_OK);
    assert_int_equal(read_events(po_tfevents_path(w), &e), PO_OK);
    assert_int_equal(e.n, 2);
    events_clear(&e);
    po_tfevents_close(w);
}

static void test_bad_arguments(void **state) {
    (void)state;
    po_tfevents *w = (po_tfevents *)1;
    assert_int_equal(po_tfevents_open(NULL, &w), PO_ERR_INVALID_ARG);
    assert_null(w);
    assert_int_equal(po_tfevents_open("", &w), PO_ERR_INVALID_ARG);
    assert_int_equal(po_tfevents_open(tmp_dir, NULL), PO_ERR_INVALID_ARG);

    /* A directory path that is a regular file. */
    char file[4096];
    snprintf(file, sizeof file, "%s/plain_file", tmp_dir);
    po_test_write_file(file, "x", 1);
    assert_int_equal(po_tfevents_open(file, &w), PO_ERR_IO);
    assert_null(w);
    assert_contains(po_last_error(), file);

    assert_int_equal(po_tfevents_open(fresh_dir("args"), &w), PO_OK);
    assert_int_equal(po_tfevents_scalar(NULL, "x", 0, 0, 0), PO_ERR_INVALID_ARG);
    assert_int_equal(po_tfevents_scalar(w, NULL, 0, 0, 0), PO_ERR_INVALID_ARG);
    assert_int_equal(po_tfevents_scalar(w, "", 0, 0, 0), PO_ERR_INVALID_ARG);
    const char *bad_utf8[] = {"\xff",         "a\x80",           "\xc0\x80", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                              "\xe0\x80\x80", "\xf0\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        if (po_tfevents_scalar(w, bad_utf8[i], 1, 1, 1) != PO_ERR_INVALID_ARG) fail_msg("bad UTF-8 case %zu", i);
        assert_contains(po_last_error(), "UTF-8");
    }
    assert_int_equal(po_tfevents_scalar(w, "\xed\x9f\xbf \xef\xbf\xbf \xf4\x8f\xbf\xbf", 1, 1, 1), PO_OK);
    assert_int_equal(po_tfevents_flush(NULL), PO_ERR_INVALID_ARG);
    assert_null(po_tfevents_path(NULL));
    char path[4096];
    snprintf(path, sizeof path, "%s", po_tfevents_path(w));
    po_tfevents_close(w);
    po_tfevents_close(NULL);
    events e = {0};
    assert_int_equal(read_events(path, &e), PO_OK);
    assert_int_equal(e.n, 2); /* the refused scalars wrote nothing */
    events_clear(&e);

    assert_int_equal(po_tfevents_read(NULL, collect, &e), PO_ERR_INVALID_ARG);
    assert_int_equal(po_tfevents_read(path, NULL, &e), PO_ERR_INVALID_ARG);
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no_such_file", tmp_dir);
    assert_int_equal(po_tfevents_read(missing, collect, &e), PO_ERR_IO);
    assert_contains(po_last_error(), missing);
}

/* A write error (here: the file size limit) is reported, and the writer then refuses to add
 * anything after what may be a partial record; the file stays readable up to it. */
static void test_write_error_is_sticky(void **state) {
    (void)state;
    po_tfevents *w = NULL;
    assert_int_equal(po_tfevents_open(fresh_dir("full"), &w), PO_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s", po_tfevents_path(w));
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < 1 << 20) skip();
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    po_status st = PO_OK;
    for (int i = 0; i < 1000 && st == PO_OK; i++) {
        st = po_tfevents_scalar(w, "loss", i, 1.0, 1.0f);
        if (st == PO_OK) st = po_tfevents_flush(w);
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(st, PO_ERR_IO);
    assert_contains(po_last_error(), path);
    assert_int_equal(po_tfevents_scalar(w, "loss", 1, 1.0, 1.0f), PO_ERR_IO);
    assert_int_equal(po_tfevents_flush(w), PO_ERR_IO);
    assert_contains(po_last_error(), "earlier write failed");
    po_tfevents_close(w);

    events e = {0};
    st = read_events(path, &e);
    assert_true(st == PO_OK || (st == PO_ERR_FORMAT && strstr(po_last_error(), "truncated")));
    assert_true(e.n > 1);
    for (int i = 1; i < e.n; i++)
        assert_true(e.r[i].step == i - 1);
    events_clear(&e);
}

static int setup(void **state) {
    (void)state;
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    po_test_remove_tree(tmp_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors), cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_flip_middle_byte),
        cmocka_unit_test(test_truncation),     cmocka_unit_test(test_huge_length),
        cmocka_unit_test(test_unknown_fields), cmocka_unit_test(test_malformed_protobuf),
        cmocka_unit_test(test_callback_stops), cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_bad_arguments),  cmocka_unit_test(test_write_error_is_sticky),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

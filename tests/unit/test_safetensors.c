/* safetensors reader/writer and the atomic-file helper: round trips, the reference files, one
 * test per kind of malformed header, truncated files, and atomic replacement. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/atomic_file.h"
#include "paropt/io.h"
#include "po_test.h"

static char tmp_dir[] = "/tmp/po_test_st_XXXXXX";

/* ---- helpers ---- */

static void path_in_tmp(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmp_dir, name); }

/* Entries in dir; fails the test on any leftover temporary file. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strstr(e->d_name, ".tmp.")) fail_msg("temporary file left behind: %s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static const char *reference_path(const char *name, char *buf, size_t size) {
    const char *dir = getenv("PO_TEST_DATA");
    if (!dir) fail_msg("PO_TEST_DATA is not set (ctest sets it to tests/data)");
    snprintf(buf, size, "%s/reference/%s", dir, name);
    return buf;
}

/* A safetensors image: the length prefix, the header text, then data_len bytes 0, 1, 2... */
static unsigned char *make_image(const char *json, size_t data_len, size_t *len) {
    size_t h = strlen(json);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, json, h);
    for (size_t i = 0; i < data_len; i++)
        b[8 + h + i] = (unsigned char)i;
    return b;
}

static void assert_one_line(const char *msg) {
    assert_null(strchr(msg, '\n'));
    assert_null(strchr(msg, '\r'));
}

/* Parses bytes that must be rejected with status and a message containing needle. */
static void expect_bad_bytes(const void *bytes, size_t len, po_status status, const char *needle) {
    po_st_file *f = (po_st_file *)1;
    po_clear_error();
    po_status st = po_st_parse(bytes, len, &f);
    const char *msg = po_last_error();
    if (st != status || !strstr(msg, needle) || strncmp(msg, "<memory>: ", 10) != 0)
        fail_msg("expected %s with \"%s\", got %s: %s", po_status_str(status), needle, po_status_str(st), msg);
    assert_null(f);
    assert_one_line(msg);
}

static void expect_bad(const char *json, size_t data_len, po_status status, const char *needle) {
    size_t len;
    unsigned char *b = make_image(json, data_len, &len);
    expect_bad_bytes(b, len, status, needle);
    free(b);
}

static po_st_file *parse_ok(const char *json, size_t data_len) {
    size_t len;
    unsigned char *b = make_image(json, data_len, &len);
    po_st_file *f = NULL;
    po_status st = po_st_parse(b, len, &f);
    free(b);
    if (st) fail_msg("unexpected failure: %s", po_last_error());
    return f;
}

/* ---- malformed input: one test per check ---- */

#define BAD(fn, json, data_len, status, needle)                                                                        \
    static void fn(void **state) {                                                                                     \
        (void)state;                                                                                                   \
        expect_bad(json, data_len, status, needle);                                                                    \
    }

static void test_too_short(void **state) {
    (void)state;
    expect_bad_bytes("\x02\0\0", 3, PO_ERR_FORMAT, "too short");
    expect_bad_bytes("", 0, PO_ERR_FORMAT, "too short");
    expect_bad_bytes("\x02\0\0\0\0\0\0", 7, PO_ERR_FORMAT, "too short");
}

static void test_header_length_past_end(void **state) {
    (void)state;
    unsigned char b[20] = {100};
    memcpy(b + 8, "{}", 2);
    expect_bad_bytes(b, sizeof b, PO_ERR_FORMAT, "header length 100 runs past the end");
    b[0] = 13; /* one more than the 12 bytes that follow */
    expect_bad_bytes(b, sizeof b, PO_ERR_FORMAT, "runs past the end");
}

static void test_header_length_absurd(void **state) {
    (void)state;
    unsigned char b[16];
    memset(b, 0xFF, 8); /* 2^64 - 1: 8 + N must not wrap around */
    memcpy(b + 8, "{}      ", 8);
    expect_bad_bytes(b, sizeof b, PO_ERR_FORMAT, "absurdly large");
    memset(b, 0, 8);
    b[7] = 0x80; /* 2^63 */
    expect_bad_bytes(b, sizeof b, PO_ERR_FORMAT, "absurdly large");
    memset(b, 0, 8);
    b[3] = 0x10; /* 256 MiB */
    expect_bad_bytes(b, sizeof b, PO_ERR_FORMAT, "absurdly large");
}

BAD(test_bad_json, "{\"a\": {\"dtype\": \"F32\",", 0, PO_ERR_FORMAT, "not valid JSON (line 1, column")
BAD(test_bad_json_trailing_garbage, "{} x", 0, PO_ERR_FORMAT, "not valid JSON")
BAD(test_empty_header, "", 0, PO_ERR_FORMAT, "not valid JSON")
BAD(test_duplicate_name,
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
    8, PO_ERR_FORMAT, "duplicate")
BAD(test_not_object, "[1, 2]", 0, PO_ERR_FORMAT, "header is an array, not a JSON object")
BAD(test_entry_not_object, "{\"w\": 5}", 0, PO_ERR_FORMAT, "tensor \"w\": entry is an integer")
BAD(test_missing_dtype, "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PO_ERR_FORMAT, "\"dtype\" is missing")
BAD(test_dtype_not_string, "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PO_ERR_FORMAT,
    "\"dtype\" is an integer, not a string")
BAD(test_missing_shape, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, PO_ERR_FORMAT, "\"shape\" is missing")
BAD(test_shape_not_array, "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, PO_ERR_FORMAT,
    "\"shape\" is an integer, not an array")
BAD(test_missing_offsets, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, PO_ERR_FORMAT, "\"data_offsets\" is missing")
BAD(test_offsets_wrong_length, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, PO_ERR_FORMAT,
    "\"data_offsets\" is an array of another length")
BAD(test_offsets_not_integers, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, PO_ERR_FORMAT,
    "\"data_offsets\" must be two non-negative integers")
BAD(test_offsets_real, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, PO_ERR_FORMAT,
    "\"data_offsets\" must be two non-negative integers")
BAD(test_offsets_negative, "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-4,-4]}}", 4, PO_ERR_FORMAT,
    "\"data_offsets\" must be two non-negative integers")
BAD(test_offsets_huge,
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,"
    "99999999999999999999]}}",
    4, PO_ERR_FORMAT, "not valid JSON")
BAD(test_unsupported_dtype,
    "{\"ok\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
    "\"half\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
    8, PO_ERR_DTYPE, "tensor \"half\": dtype \"F16\" is not supported")
BAD(test_negative_extent, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0, PO_ERR_FORMAT,
    "shape extent 1 is negative")
BAD(test_real_extent, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, PO_ERR_FORMAT,
    "shape extent 0 is a real number")
BAD(test_string_extent, "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"3\"],\"data_offsets\":[0,12]}}", 12, PO_ERR_FORMAT,
    "shape extent 0 is a string")
BAD(test_rank_too_large, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
    PO_ERR_UNSUPPORTED, "shape has 9 dimensions")
BAD(test_numel_overflow, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
    PO_ERR_FORMAT, "too large")
BAD(test_bytes_overflow, "{\"w\":{\"dtype\":\"I64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0,
    PO_ERR_FORMAT, "too large")
/* Empty, yet the extents multiplied the other way round (strides) would overflow. */
BAD(test_overflow_hidden_by_zero,
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, PO_ERR_FORMAT,
    "too large")
BAD(test_offsets_disagree_with_shape, "{\"l1.weight\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,100]}}",
    120, PO_ERR_FORMAT,
    "<memory>: tensor \"l1.weight\": data_offsets [0, 100] do not match shape [5, 6] of F32 "
    "(120 bytes)")
BAD(test_offsets_reversed, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, PO_ERR_FORMAT,
    "data_offsets [8, 4] end before they begin")
BAD(test_offsets_past_data, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, PO_ERR_FORMAT,
    "data_offsets [0, 16] run past the end of the data (8 bytes")
BAD(test_overlap,
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
    "\"b\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[12,28]}}",
    28, PO_ERR_FORMAT, "tensor \"b\": data_offsets [12, 28] overlap those of tensor \"a\"")
BAD(test_overlap_contained,
    "{\"big\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
    "\"mid\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[28,32]},"
    "\"in\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
    32, PO_ERR_FORMAT, "overlap")
BAD(test_metadata_not_object, "{\"__metadata__\": [\"a\"]}", 0, PO_ERR_FORMAT,
    "\"__metadata__\" is an array, not an object of strings")
BAD(test_metadata_value_not_string, "{\"__metadata__\": {\"epoch\": 3}}", 0, PO_ERR_FORMAT,
    "__metadata__ entry \"epoch\" is an integer, not a string")
/* Names come from the file: a control character must not break the one-line message. */
BAD(test_name_with_newline, "{\"a\\nb\": 5}", 0, PO_ERR_FORMAT, "tensor \"a\\x0ab\": entry is")

/* Control bytes quoted by the JSON parser (DEL is valid inside a JSON string) are escaped, and
 * long names are cut. */
static void test_message_stays_printable(void **state) {
    (void)state;
    expect_bad("{\"ta\x7f\xff\": 1}", 0, PO_ERR_FORMAT, "near '\"ta\\x7f'");
    for (const unsigned char *p = (const unsigned char *)po_last_error(); *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7F);
    char json[1200] = "{\"";
    for (int i = 0; i < 500; i++)
        strcat(json, i % 2 ? "\xc3\xa9" : "n");
    strcat(json, "\": 5}");
    expect_bad(json, 0, PO_ERR_FORMAT, "...\": entry is an integer");
    assert_true(strlen(po_last_error()) < 160);
}

/* ---- valid headers ---- */

static void test_empty_file_ok(void **state) {
    (void)state;
    po_st_file *f = parse_ok("{}      ", 0);
    assert_int_equal(po_st_count(f), 0);
    assert_int_equal(po_st_find(f, "x"), -1);
    assert_null(po_st_meta(f, "x"));
    assert_null(po_st_name(f, 0));
    po_tensor *t = (po_tensor *)1;
    assert_int_equal(po_st_get(f, "x", &t), PO_ERR_NOT_FOUND);
    assert_null(t);
    assert_string_equal(po_last_error(), "<memory> has no tensor \"x\"");
    assert_int_equal(po_st_tensor(f, 0, &t), PO_ERR_INVALID_ARG);
    po_st_free(f);
    po_st_free(NULL);
}

/* Tensors come back in data order; empty tensors may sit anywhere; gaps and trailing bytes
 * are tolerated; unknown entry fields are ignored. */
static void test_order_and_empty_tensors(void **state) {
    (void)state;
    po_st_file *f = parse_ok("{\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[20,28]},"
                             "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4294967296],\"data_offsets\":[4,4]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],\"extra\":true},"
                             "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}}   ",
                             48);
    assert_int_equal(po_st_count(f), 4);
    assert_string_equal(po_st_name(f, 0), "a");
    assert_string_equal(po_st_name(f, 1), "e");
    assert_string_equal(po_st_name(f, 2), "b");
    assert_string_equal(po_st_name(f, 3), "s");
    for (int i = 0; i < 4; i++)
        assert_int_equal(po_st_find(f, po_st_name(f, i)), i);
    assert_int_equal(po_st_find(f, "c"), -1);
    assert_int_equal(po_st_dtype(f, 2), PO_I32);
    assert_int_equal(po_st_shape(f, 3).ndim, 0);
    assert_int_equal(po_st_dtype(f, 9), PO_DTYPE_COUNT);

    po_tensor *t = NULL;
    assert_int_equal(po_st_get(f, "b", &t), PO_OK);
    const int32_t *v = t->data;
    assert_int_equal(v[0], 0x17161514); /* bytes 20..23 of the data, little-endian */
    assert_int_equal(v[1], 0x1B1A1918);
    po_tensor_free(t);
    assert_int_equal(po_st_get(f, "e", &t), PO_OK);
    assert_int_equal(po_tensor_numel(t), 0);
    po_tensor_free(t);
    assert_int_equal(po_st_get(f, "s", &t), PO_OK);
    assert_int_equal(*(const int64_t *)t->data, 0x2726252423222120LL);
    po_tensor_free(t);
    po_st_free(f);
}

/* ---- round trip ---- */

static void test_round_trip(void **state) {
    (void)state;
    po_tensor *f32 = NULL, *i32 = NULL, *i64 = NULL, *base = NULL, *view = NULL, *scalar = NULL, *empty = NULL;
    assert_int_equal(po_tensor_new(PO_F32, PO_SHAPE(2, 3), &f32), PO_OK);
    assert_int_equal(po_tensor_new(PO_I32, PO_SHAPE(5), &i32), PO_OK);
    assert_int_equal(po_tensor_new(PO_I64, PO_SHAPE(2, 2), &i64), PO_OK);
    assert_int_equal(po_tensor_new(PO_F32, PO_SHAPE(3, 4), &base), PO_OK);
    assert_int_equal(po_tensor_new(PO_F32, po_shape_make(0, NULL), &scalar), PO_OK);
    assert_int_equal(po_tensor_new(PO_F32, PO_SHAPE(0, 3), &empty), PO_OK);
    for (int i = 0; i < 6; i++)
        ((float *)f32->data)[i] = 0.5f * (float)i - 1.0f;
    const int32_t iv[5] = {INT32_MIN, -1, 0, 7, INT32_MAX};
    memcpy(i32->data, iv, sizeof iv);
    const int64_t lv[4] = {INT64_MIN, -3, (int64_t)1 << 40, INT64_MAX};
    memcpy(i64->data, lv, sizeof lv);
    for (int i = 0; i < 12; i++)
        ((float *)base->data)[i] = (float)i * 1.25f;
    assert_int_equal(po_tensor_transpose(base, 0, 1, &view), PO_OK);
    assert_false(po_tensor_is_contiguous(view));
    *(float *)scalar->data = 3.25f;

    const char *names[] = {"f32", "i32", "i64", "view.t", "scalar", "empty"};
    const po_tensor *ts[] = {f32, i32, i64, view, scalar, empty};
    const char *keys[] = {"config", "note"};
    const char *vals[] = {"{\"hidden\": 64}", "h\xc3\xa9llo \"quoted\"\n line"};
    char path[512];
    path_in_tmp(path, sizeof path, "round.safetensors");
    assert_int_equal(po_st_write(path, 6, names, ts, 2, keys, vals), PO_OK);
    assert_int_equal(count_entries(tmp_dir), 1);

    /* The header is padded to a multiple of 8 bytes and the data is packed after it. */
    size_t len;
    unsigned char *raw = po_test_read_file(path, &len);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | raw[i];
    assert_int_equal(h % 8, 0);
    assert_int_equal(len, 8 + h + 6 * 4 + 5 * 4 + 4 * 8 + 12 * 4 + 4);
    assert_int_equal(raw[8], '{');
    free(raw);

    po_st_file *f = NULL;
    if (po_st_read(path, &f)) fail_msg("%s", po_last_error());
    assert_int_equal(po_st_count(f), 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(po_st_name(f, i), names[i]);
        assert_int_equal(po_st_dtype(f, i), ts[i]->dtype);
        po_shape s = po_st_shape(f, i);
        assert_true(po_shape_equal(&s, &ts[i]->shape));
    }
    assert_string_equal(po_st_meta(f, "config"), vals[0]);
    assert_string_equal(po_st_meta(f, "note"), vals[1]);
    assert_null(po_st_meta(f, "missing"));

    po_tensor *t = NULL;
    assert_int_equal(po_st_get(f, "f32", &t), PO_OK);
    assert_memory_equal(t->data, f32->data, 6 * sizeof(float));
    po_tensor_free(t);
    assert_int_equal(po_st_get(f, "i32", &t), PO_OK);
    assert_memory_equal(t->data, iv, sizeof iv);
    po_tensor_free(t);
    assert_int_equal(po_st_get(f, "i64", &t), PO_OK);
    assert_memory_equal(t->data, lv, sizeof lv);
    po_tensor_free(t);
    assert_int_equal(po_st_get(f, "view.t", &t), PO_OK);
    assert_true(po_tensor_is_contiguous(t));
    for (int64_t r = 0; r < 4; r++)
        for (int64_t c = 0; c < 3; c++) {
            int64_t ix[2] = {r, c};
            assert_true(po_tensor_get_f32(t, ix) == po_tensor_get_f32(view, ix));
            assert_true(po_tensor_get_f32(t, ix) == (float)(c * 4 + r) * 1.25f);
        }
    po_tensor_free(t);
    assert_int_equal(po_st_get(f, "scalar", &t), PO_OK);
    assert_int_equal(t->shape.ndim, 0);
    assert_true(*(const float *)t->data == 3.25f);
    po_tensor_free(t);
    po_st_free(f);

    /* No metadata: the header has no __metadata__ entry. */
    assert_int_equal(po_st_write(path, 1, names, ts, 0, NULL, NULL), PO_OK);
    raw = po_test_read_file(path, &len);
    raw[len - 1] = 0;
    assert_null(strstr((const char *)raw + 8, "__metadata__"));
    free(raw);
    f = NULL;
    assert_int_equal(po_st_read(path, &f), PO_OK);
    assert_int_equal(po_st_count(f), 1);
    po_st_free(f);
    unlink(path);

    po_tensor *all[] = {f32, i32, i64, base, view, scalar, empty};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        po_tensor_free(all[i]);
}

/* ---- the reference files ---- */

static void test_reference_mnist(void **state) {
    (void)state;
    char path[1024];
    reference_path("mnist_mlp.safetensors", path, sizeof path);
    po_st_file *f = NULL;
    if (po_st_read(path, &f)) fail_msg("%s", po_last_error());
    assert_true(po_st_count(f) > 10);
    assert_string_equal(po_st_name(f, 0), "l1.weight"); /* at data offset 0 */

    int w = po_st_find(f, "l1.weight");
    assert_true(w >= 0);
    po_shape s = po_st_shape(f, w);
    po_shape want = PO_SHAPE(64, 784);
    assert_true(po_shape_equal(&s, &want));
    assert_int_equal(po_st_dtype(f, w), PO_F32);

    int y = po_st_find(f, "input.y");
    assert_true(y >= 0);
    s = po_st_shape(f, y);
    want = PO_SHAPE(16);
    assert_true(po_shape_equal(&s, &want));
    assert_int_equal(po_st_dtype(f, y), PO_I64);

    const char *config = po_st_meta(f, "config");
    assert_non_null(config);
    assert_non_null(strstr(config, "hidden"));

    /* Cross-check against the raw bytes: l1.weight[0][0] starts the data section, the
     * tensors exactly fill it, and the targets are class indices. */
    size_t len;
    unsigned char *raw = po_test_read_file(path, &len);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | raw[i];
    float first;
    memcpy(&first, raw + 8 + h, sizeof first);
    po_tensor *t = NULL;
    assert_int_equal(po_st_tensor(f, w, &t), PO_OK);
    assert_true(((const float *)t->data)[0] == first);
    po_tensor_free(t);
    uint64_t total = 0;
    for (int i = 0; i < po_st_count(f); i++) {
        po_shape si = po_st_shape(f, i);
        total += (uint64_t)po_shape_numel(&si) * po_dtype_size(po_st_dtype(f, i));
    }
    assert_int_equal(total, len - 8 - h);
    free(raw);
    assert_int_equal(po_st_get(f, "input.y", &t), PO_OK);
    for (int i = 0; i < 16; i++) {
        int64_t v = ((const int64_t *)t->data)[i];
        assert_true(v >= 0 && v < 10);
    }
    po_tensor_free(t);

    assert_int_equal(po_st_get(f, "l9.weight", &t), PO_ERR_NOT_FOUND);
    assert_non_null(strstr(po_last_error(), "has no tensor \"l9.weight\""));
    assert_non_null(strstr(po_last_error(), path));
    po_st_free(f);
}

static void test_read_missing_file(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "does-not-exist.safetensors");
    po_st_file *f = (po_st_file *)1;
    assert_int_equal(po_st_read(path, &f), PO_ERR_IO);
    assert_null(f);
    assert_non_null(strstr(po_last_error(), path));
    assert_non_null(strstr(po_last_error(), "No such file"));
    assert_int_equal(po_st_read(tmp_dir, &f), PO_ERR_IO); /* a directory */
    assert_non_null(strstr(po_last_error(), "not a regular file"));
}

/* Every prefix of a real file, cut in the length, the header or the data, fails cleanly. */
static void test_truncated_reference(void **state) {
    (void)state;
    char src[1024], path[512];
    reference_path("mnist_mlp.safetensors", src, sizeof src);
    path_in_tmp(path, sizeof path, "cut.safetensors");
    size_t len;
    unsigned char *raw = po_test_read_file(src, &len);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | raw[i];
    const size_t cuts[] = {0,       1,       7,      8, 9, 100, 8 + h / 2, 8 + h - 1, 8 + h, 8 + h + 1, 8 + h + 1000,
                           len / 2, len - 4, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        po_test_write_file(path, raw, cuts[k]);
        po_st_file *f = (po_st_file *)1;
        po_status st = po_st_read(path, &f);
        if (st != PO_ERR_FORMAT || f != NULL)
            fail_msg("cut at %zu: got %s: %s", cuts[k], po_status_str(st), po_last_error());
        assert_int_equal(strncmp(po_last_error(), path, strlen(path)), 0);
        assert_one_line(po_last_error());
    }
    po_test_write_file(path, raw, len); /* the whole file still reads */
    po_st_file *f = NULL;
    assert_int_equal(po_st_read(path, &f), PO_OK);
    po_st_free(f);
    unlink(path);
    free(raw);
}

/* ---- atomic writing ---- */

static void test_write_replaces_existing(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "replace.safetensors");
    po_test_write_file(path, "old content", 11);
    assert_int_equal(chmod(path, 0640), 0);
    po_tensor *t = NULL;
    assert_int_equal(po_tensor_new(PO_I32, PO_SHAPE(3), &t), PO_OK);
    const char *names[] = {"x"};
    const po_tensor *ts[] = {t};
    assert_int_equal(po_st_write(path, 1, names, ts, 0, NULL, NULL), PO_OK);
    assert_int_equal(count_entries(tmp_dir), 1);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640); /* the replaced file's permissions are kept */
    po_st_file *f = NULL;
    assert_int_equal(po_st_read(path, &f), PO_OK);
    assert_int_equal(po_st_count(f), 1);
    po_st_free(f);

    /* Bad arguments fail before anything is written: the file keeps its content. */
    const char *dup[] = {"x", "x"};
    const po_tensor *ts2[] = {t, t};
    size_t before_len, after_len;
    unsigned char *before = po_test_read_file(path, &before_len);
    assert_int_equal(po_st_write(path, 2, dup, ts2, 0, NULL, NULL), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "used twice"));
    const char *reserved[] = {"__metadata__"};
    assert_int_equal(po_st_write(path, 1, reserved, ts, 0, NULL, NULL), PO_ERR_INVALID_ARG);
    assert_non_null(strstr(po_last_error(), "reserved"));
    const char *bad_utf8[] = {"\xff\xfe"};
    assert_int_equal(po_st_write(path, 1, bad_utf8, ts, 0, NULL, NULL), PO_ERR_INVALID_ARG);
    const char *k[] = {"a", "a"}, *v[] = {"1", "2"};
    assert_int_equal(po_st_write(path, 1, names, ts, 2, k, v), PO_ERR_INVALID_ARG);
    unsigned char *after = po_test_read_file(path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    assert_int_equal(count_entries(tmp_dir), 1);
    free(before);
    free(after);
    po_tensor_free(t);
    unlink(path);
}

static void test_write_failure_leaves_nothing(void **state) {
    (void)state;
    po_tensor *t = NULL;
    assert_int_equal(po_tensor_new(PO_F32, PO_SHAPE(2), &t), PO_OK);
    const char *names[] = {"x"};
    const po_tensor *ts[] = {t};
    char path[512];

    path_in_tmp(path, sizeof path, "no-such-dir/out.safetensors");
    assert_int_equal(po_st_write(path, 1, names, ts, 0, NULL, NULL), PO_ERR_IO);
    assert_non_null(strstr(po_last_error(), path));
    assert_one_line(po_last_error());
    assert_int_equal(count_entries(tmp_dir), 0);

    /* The rename fails (the target is a directory) after the data was written. */
    path_in_tmp(path, sizeof path, "a-directory");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(po_st_write(path, 1, names, ts, 0, NULL, NULL), PO_ERR_IO);
    assert_non_null(strstr(po_last_error(), "renaming"));
    assert_int_equal(count_entries(tmp_dir), 1);
    assert_int_equal(count_entries(path), 0);
    rmdir(path);

    path_in_tmp(path, sizeof path, "trailing-slash/");
    assert_int_equal(po_st_write(path, 1, names, ts, 0, NULL, NULL), PO_ERR_IO);
    assert_int_equal(count_entries(tmp_dir), 0);
    po_tensor_free(t);
}

static void test_atomic_helper(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "plain.txt");
    po_atomic_file af;
    assert_int_equal(po_atomic_begin(path, &af), PO_OK);
    assert_non_null(af.fp);
    assert_non_null(strstr(af.tmp_path, "/.plain.txt.tmp."));
    assert_int_equal(po_atomic_write(&af, "abandoned", 9), PO_OK);
    po_atomic_abort(&af);
    po_atomic_abort(&af); /* twice is harmless */
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_entries(tmp_dir), 0);

    assert_int_equal(po_atomic_begin(path, &af), PO_OK);
    fprintf(af.fp, "hello %d\n", 42);
    assert_int_equal(po_atomic_commit(&af), PO_OK);
    assert_null(af.fp);
    po_atomic_abort(&af); /* after commit: a no-op */
    size_t len;
    unsigned char *got = po_test_read_file(path, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(got, "hello 42\n", 9);
    free(got);
    /* A new file gets 0666 minus the umask, as fopen would give it. */
    mode_t mask = umask(022);
    umask(mask);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0666 & ~mask);
    assert_int_equal(count_entries(tmp_dir), 1);
    unlink(path);

    /* A relative path (no directory part) works in the current directory. */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmp_dir), 0);
    assert_int_equal(po_atomic_begin("rel.txt", &af), PO_OK);
    assert_int_equal(po_atomic_commit(&af), PO_OK);
    assert_int_equal(access("rel.txt", F_OK), 0);
    unlink("rel.txt");
    assert_int_equal(chdir(cwd), 0);

    assert_int_equal(po_atomic_begin("", &af), PO_ERR_INVALID_ARG);
    assert_null(af.fp);
    po_atomic_abort(&af);
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
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_header_length_past_end),
        cmocka_unit_test(test_header_length_absurd),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_json_trailing_garbage),
        cmocka_unit_test(test_empty_header),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_entry_not_object),
        cmocka_unit_test(test_missing_dtype),
        cmocka_unit_test(test_dtype_not_string),
        cmocka_unit_test(test_missing_shape),
        cmocka_unit_test(test_shape_not_array),
        cmocka_unit_test(test_missing_offsets),
        cmocka_unit_test(test_offsets_wrong_length),
        cmocka_unit_test(test_offsets_not_integers),
        cmocka_unit_test(test_offsets_real),
        cmocka_unit_test(test_offsets_negative),
        cmocka_unit_test(test_offsets_huge),
        cmocka_unit_test(test_unsupported_dtype),
        cmocka_unit_test(test_negative_extent),
        cmocka_unit_test(test_real_extent),
        cmocka_unit_test(test_string_extent),
        cmocka_unit_test(test_rank_too_large),
        cmocka_unit_test(test_numel_overflow),
        cmocka_unit_test(test_bytes_overflow),
        cmocka_unit_test(test_overflow_hidden_by_zero),
        cmocka_unit_test(test_offsets_disagree_with_shape),
        cmocka_unit_test(test_offsets_reversed),
        cmocka_unit_test(test_offsets_past_data),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_overlap_contained),
        cmocka_unit_test(test_metadata_not_object),
        cmocka_unit_test(test_metadata_value_not_string),
        cmocka_unit_test(test_name_with_newline),
        cmocka_unit_test(test_message_stays_printable),
        cmocka_unit_test(test_empty_file_ok),
        cmocka_unit_test(test_order_and_empty_tensors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_reference_mnist),
        cmocka_unit_test(test_read_missing_file),
        cmocka_unit_test(test_truncated_reference),
        cmocka_unit_test(test_write_replaces_existing),
        cmocka_unit_test(test_write_failure_leaves_nothing),
        cmocka_unit_test(test_atomic_helper),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

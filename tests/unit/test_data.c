/* Dataset readers: IDX (plain and gzip), CIFAR-10 binary batches, byte-level text and
 * safetensors files built in a temporary directory; values (pixel scaling exactly x / 255.0f),
 * splits, shapes and classes; one test per kind of malformed input, each checking the status
 * and a one-line message that starts with the file's path; the model check; and the real
 * Fashion-MNIST files when dataset-fashion-mnist is installed (skipped otherwise). */
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
#include <zlib.h>

#include <cmocka.h>

#include "data/readers.h"
#include "paropt/paropt.h"
#include "po_test.h"

static char tmp_dir[] = "/tmp/po_test_data_XXXXXX";

/* ---- helpers ---- */

static const char *tmp_path(const char *name) {
    static char buf[8][4096];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmp_dir, name);
    return b;
}

static void write_gzip(const char *path, const void *data, size_t len) {
    gzFile g = gzopen(path, "wb9");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

/* gzip bytes of data in a malloc'd buffer (for the in-memory gunzip tests). */
static uint8_t *gzip_bytes(const void *data, size_t len, size_t *out_len) {
    const char *p = tmp_path("scratch.gz");
    write_gzip(p, data, len);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    uint8_t *b = malloc(len + 1024);
    *out_len = fread(b, 1, len + 1024, fp);
    fclose(fp);
    unlink(p);
    return b;
}

static void make_dir(const char *name) {
    int rc = mkdir(tmp_path(name), 0700);
    assert_true(rc == 0 || access(tmp_path(name), F_OK) == 0); /* made by an earlier test */
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX images file: n images h x w, pixel i of the file = (i * 7 + seed) mod 256. */
static uint8_t *idx_images(uint32_t n, uint32_t h, uint32_t w, int seed, size_t *len) {
    size_t data = (size_t)n * h * w;
    *len = 16 + data;
    uint8_t *b = malloc(*len);
    put_be32(b, 0x00000803);
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    for (size_t i = 0; i < data; i++)
        b[16 + i] = (uint8_t)((i * 7 + (size_t)seed) % 256);
    return b;
}

/* An IDX labels file: label i = (i * 3 + seed) mod 10. */
static uint8_t *idx_labels(uint32_t n, int seed, size_t *len) {
    *len = 8 + n;
    uint8_t *b = malloc(*len);
    put_be32(b, 0x00000801);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)((i * 3 + (uint32_t)seed) % 10);
    return b;
}

/* Writes a 4-file IDX directory: train n_train images, test n_test, each h x w. */
static void write_idx_dir(const char *dir, uint32_t n_train, uint32_t n_test, uint32_t h, uint32_t w, bool gz) {
    make_dir(dir);
    struct {
        const char *name;
        uint8_t *b;
        size_t len;
    } f[4];
    f[0].name = "train-images-idx3-ubyte";
    f[0].b = idx_images(n_train, h, w, 1, &f[0].len);
    f[1].name = "train-labels-idx1-ubyte";
    f[1].b = idx_labels(n_train, 1, &f[1].len);
    f[2].name = "t10k-images-idx3-ubyte";
    f[2].b = idx_images(n_test, h, w, 2, &f[2].len);
    f[3].name = "t10k-labels-idx1-ubyte";
    f[3].b = idx_labels(n_test, 2, &f[3].len);
    for (int i = 0; i < 4; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s%s", dir, f[i].name, gz ? ".gz" : "");
        if (gz)
            write_gzip(tmp_path(rel), f[i].b, f[i].len);
        else
            po_test_write_file(tmp_path(rel), f[i].b, f[i].len);
        free(f[i].b);
    }
}

static void assert_one_line(const char *msg) {
    assert_null(strchr(msg, '\n'));
    assert_null(strchr(msg, '\r'));
}

/* Opens spec, which must fail with status, a message starting with `prefix` (a path) and
 * containing needle. */
static void expect_open_error(const char *spec, po_data_split split, int64_t seq, po_status status, const char *prefix,
                              const char *needle) {
    po_dataset *d = (po_dataset *)1;
    po_clear_error();
    po_status st = po_dataset_open(spec, split, seq, &d);
    const char *msg = po_last_error();
    if (st != status || !strstr(msg, needle) || strncmp(msg, prefix, strlen(prefix)) != 0)
        fail_msg("%s: expected %s starting \"%s\" with \"%s\", got %s: %s", spec, po_status_str(status), prefix, needle,
                 po_status_str(st), msg);
    assert_null(d);
    assert_one_line(msg);
}

static po_dataset *open_ok(const char *spec, po_data_split split, int64_t seq) {
    po_dataset *d = NULL;
    if (po_dataset_open(spec, split, seq, &d)) fail_msg("%s: %s", spec, po_last_error());
    return d;
}

/* All samples and targets of d via po_dataset_batch with B = N. */
static void all_samples(const po_dataset *d, po_tensor **x, po_tensor **y) {
    po_shape xs = po_dataset_sample_shape(d), ys = po_dataset_target_shape(d), bx = {.ndim = xs.ndim + 1},
             by = {.ndim = ys.ndim + 1};
    bx.dim[0] = by.dim[0] = po_dataset_size(d);
    for (int i = 0; i < xs.ndim; i++)
        bx.dim[i + 1] = xs.dim[i];
    for (int i = 0; i < ys.ndim; i++)
        by.dim[i + 1] = ys.dim[i];
    PO_CHECK(po_tensor_new(po_dataset_sample_dtype(d), bx, x));
    PO_CHECK(po_tensor_new(PO_I64, by, y));
    PO_CHECK(po_dataset_batch(d, 0, *x, *y));
}

/* ---- IDX ---- */

static void check_idx_values(const char *spec, po_data_split split, int64_t n, int64_t h, int64_t w, int seed) {
    po_dataset *d = open_ok(spec, split, 0);
    assert_int_equal(po_dataset_size(d), n);
    po_shape s = po_dataset_sample_shape(d), want = PO_SHAPE(1, h, w);
    assert_true(po_shape_equal(&s, &want));
    assert_int_equal(po_dataset_target_shape(d).ndim, 0);
    assert_int_equal(po_dataset_sample_dtype(d), PO_F32);
    assert_int_equal(po_dataset_classes(d), 10);
    assert_string_equal(po_dataset_name(d), spec);
    po_tensor *x, *y;
    all_samples(d, &x, &y);
    const float *xv = x->data;
    const int64_t *yv = y->data;
    for (int64_t i = 0; i < n * h * w; i++) {
        uint8_t p = (uint8_t)(((size_t)i * 7 + (size_t)seed) % 256);
        /* PyTorch: torch.tensor(p, dtype=float32) / 255.0, a correctly rounded float division;
         * the double quotient rounded to float is the same value for every byte. */
        float want_f = (float)((double)p / 255.0);
        if (memcmp(&xv[i], &want_f, sizeof want_f) != 0)
            fail_msg("pixel %lld: %.9g, expected %.9g", (long long)i, xv[i], want_f);
    }
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(yv[i], (i * 3 + seed) % 10);
    po_tensor_free(x);
    po_tensor_free(y);
    po_dataset_free(d);
}

static void test_idx_plain(void **state) {
    (void)state;
    write_idx_dir("idx_plain", 40, 7, 4, 3, false);
    char spec[4096];
    snprintf(spec, sizeof spec, "idx:%s", tmp_path("idx_plain"));
    check_idx_values(spec, PO_SPLIT_TRAIN, 40, 4, 3, 1);
    check_idx_values(spec, PO_SPLIT_TEST, 7, 4, 3, 2);
}

static void test_idx_gzip(void **state) {
    (void)state;
    write_idx_dir("idx_gz", 40, 7, 5, 2, true);
    char spec[4096];
    snprintf(spec, sizeof spec, "idx:%s", tmp_path("idx_gz"));
    check_idx_values(spec, PO_SPLIT_TRAIN, 40, 5, 2, 1);
    check_idx_values(spec, PO_SPLIT_TEST, 7, 5, 2, 2);
}

/* Every byte value scales to exactly (float)p / 255.0f: 0 -> 0, 255 -> 1, and the bit
 * patterns PyTorch gives (checked here against float division itself and a few constants). */
static void test_idx_scaling_all_bytes(void **state) {
    (void)state;
    size_t ilen, llen;
    uint8_t *im = idx_images(1, 16, 16, 0, &ilen), *lb = idx_labels(1, 0, &llen);
    for (int i = 0; i < 256; i++)
        im[16 + i] = (uint8_t)i;
    po_dataset *d;
    PO_CHECK(po__idx_dataset(im, ilen, "im", lb, llen, "lb", "mem", &d));
    po_tensor *x, *y;
    all_samples(d, &x, &y);
    const float *v = x->data;
    for (int i = 0; i < 256; i++) {
        float want = (float)i / 255.0f;
        assert_memory_equal(&v[i], &want, sizeof want);
    }
    assert_true(v[0] == 0.0f && v[255] == 1.0f);
    assert_true(v[1] == 0.003921568859368563f);   /* float32(1/255) */
    assert_true(v[128] == 0.501960813999176025f); /* float32(128/255) */
    po_tensor_free(x);
    po_tensor_free(y);
    po_dataset_free(d);
    free(im);
    free(lb);
}

/* The real Fashion-MNIST files of Debian's dataset-fashion-mnist. */
static void test_fashion_mnist(void **state) {
    (void)state;
    if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
        skip(); /* dataset-fashion-mnist not installed */
    }
    static const int64_t sizes[2] = {60000, 10000};
    for (int s = 0; s < 2; s++) {
        po_dataset *d = open_ok("fashion-mnist", s ? PO_SPLIT_TEST : PO_SPLIT_TRAIN, 0);
        assert_int_equal(po_dataset_size(d), sizes[s]);
        po_shape sh = po_dataset_sample_shape(d), want = PO_SHAPE(1, 28, 28);
        assert_true(po_shape_equal(&sh, &want));
        assert_int_equal(po_dataset_classes(d), 10);
        po_tensor *x, *y;
        all_samples(d, &x, &y);
        int64_t hist[10] = {0};
        const int64_t *yv = y->data;
        for (int64_t i = 0; i < sizes[s]; i++) {
            assert_true(yv[i] >= 0 && yv[i] <= 9);
            hist[yv[i]]++;
        }
        for (int c = 0; c < 10; c++) /* balanced: 6000 / 1000 of each class */
            assert_int_equal(hist[c], sizes[s] / 10);
        const float *xv = x->data;
        float lo = 1, hi = 0;
        for (int64_t i = 0; i < po_tensor_numel(x); i++) {
            lo = xv[i] < lo ? xv[i] : lo;
            hi = xv[i] > hi ? xv[i] : hi;
        }
        assert_true(lo == 0.0f && hi == 1.0f);
        po_tensor_free(x);
        po_tensor_free(y);
        po_dataset_free(d);
    }
}

/* ---- CIFAR-10 ---- */

/* n records; record r of file f: label (r + f) % 10, pixel i = (i + r * 5 + f * 11) % 256. */
static uint8_t *cifar_bytes(int n, int f, size_t *len) {
    *len = (size_t)n * PO__CIFAR_RECORD;
    uint8_t *b = malloc(*len);
    for (int r = 0; r < n; r++) {
        uint8_t *rec = b + (size_t)r * PO__CIFAR_RECORD;
        rec[0] = (uint8_t)((r + f) % 10);
        for (int i = 0; i < PO__CIFAR_PIXELS; i++)
            rec[1 + i] = (uint8_t)((i + r * 5 + f * 11) % 256);
    }
    return b;
}

static void write_cifar_dir(const char *dir) {
    make_dir(dir);
    char rel[512];
    size_t len;
    for (int f = 1; f <= 5; f++) {
        uint8_t *b = cifar_bytes(2, f, &len);
        snprintf(rel, sizeof rel, "%s/data_batch_%d.bin", dir, f);
        po_test_write_file(tmp_path(rel), b, len);
        free(b);
    }
    uint8_t *b = cifar_bytes(3, 0, &len);
    snprintf(rel, sizeof rel, "%s/test_batch.bin", dir);
    po_test_write_file(tmp_path(rel), b, len);
    free(b);
}

static void check_cifar(const char *spec) {
    po_dataset *d = open_ok(spec, PO_SPLIT_TRAIN, 0);
    assert_int_equal(po_dataset_size(d), 10);
    po_shape s = po_dataset_sample_shape(d), want = PO_SHAPE(3, 32, 32);
    assert_true(po_shape_equal(&s, &want));
    assert_int_equal(po_dataset_classes(d), 10);
    po_tensor *x, *y;
    all_samples(d, &x, &y);
    const float *xv = x->data;
    for (int f = 1; f <= 5; f++)
        for (int r = 0; r < 2; r++) {
            int64_t k = (f - 1) * 2 + r;
            assert_int_equal(((int64_t *)y->data)[k], (r + f) % 10);
            for (int i = 0; i < PO__CIFAR_PIXELS; i += 97)
                assert_true(xv[k * PO__CIFAR_PIXELS + i] == (float)((i + r * 5 + f * 11) % 256) / 255.0f);
        }
    po_tensor_free(x);
    po_tensor_free(y);
    po_dataset_free(d);
    d = open_ok(spec, PO_SPLIT_TEST, 0);
    assert_int_equal(po_dataset_size(d), 3);
    po_dataset_free(d);
}

static void test_cifar(void **state) {
    (void)state;
    write_cifar_dir("cifar");
    char spec[4096];
    snprintf(spec, sizeof spec, "cifar10:%s", tmp_path("cifar"));
    check_cifar(spec);
    /* The tarball's layout: DIR/cifar-10-batches-bin/... */
    make_dir("cifar_parent");
    write_cifar_dir("cifar_parent/cifar-10-batches-bin");
    snprintf(spec, sizeof spec, "cifar10:%s", tmp_path("cifar_parent"));
    check_cifar(spec);
}

/* ---- text ---- */

static void test_text(void **state) {
    (void)state;
    uint8_t bytes[95];
    for (int i = 0; i < 95; i++)
        bytes[i] = (uint8_t)(200 + i); /* wraps past 255: every id < 256 */
    po_test_write_file(tmp_path("t95.txt"), bytes, sizeof bytes);
    char spec[4096];
    snprintf(spec, sizeof spec, "text:%s", tmp_path("t95.txt"));
    /* (95 - 1) / 4 = 23 windows: train floor(0.9 * 23) = 20, test 3. */
    po_dataset *tr = open_ok(spec, PO_SPLIT_TRAIN, 4), *te = open_ok(spec, PO_SPLIT_TEST, 4);
    assert_int_equal(po_dataset_size(tr), 20);
    assert_int_equal(po_dataset_size(te), 3);
    po_shape s = po_dataset_sample_shape(tr), want = PO_SHAPE(4);
    assert_true(po_shape_equal(&s, &want));
    s = po_dataset_target_shape(tr);
    assert_true(po_shape_equal(&s, &want));
    assert_int_equal(po_dataset_sample_dtype(tr), PO_I64);
    assert_int_equal(po_dataset_classes(tr), 256);
    po_tensor *x, *y;
    all_samples(tr, &x, &y);
    for (int k = 0; k < 20; k++)
        for (int i = 0; i < 4; i++) {
            assert_int_equal(((int64_t *)x->data)[k * 4 + i], bytes[k * 4 + i]);
            assert_int_equal(((int64_t *)y->data)[k * 4 + i], bytes[k * 4 + i + 1]);
        }
    po_tensor_free(x);
    po_tensor_free(y);
    all_samples(te, &x, &y);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++) {
            assert_int_equal(((int64_t *)x->data)[k * 4 + i], bytes[(20 + k) * 4 + i]);
            assert_int_equal(((int64_t *)y->data)[k * 4 + i], bytes[(20 + k) * 4 + i + 1]);
        }
    po_tensor_free(x);
    po_tensor_free(y);
    po_dataset_free(tr);
    po_dataset_free(te);
}

static void test_text_windows(void **state) {
    (void)state;
    int64_t first, count;
    /* Exactly one window: both splits serve it. */
    PO_CHECK(po__text_windows(5, 4, PO_SPLIT_TRAIN, "f", &first, &count));
    assert_true(first == 0 && count == 1);
    PO_CHECK(po__text_windows(8, 4, PO_SPLIT_TEST, "f", &first, &count));
    assert_true(first == 0 && count == 1);
    /* Two windows: one each. */
    PO_CHECK(po__text_windows(9, 4, PO_SPLIT_TRAIN, "f", &first, &count));
    assert_true(first == 0 && count == 1);
    PO_CHECK(po__text_windows(9, 4, PO_SPLIT_TEST, "f", &first, &count));
    assert_true(first == 1 && count == 1);
    /* 10 windows: 9 + 1; 11 windows: 9 + 2; 100: 90 + 10. */
    PO_CHECK(po__text_windows(41, 4, PO_SPLIT_TEST, "f", &first, &count));
    assert_true(first == 9 && count == 1);
    PO_CHECK(po__text_windows(45, 4, PO_SPLIT_TEST, "f", &first, &count));
    assert_true(first == 9 && count == 2);
    PO_CHECK(po__text_windows(101, 1, PO_SPLIT_TRAIN, "f", &first, &count));
    assert_true(first == 0 && count == 90);
    /* Huge files: no overflow in the split arithmetic; the split is limited in size. */
    assert_int_equal(po__text_windows(UINT64_MAX, 1, PO_SPLIT_TEST, "big", &first, &count), PO_ERR_RANGE);
    assert_int_equal(po__text_windows(4, 4, PO_SPLIT_TRAIN, "f", &first, &count), PO_ERR_RANGE);
    assert_int_equal(po__text_windows(100, 0, PO_SPLIT_TRAIN, "f", &first, &count), PO_ERR_RANGE);
}

/* ---- safetensors ---- */

static void test_safetensors(void **state) {
    (void)state;
    po_tensor *x, *y, *tx, *ty;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(4, 3), &x));
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(4), &y));
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(2, 3), &tx));
    PO_CHECK(po_tensor_new(PO_I32, PO_SHAPE(2), &ty));
    for (int i = 0; i < 12; i++)
        ((float *)x->data)[i] = (float)i;
    for (int i = 0; i < 4; i++)
        ((int64_t *)y->data)[i] = i * 2; /* max 6: 7 classes */
    ((int32_t *)ty->data)[1] = 9;
    const char *path = tmp_path("train.safetensors"), *path2 = tmp_path("only.safetensors");
    const char *names[] = {"input.x", "input.y", "test.x", "test.y"};
    const po_tensor *ts[] = {x, y, tx, ty};
    PO_CHECK(po_st_write(path, 4, names, ts, 0, NULL, NULL));
    PO_CHECK(po_st_write(path2, 2, names, ts, 0, NULL, NULL));
    po_dataset *d = open_ok(path, PO_SPLIT_TRAIN, 0);
    assert_int_equal(po_dataset_size(d), 4);
    assert_int_equal(po_dataset_classes(d), 7);
    po_shape s = po_dataset_sample_shape(d), want = PO_SHAPE(3);
    assert_true(po_shape_equal(&s, &want));
    assert_string_equal(po_dataset_name(d), path);
    po_dataset_free(d);
    d = open_ok(path, PO_SPLIT_TEST, 0); /* test.x / test.y */
    assert_int_equal(po_dataset_size(d), 2);
    assert_int_equal(po_dataset_classes(d), 10);
    po_dataset_free(d);
    d = open_ok(path2, PO_SPLIT_TEST, 0); /* no test.*: input.* serves both */
    assert_int_equal(po_dataset_size(d), 4);
    po_dataset_free(d);
    PO_CHECK(po_dataset_open_safetensors(path2, &d));
    assert_int_equal(po_dataset_size(d), 4);
    po_dataset_free(d);
    /* Negative targets are refused at open. */
    ((int64_t *)y->data)[2] = -1;
    PO_CHECK(po_st_write(path2, 2, names, ts, 0, NULL, NULL));
    expect_open_error(path2, PO_SPLIT_TRAIN, 0, PO_ERR_RANGE, path2, "input.y holds -1");
    po_tensor_free(x);
    po_tensor_free(y);
    po_tensor_free(tx);
    po_tensor_free(ty);
}

/* ---- malformed input ---- */

/* Writes an IDX directory from the given images/labels bytes (plain). */
static void write_pair(const char *dir, const void *im, size_t ilen, const void *lb, size_t llen) {
    make_dir(dir);
    char rel[512];
    snprintf(rel, sizeof rel, "%s/train-images-idx3-ubyte", dir);
    po_test_write_file(tmp_path(rel), im, ilen);
    snprintf(rel, sizeof rel, "%s/train-labels-idx1-ubyte", dir);
    po_test_write_file(tmp_path(rel), lb, llen);
}

/* The IDX directory `dir` with the given files must fail on open of the train split. */
static void expect_idx_error(const char *dir, const void *im, size_t ilen, const void *lb, size_t llen,
                             const char *bad_file, po_status status, const char *needle) {
    write_pair(dir, im, ilen, lb, llen);
    char spec[4096], rel[512];
    snprintf(spec, sizeof spec, "idx:%s", tmp_path(dir));
    snprintf(rel, sizeof rel, "%s/%s", dir, bad_file);
    if (status == PO_OK) { /* a variant that must be accepted */
        po_dataset_free(open_ok(spec, PO_SPLIT_TRAIN, 0));
        return;
    }
    expect_open_error(spec, PO_SPLIT_TRAIN, 0, status, tmp_path(rel), needle);
}

static void test_idx_malformed(void **state) {
    (void)state;
    size_t il, ll;
    uint8_t *im = idx_images(6, 2, 2, 0, &il), *lb = idx_labels(6, 0, &ll);
    const char *I = "train-images-idx3-ubyte", *L = "train-labels-idx1-ubyte";

    /* Missing directory or file. */
    expect_open_error("idx:/nonexistent/dir", PO_SPLIT_TRAIN, 0, PO_ERR_IO, "/nonexistent/dir/train-images",
                      "no such file");
    write_pair("only_train", im, il, lb, ll);
    char spec[4096];
    snprintf(spec, sizeof spec, "idx:%s", tmp_path("only_train"));
    expect_open_error(spec, PO_SPLIT_TEST, 0, PO_ERR_IO, tmp_path("only_train/t10k-images-idx3-ubyte"), "no such file");

    /* Wrong magic: images, labels, and the two swapped. */
    uint8_t *bad = malloc(il);
    memcpy(bad, im, il);
    bad[3] = 0x02;
    expect_idx_error("magic_im", bad, il, lb, ll, I, PO_ERR_FORMAT, "wrong magic 0x00000802");
    bad[2] = 0x0d; /* float element type */
    bad[3] = 0x03;
    expect_idx_error("magic_type", bad, il, lb, ll, I, PO_ERR_FORMAT, "wrong magic 0x00000d03");
    expect_idx_error("magic_swap", lb, ll, im, il, I, PO_ERR_FORMAT, "wrong magic 0x00000801");
    uint8_t lbad[64];
    memcpy(lbad, lb, ll);
    lbad[0] = 0x1f; /* not gzip either: only 1f 8b is */
    expect_idx_error("magic_lb", im, il, lbad, ll, L, PO_ERR_FORMAT, "wrong magic");

    /* Truncated header, truncated data, trailing bytes. */
    expect_idx_error("short_hdr", im, 10, lb, ll, I, PO_ERR_FORMAT, "truncated IDX header");
    expect_idx_error("short_2", im, 2, lb, ll, I, PO_ERR_FORMAT, "too short");
    expect_idx_error("trunc_im", im, il - 1, lb, ll, I, PO_ERR_FORMAT, "truncated");
    expect_idx_error("trunc_lb", im, il, lb, ll - 3, L, PO_ERR_FORMAT, "truncated");
    uint8_t *longer = calloc(il + 5, 1);
    memcpy(longer, im, il);
    expect_idx_error("trailing", longer, il + 5, lb, ll, I, PO_ERR_FORMAT, "5 trailing bytes");
    expect_idx_error("empty", im, 0, lb, ll, I, PO_ERR_FORMAT, "too short");

    /* Image count != label count. */
    size_t l5;
    uint8_t *lb5 = idx_labels(5, 0, &l5);
    expect_idx_error("count", im, il, lb5, l5, I, PO_ERR_FORMAT, "6 images, but");

    /* Label out of range. */
    memcpy(lbad, lb, ll);
    lbad[8 + 4] = 10;
    expect_idx_error("label", im, il, lbad, ll, L, PO_ERR_RANGE, "label 10 at position 4 is outside 0..9");

    /* Absurd dims: their product overflows 64 bits, or is just past the limit; zero. */
    memcpy(bad, im, il);
    put_be32(bad + 4, 0xffffffffu);
    put_be32(bad + 8, 0xffffffffu);
    put_be32(bad + 12, 0xffffffffu);
    expect_idx_error("huge", bad, il, lb, ll, I, PO_ERR_RANGE, "exceed");
    put_be32(bad + 4, 65537);
    put_be32(bad + 8, 256);
    put_be32(bad + 12, 256);
    expect_idx_error("huge2", bad, il, lb, ll, I, PO_ERR_RANGE, "exceed");
    put_be32(bad + 4, 60000); /* plausible dims, far more than the file holds */
    put_be32(bad + 8, 28);
    put_be32(bad + 12, 28);
    expect_idx_error("lying", bad, il, lb, ll, I, PO_ERR_FORMAT, "truncated: the IDX dimensions need 47040000");
    put_be32(bad + 8, 0);
    expect_idx_error("zero", bad, il, lb, ll, I, PO_ERR_RANGE, "dimension 1 is 0");

    free(bad);
    free(longer);
    free(lb5);
    free(im);
    free(lb);
}

static void test_gzip_malformed(void **state) {
    (void)state;
    size_t il, ll, gl;
    uint8_t *im = idx_images(6, 2, 2, 0, &il), *lb = idx_labels(6, 0, &ll);
    uint8_t *gz = gzip_bytes(im, il, &gl);
    const char *I = "train-images-idx3-ubyte";

    /* The gzip is read and detected by its magic, whatever the file's name. */
    expect_idx_error("gz_ok_plainname", gz, gl, lb, ll, I, PO_OK, "");

    /* Truncated stream. */
    expect_idx_error("gz_trunc", gz, gl - 6, lb, ll, I, PO_ERR_FORMAT, "truncated gzip stream");
    expect_idx_error("gz_trunc2", gz, 12, lb, ll, I, PO_ERR_FORMAT, "gzip");
    /* Corrupt deflate data / header. */
    uint8_t *c = malloc(gl + 8);
    memcpy(c, gz, gl);
    c[3] = 0xe0; /* reserved flag bits */
    expect_idx_error("gz_flags", c, gl, lb, ll, I, PO_ERR_FORMAT, "corrupt gzip data");
    memcpy(c, gz, gl);
    c[gl - 5] ^= 0x55; /* length trailer */
    expect_idx_error("gz_len", c, gl, lb, ll, I, PO_ERR_FORMAT, "corrupt gzip data");
    /* Garbage after the stream. */
    memcpy(c, gz, gl);
    memcpy(c + gl, "garbage!", 8);
    expect_idx_error("gz_trailing", c, gl + 8, lb, ll, I, PO_ERR_FORMAT, "8 trailing bytes after the gzip stream");
    free(c);

    /* Two members concatenated (cat a.gz b.gz) inflate to the concatenation. */
    size_t h1, h2;
    uint8_t *g1 = gzip_bytes(im, 10, &h1), *g2 = gzip_bytes(im + 10, il - 10, &h2);
    uint8_t *cat = malloc(h1 + h2);
    memcpy(cat, g1, h1);
    memcpy(cat + h1, g2, h2);
    expect_idx_error("gz_members", cat, h1 + h2, lb, ll, I, PO_OK, "");
    free(g1);
    free(g2);
    free(cat);

    /* More inflated bytes than the limit: a small stream of zeros that expands 1000-fold. */
    uint8_t *zeros = calloc(1 << 20, 1), *out;
    size_t zl, ol;
    uint8_t *zg = gzip_bytes(zeros, 1 << 20, &zl);
    po_clear_error();
    assert_int_equal(po__gunzip(zg, zl, 100000, "bomb.gz", &out, &ol), PO_ERR_RANGE);
    assert_non_null(strstr(po_last_error(), "bomb.gz: inflates to more than 100000 bytes"));
    assert_null(out);
    PO_CHECK(po__gunzip(zg, zl, 1 << 20, "exact.gz", &out, &ol)); /* exactly at the limit: fine */
    assert_int_equal(ol, 1 << 20);
    free(out);
    free(zg);
    free(zeros);
    free(gz);
    free(im);
    free(lb);
}

static void test_cifar_malformed(void **state) {
    (void)state;
    expect_open_error("cifar10:/nonexistent", PO_SPLIT_TRAIN, 0, PO_ERR_IO, "/nonexistent/data_batch_1.bin",
                      "no such file");
    write_cifar_dir("cifar_bad");
    char spec[4096];
    snprintf(spec, sizeof spec, "cifar10:%s", tmp_path("cifar_bad"));
    size_t len;
    uint8_t *b = cifar_bytes(2, 0, &len);
    /* Truncated record. */
    po_test_write_file(tmp_path("cifar_bad/data_batch_2.bin"), b, len - 100);
    expect_open_error(spec, PO_SPLIT_TRAIN, 0, PO_ERR_FORMAT, tmp_path("cifar_bad/data_batch_2.bin"),
                      "not a whole number of 3073-byte records");
    /* Trailing garbage. */
    uint8_t *longer = calloc(len + 3, 1);
    memcpy(longer, b, len);
    po_test_write_file(tmp_path("cifar_bad/data_batch_2.bin"), longer, len + 3);
    expect_open_error(spec, PO_SPLIT_TRAIN, 0, PO_ERR_FORMAT, tmp_path("cifar_bad/data_batch_2.bin"),
                      "3 trailing bytes");
    /* Empty file. */
    po_test_write_file(tmp_path("cifar_bad/data_batch_2.bin"), b, 0);
    expect_open_error(spec, PO_SPLIT_TRAIN, 0, PO_ERR_FORMAT, tmp_path("cifar_bad/data_batch_2.bin"), "empty");
    /* Label out of range (in the second record). */
    b[PO__CIFAR_RECORD] = 200;
    po_test_write_file(tmp_path("cifar_bad/data_batch_2.bin"), b, len);
    expect_open_error(spec, PO_SPLIT_TRAIN, 0, PO_ERR_RANGE, tmp_path("cifar_bad/data_batch_2.bin"),
                      "label 200 of record 1 is outside 0..9");
    /* A missing later file. */
    unlink(tmp_path("cifar_bad/data_batch_4.bin"));
    b[PO__CIFAR_RECORD] = 1;
    po_test_write_file(tmp_path("cifar_bad/data_batch_2.bin"), b, len);
    expect_open_error(spec, PO_SPLIT_TRAIN, 0, PO_ERR_IO, tmp_path("cifar_bad/data_batch_4.bin"), "cannot open");
    /* The test split alone still opens. */
    po_dataset *d = open_ok(spec, PO_SPLIT_TEST, 0);
    po_dataset_free(d);
    free(longer);
    free(b);
}

static void test_text_malformed(void **state) {
    (void)state;
    expect_open_error("text:/nonexistent.txt", PO_SPLIT_TRAIN, 8, PO_ERR_IO, "/nonexistent.txt", "cannot open");
    po_test_write_file(tmp_path("short.txt"), "abcdefgh", 8);
    char spec[4096];
    snprintf(spec, sizeof spec, "text:%s", tmp_path("short.txt"));
    expect_open_error(spec, PO_SPLIT_TRAIN, 8, PO_ERR_RANGE, tmp_path("short.txt"),
                      "8 bytes, shorter than one window of seq + 1 = 9 bytes");
    expect_open_error(spec, PO_SPLIT_TEST, 0, PO_ERR_RANGE, tmp_path("short.txt"), "must be positive");
    po_test_write_file(tmp_path("empty.txt"), "", 0);
    snprintf(spec, sizeof spec, "text:%s", tmp_path("empty.txt"));
    expect_open_error(spec, PO_SPLIT_TRAIN, 1, PO_ERR_RANGE, tmp_path("empty.txt"), "0 bytes");
    snprintf(spec, sizeof spec, "text:%s", tmp_dir);
    expect_open_error(spec, PO_SPLIT_TRAIN, 1, PO_ERR_IO, tmp_dir, "not a regular file");
}

static void test_spec_errors(void **state) {
    (void)state;
    expect_open_error("synthetic", PO_SPLIT_TRAIN, 0, PO_ERR_INVALID_ARG, "synthetic", "po_dataset_synthetic");
    expect_open_error("", PO_SPLIT_TRAIN, 0, PO_ERR_INVALID_ARG, "empty", "spec");
    expect_open_error("/nonexistent.safetensors", PO_SPLIT_TRAIN, 0, PO_ERR_IO, "/nonexistent.safetensors",
                      "cannot open");
    expect_open_error("idx:", PO_SPLIT_TRAIN, 0, PO_ERR_IO, "/train-images", "no such file");
}

/* ---- fitting a model ---- */

static void test_check_model(void **state) {
    (void)state;
    write_idx_dir("idx_model", 8, 2, 4, 3, false);
    char spec[4096];
    snprintf(spec, sizeof spec, "idx:%s", tmp_path("idx_model"));
    po_dataset *d = open_ok(spec, PO_SPLIT_TRAIN, 0);
    po_model *m;
    /* mnist_mlp takes [B, 12]: the [1, 4, 3] images flattened. */
    PO_CHECK(po_model_build("mnist_mlp:d_in=12,hidden=8,classes=10", 4, &m));
    PO_CHECK(po_dataset_check(d, m));
    po_tensor *x, *y;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(4, 12), &x));
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(4), &y));
    PO_CHECK(po_dataset_batch(d, 1, x, y)); /* samples 4..7 */
    assert_int_equal(((int64_t *)y->data)[0], (4 * 3 + 1) % 10);
    PO_CHECK(po_dataset_batch(d, 3, x, y)); /* samples 4..7 again: 12..15 mod 8 */
    assert_int_equal(((int64_t *)y->data)[0], (4 * 3 + 1) % 10);
    PO_CHECK(po_dataset_batch(d, -1, x, y)); /* counts back: samples 4..7 */
    assert_int_equal(((int64_t *)y->data)[0], (4 * 3 + 1) % 10);
    po_tensor_free(x);
    po_tensor_free(y);
    po_model_free(m);
    PO_CHECK(po_model_build("mnist_mlp:d_in=13,hidden=8,classes=10", 4, &m));
    assert_int_equal(po_dataset_check(d, m), PO_ERR_SHAPE);
    assert_non_null(strstr(po_last_error(), "samples are [1, 4, 3]"));
    po_model_free(m);
    PO_CHECK(po_model_build("mnist_mlp:d_in=12,hidden=8,classes=5", 4, &m));
    assert_int_equal(po_dataset_check(d, m), PO_ERR_RANGE);
    assert_non_null(strstr(po_last_error(), "target"));
    po_model_free(m);
    po_dataset_free(d);

    /* Text against tiny_gpt: a vocabulary below the bytes present is refused. */
    uint8_t bytes[64];
    for (int i = 0; i < 64; i++)
        bytes[i] = (uint8_t)(i * 4);
    po_test_write_file(tmp_path("model.txt"), bytes, sizeof bytes);
    snprintf(spec, sizeof spec, "text:%s", tmp_path("model.txt"));
    d = open_ok(spec, PO_SPLIT_TRAIN, 8);
    PO_CHECK(po_model_build("tiny_gpt:vocab=256,d_model=16,layers=1,heads=2,seq=8", 2, &m));
    PO_CHECK(po_dataset_check(d, m));
    po_model_free(m);
    PO_CHECK(po_model_build("tiny_gpt:vocab=64,d_model=16,layers=1,heads=2,seq=8", 2, &m));
    assert_int_equal(po_dataset_check(d, m), PO_ERR_RANGE);
    assert_non_null(strstr(po_last_error(), "token id"));
    po_model_free(m);
    PO_CHECK(po_model_build("tiny_gpt:vocab=256,d_model=16,layers=1,heads=2,seq=4", 2, &m));
    assert_int_equal(po_dataset_check(d, m), PO_ERR_SHAPE);
    po_model_free(m);
    po_dataset_free(d);
}

static void test_synthetic(void **state) {
    (void)state;
    po_model *m;
    PO_CHECK(po_model_build("mnist_mlp:d_in=12,hidden=8,classes=10", 4, &m));
    po_dataset *d;
    PO_CHECK(po_dataset_synthetic(m, 16, 7, &d));
    assert_int_equal(po_dataset_size(d), 16);
    assert_int_equal(po_dataset_classes(d), 10);
    assert_string_equal(po_dataset_name(d), "synthetic");
    po_shape s = po_dataset_sample_shape(d), want = PO_SHAPE(12);
    assert_true(po_shape_equal(&s, &want));
    PO_CHECK(po_dataset_check(d, m));
    po_dataset_free(d);
    po_model_free(m);
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
        cmocka_unit_test(test_idx_plain),
        cmocka_unit_test(test_idx_gzip),
        cmocka_unit_test(test_idx_scaling_all_bytes),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_cifar),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_text_windows),
        cmocka_unit_test(test_safetensors),
        cmocka_unit_test(test_idx_malformed),
        cmocka_unit_test(test_gzip_malformed),
        cmocka_unit_test(test_cifar_malformed),
        cmocka_unit_test(test_text_malformed),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_check_model),
        cmocka_unit_test(test_synthetic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

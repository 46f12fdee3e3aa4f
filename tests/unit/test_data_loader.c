/* The batch loader: shuffled epochs are permutations that differ per epoch and depend only on
 * (seed, epoch); drop-last and evaluation batch counts; file order without shuffle; seek gives
 * the batch that iteration reaches; seeks and frees at any moment (run under helgrind/TSan);
 * tensor checks; and a pinned order, since changing it would break resuming old runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "data/readers.h"
#include "paropt/paropt.h"
#include "po_test.h"

/* n samples of [1, 1, w] pixels whose first two (hi, lo) encode the sample index, pixel k >= 2
 * = index * k mod 256; label = index % 10. */
static po_dataset *indexed_dataset_w(uint32_t n, uint32_t w) {
    size_t ilen = 16 + (size_t)w * n, llen = 8 + n;
    uint8_t *im = malloc(ilen), *lb = malloc(llen);
    const uint8_t ih[16] = {0, 0, 8, 3, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n,
                            0, 0, 0, 1, (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
    const uint8_t lh[8] = {0, 0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(im, ih, 16);
    memcpy(lb, lh, 8);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = im + 16 + (size_t)w * i;
        p[0] = (uint8_t)(i >> 8);
        p[1] = (uint8_t)i;
        for (uint32_t k = 2; k < w; k++)
            p[k] = (uint8_t)(i * k);
        lb[8 + i] = (uint8_t)(i % 10);
    }
    po_dataset *d;
    PO_CHECK(po__idx_dataset(im, ilen, "images", lb, llen, "labels", "indexed", &d));
    free(im);
    free(lb);
    return d;
}

static po_dataset *indexed_dataset(uint32_t n) { return indexed_dataset_w(n, 2); }

typedef struct batch_buf {
    po_tensor *x, *y;
} batch_buf;

static batch_buf buf_new_w(int64_t B, int64_t w) {
    batch_buf b;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(B, 1, 1, w), &b.x));
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(B), &b.y));
    return b;
}

static batch_buf buf_new(int64_t B) { return buf_new_w(B, 2); }

static void buf_free(batch_buf *b) {
    po_tensor_free(b->x);
    po_tensor_free(b->y);
}

/* Next batch as sample indices, decoded from the pixels; every pixel and the label are checked
 * against that index, so a batch mixing two samples' bytes fails. */
static void next_ids(po_loader *l, batch_buf *b, int64_t *ids) {
    PO_CHECK(po_loader_next(l, b->x, b->y));
    int64_t B = b->x->shape.dim[0], w = b->x->shape.dim[3], rows = po_loader_rows(l);
    const int64_t *y = b->y->data;
    for (int64_t r = 0; r < B; r++) {
        const float *x = (const float *)b->x->data + r * w;
        if (r >= rows) { /* padding of a short evaluation batch */
            for (int64_t k = 0; k < w; k++)
                assert_true(x[k] == 0.0f);
            assert_int_equal(y[r], 0);
            ids[r] = -1;
            continue;
        }
        int64_t hi = (int64_t)(x[0] * 255.0f + 0.5f), lo = (int64_t)(x[1] * 255.0f + 0.5f);
        ids[r] = hi * 256 + lo;
        for (int64_t k = 0; k < w; k++) {
            uint8_t p = k == 0 ? (uint8_t)(ids[r] >> 8) : k == 1 ? (uint8_t)ids[r] : (uint8_t)(ids[r] * k);
            assert_true(x[k] == (float)p / 255.0f);
        }
        assert_int_equal(y[r], ids[r] % 10);
    }
}

/* The ids of `epochs` whole epochs: out[e][b * B + r]. */
static int64_t *run_epochs_w(po_loader *l, int epochs, int64_t w) {
    int64_t B = po_loader_batch_size(l), bpe = po_loader_batches_per_epoch(l);
    int64_t *out = malloc(sizeof *out * (size_t)(epochs * bpe * B));
    batch_buf b = buf_new_w(B, w);
    for (int64_t k = 0; k < epochs * bpe; k++)
        next_ids(l, &b, out + k * B);
    buf_free(&b);
    return out;
}

static int64_t *run_epochs(po_loader *l, int epochs) { return run_epochs_w(l, epochs, 2); }

static void test_shuffle_is_permutation(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(103);
    po_loader *l;
    PO_CHECK(po_loader_new(d, 10, 42, true, &l));
    assert_int_equal(po_loader_batches_per_epoch(l), 10); /* floor(103 / 10): the rest dropped */
    int64_t *ids = run_epochs(l, 3);
    int dropped_differ = 0, order_differ = 0;
    char seen_prev[103] = {0};
    for (int e = 0; e < 3; e++) {
        char seen[103] = {0};
        for (int i = 0; i < 100; i++) {
            int64_t v = ids[e * 100 + i];
            if (v < 0 || v >= 103) fail_msg("sample index %lld out of range", (long long)v);
            assert_int_equal(seen[v], 0); /* no repeats within an epoch */
            seen[v] = 1;
            if (e && v != ids[(e - 1) * 100 + i]) order_differ = 1;
        }
        if (e && memcmp(seen, seen_prev, sizeof seen)) dropped_differ = 1;
        memcpy(seen_prev, seen, sizeof seen);
    }
    assert_true(order_differ);   /* every epoch its own order ... */
    assert_true(dropped_differ); /* ... and so its own dropped samples */
    int64_t e, bi;
    po_loader_position(l, &e, &bi);
    assert_true(e == 3 && bi == 0);
    free(ids);
    po_loader_free(l);
    /* B = 1: an epoch is exactly a permutation of all 103. */
    PO_CHECK(po_loader_new(d, 1, 7, true, &l));
    ids = run_epochs(l, 1);
    char seen[103] = {0};
    int moved = 0;
    for (int i = 0; i < 103; i++) {
        assert_int_equal(seen[ids[i]], 0);
        seen[ids[i]] = 1;
        moved += ids[i] != i;
    }
    assert_true(moved > 50);
    free(ids);
    po_loader_free(l);
    po_dataset_free(d);
}

static void test_same_seed_same_order(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(64);
    po_loader *a, *b, *c;
    PO_CHECK(po_loader_new(d, 8, 1234, true, &a));
    PO_CHECK(po_loader_new(d, 8, 1234, true, &b));
    PO_CHECK(po_loader_new(d, 8, 1235, true, &c));
    int64_t *ia = run_epochs(a, 3), *ib = run_epochs(b, 3), *ic = run_epochs(c, 3);
    assert_memory_equal(ia, ib, sizeof *ia * 3 * 64);
    assert_memory_not_equal(ia, ic, sizeof *ia * 64);
    free(ia);
    free(ib);
    free(ic);
    po_loader_free(a);
    po_loader_free(b);
    po_loader_free(c);
    po_dataset_free(d);
}

/* The first batches of seed 42 on 20 samples, B = 4, pinned: a change here silently changes
 * every run's data order and breaks --resume of runs checkpointed before it. Update only on
 * purpose. */
static void test_pinned_order(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(20);
    po_loader *l;
    PO_CHECK(po_loader_new(d, 4, 42, true, &l));
    int64_t *ids = run_epochs(l, 2);
    static const int64_t want[40] = {2, 0, 7, 12, 15, 4, 16, 9,  1,  14, 18, 6,  8, 11, 5,  19, 3, 10, 13, 17,
                                     4, 8, 1, 15, 0,  6, 3,  19, 17, 10, 12, 16, 7, 2,  14, 13, 5, 18, 11, 9};
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    po_loader_free(l);
    po_dataset_free(d);
}

static void test_no_shuffle_file_order(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(23);
    po_loader *l;
    PO_CHECK(po_loader_new(d, 5, 99, false, &l));
    assert_int_equal(po_loader_batches_per_epoch(l), 4);
    int64_t *ids = run_epochs(l, 2);
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < 20; i++)
            assert_int_equal(ids[e * 20 + i], i);
    free(ids);
    po_loader_free(l);
    po_dataset_free(d);
}

static void test_eval_covers_every_sample(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(23);
    po_loader *l;
    PO_CHECK(po_loader_new_eval(d, 5, &l));
    assert_int_equal(po_loader_batches_per_epoch(l), 5); /* ceil(23 / 5) */
    assert_int_equal(po_loader_rows(l), 0);
    batch_buf b = buf_new(5);
    int64_t ids[5];
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 5; k++) {
            next_ids(l, &b, ids);
            assert_int_equal(po_loader_rows(l), k < 4 ? 5 : 3);
            for (int r = 0; r < po_loader_rows(l); r++)
                assert_int_equal(ids[r], k * 5 + r);
        }
    buf_free(&b);
    po_loader_free(l);
    /* A batch larger than the split: one short batch. */
    PO_CHECK(po_loader_new_eval(d, 64, &l));
    assert_int_equal(po_loader_batches_per_epoch(l), 1);
    b = buf_new(64);
    int64_t big[64];
    next_ids(l, &b, big);
    assert_int_equal(po_loader_rows(l), 23);
    buf_free(&b);
    po_loader_free(l);
    po_dataset_free(d);
}

static void test_seek_matches_iteration(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(50);
    po_loader *ref, *l;
    PO_CHECK(po_loader_new(d, 6, 5, true, &ref));
    int64_t bpe = po_loader_batches_per_epoch(ref); /* 8 */
    int64_t *all = run_epochs(ref, 4);
    po_loader_free(ref);
    PO_CHECK(po_loader_new(d, 6, 5, true, &l));
    batch_buf b = buf_new(6);
    int64_t ids[6];
    /* Random seeks, some right after another seek or a next. */
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < 300; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        int64_t e = (int64_t)(r % 4), k = (int64_t)((r >> 8) % (uint64_t)bpe);
        PO_CHECK(po_loader_seek(l, e, k));
        if (r & 0x10000) PO_CHECK(po_loader_seek(l, e, k)); /* twice in a row */
        int64_t pe, pb;
        po_loader_position(l, &pe, &pb);
        assert_true(pe == e && pb == k);
        int steps = (int)((r >> 20) % 3); /* 0 .. 2 batches from there */
        for (int s = 0; s <= steps && e * bpe + k + s < 4 * bpe; s++) {
            next_ids(l, &b, ids);
            assert_memory_equal(ids, all + (e * bpe + k + s) * 6, sizeof ids);
        }
    }
    /* Positions wrap at the epoch's end. */
    PO_CHECK(po_loader_seek(l, 2, bpe - 1));
    next_ids(l, &b, ids);
    int64_t pe, pb;
    po_loader_position(l, &pe, &pb);
    assert_true(pe == 3 && pb == 0);
    next_ids(l, &b, ids);
    assert_memory_equal(ids, all + 3 * bpe * 6, sizeof ids);
    /* Out of range. */
    assert_int_equal(po_loader_seek(l, 0, bpe), PO_ERR_RANGE);
    assert_int_equal(po_loader_seek(l, -1, 0), PO_ERR_RANGE);
    assert_int_equal(po_loader_seek(l, 0, -1), PO_ERR_RANGE);
    buf_free(&b);
    po_loader_free(l);
    free(all);
    po_dataset_free(d);
}

/* A seek right after each batch of a large batch size: the next batch is the seek's, whatever
 * position the shuffle's permutation was last drawn for. */
static void test_seek_after_next(void **state) {
    (void)state;
    const int64_t B = 500, W = 784;
    po_dataset *d = indexed_dataset_w(3100, (uint32_t)W);
    po_loader *ref, *l;
    PO_CHECK(po_loader_new(d, B, 77, true, &ref));
    int64_t bpe = po_loader_batches_per_epoch(ref); /* 6 */
    int64_t *all = run_epochs_w(ref, 3, W);
    po_loader_free(ref);
    PO_CHECK(po_loader_new(d, B, 77, true, &l));
    batch_buf b = buf_new_w(B, W);
    int64_t *ids = malloc(sizeof *ids * (size_t)B);
    for (int i = 0; i < 60; i++) {
        PO_CHECK(po_loader_next(l, b.x, b.y));
        int64_t e = i % 3, k = (i * 5) % bpe;
        PO_CHECK(po_loader_seek(l, e, k));
        next_ids(l, &b, ids);
        assert_memory_equal(ids, all + (e * bpe + k) * B, sizeof *ids * (size_t)B);
    }
    free(ids);
    buf_free(&b);
    po_loader_free(l);
    free(all);
    po_dataset_free(d);
}

static void test_bad_arguments(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(10);
    po_loader *l = (po_loader *)1;
    assert_int_equal(po_loader_new(d, 11, 0, true, &l), PO_ERR_INVALID_ARG); /* no full batch */
    assert_null(l);
    assert_non_null(strstr(po_last_error(), "exceeds the 10 samples"));
    assert_int_equal(po_loader_new(d, 0, 0, true, &l), PO_ERR_INVALID_ARG);
    assert_int_equal(po_loader_new_eval(d, -3, &l), PO_ERR_INVALID_ARG);
    PO_CHECK(po_loader_new(d, 10, 0, false, &l));
    assert_int_equal(po_loader_batches_per_epoch(l), 1);
    po_tensor *x, *y, *xf, *yb;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(10, 2), &x)); /* flattened rows are fine */
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(10), &y));
    PO_CHECK(po_loader_next(l, x, y));
    assert_true(((float *)x->data)[2 * 7 + 1] == 7.0f / 255.0f);
    po_tensor_free(x);
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(10, 3), &x));
    PO_CHECK(po_tensor_new(PO_I32, PO_SHAPE(10), &yb));
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(9, 2), &xf));
    int64_t e, k;
    po_loader_position(l, &e, &k);
    assert_int_equal(po_loader_next(l, x, y), PO_ERR_SHAPE);
    assert_int_equal(po_loader_next(l, xf, y), PO_ERR_SHAPE);
    assert_int_equal(po_loader_next(l, y, y), PO_ERR_DTYPE);
    po_tensor_free(x);
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(10, 2), &x));
    assert_int_equal(po_loader_next(l, x, yb), PO_ERR_DTYPE);
    po_tensor *t;
    PO_CHECK(po_tensor_transpose(x, 0, 1, &t)); /* [2, 10] strided: not contiguous */
    assert_int_equal(po_loader_next(l, t, y), PO_ERR_SHAPE);
    po_tensor_free(t);
    int64_t e2, k2;
    po_loader_position(l, &e2, &k2);
    assert_true(e == e2 && k == k2); /* failures leave the position alone */
    po_tensor_free(x);
    po_tensor_free(y);
    po_tensor_free(xf);
    po_tensor_free(yb);
    po_loader_free(l);
    po_loader_free(NULL);
    po_dataset_free(d);
}

/* Free right after creation, after a seek, and mid-epoch, many times over; under valgrind or
 * ASan this finds leaks. */
static void test_free_any_time(void **state) {
    (void)state;
    po_dataset *d = indexed_dataset(2000);
    batch_buf b = buf_new(100);
    for (int i = 0; i < 200; i++) {
        po_loader *l;
        PO_CHECK(po_loader_new(d, 100, (uint64_t)i, i % 2 == 0, &l));
        if (i % 3 == 1) PO_CHECK(po_loader_seek(l, i, i % 20));
        if (i % 5 == 2) PO_CHECK(po_loader_next(l, b.x, b.y));
        po_loader_free(l);
    }
    buf_free(&b);
    po_dataset_free(d);
}

/* Text data through the loader: I64 ids and shifted targets. */
static void test_text_loader(void **state) {
    (void)state;
    char path[] = "/tmp/po_test_text_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t bytes[41];
    for (int i = 0; i < 41; i++)
        bytes[i] = (uint8_t)(i * 5);
    FILE *fp = fdopen(fd, "wb");
    assert_int_equal(fwrite(bytes, 1, sizeof bytes, fp), sizeof bytes);
    fclose(fp);
    char spec[64];
    snprintf(spec, sizeof spec, "text:%s", path);
    po_dataset *d;
    PO_CHECK(po_dataset_open(spec, PO_SPLIT_TRAIN, 4, &d)); /* 10 windows: 9 train */
    unlink(path);
    assert_int_equal(po_dataset_size(d), 9);
    po_loader *l;
    PO_CHECK(po_loader_new(d, 3, 0, false, &l));
    po_tensor *x, *y;
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(3, 4), &x));
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(3, 4), &y));
    PO_CHECK(po_loader_next(l, x, y));
    PO_CHECK(po_loader_next(l, x, y)); /* windows 3, 4, 5 */
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 4; i++) {
            assert_int_equal(((int64_t *)x->data)[r * 4 + i], bytes[(3 + r) * 4 + i]);
            assert_int_equal(((int64_t *)y->data)[r * 4 + i], bytes[(3 + r) * 4 + i + 1]);
        }
    po_tensor_free(x);
    po_tensor_free(y);
    po_loader_free(l);
    po_dataset_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shuffle_is_permutation),
        cmocka_unit_test(test_same_seed_same_order),
        cmocka_unit_test(test_pinned_order),
        cmocka_unit_test(test_no_shuffle_file_order),
        cmocka_unit_test(test_eval_covers_every_sample),
        cmocka_unit_test(test_seek_matches_iteration),
        cmocka_unit_test(test_seek_after_next),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_free_any_time),
        cmocka_unit_test(test_text_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

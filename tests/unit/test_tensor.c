/* Tensors: allocation, shapes, dtypes, and views (reshape, transpose, narrow, split) that share
 * reference-counted storage; contiguous copies and strided copies. Run under valgrind (or ASan)
 * to prove that freeing a base before its views neither reads freed memory nor leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "po_test.h"

/* A [d0, d1, d2] F32 tensor holding 100*i + 10*j + k at [i, j, k]. */
static po_tensor *iota3(int64_t d0, int64_t d1, int64_t d2) {
    po_tensor *t;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(d0, d1, d2), &t));
    float *v = t->data;
    for (int64_t i = 0; i < d0; i++)
        for (int64_t j = 0; j < d1; j++)
            for (int64_t k = 0; k < d2; k++)
                v[(i * d1 + j) * d2 + k] = (float)(100 * i + 10 * j + k);
    return t;
}

static float at3(const po_tensor *t, int64_t i, int64_t j, int64_t k) {
    return po_tensor_get_f32(t, (const int64_t[]){i, j, k});
}

static void assert_strides(const po_tensor *t, int n, const int64_t *want) {
    assert_int_equal(t->shape.ndim, n);
    for (int i = 0; i < n; i++)
        if (t->stride[i] != want[i])
            fail_msg("stride[%d] = %lld, want %lld", i, (long long)t->stride[i], (long long)want[i]);
}

static void new_is_zeroed_and_contiguous(void **st) {
    (void)st;
    po_tensor *t;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(3, 4, 5), &t));
    assert_int_equal(po_tensor_numel(t), 60);
    assert_true(po_tensor_is_contiguous(t));
    assert_strides(t, 3, (const int64_t[]){20, 5, 1});
    assert_int_equal((uintptr_t)t->data % 64, 0);
    for (int i = 0; i < 60; i++)
        assert_true(((float *)t->data)[i] == 0.0f);
    po_tensor_free(t);

    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(7), &t));
    for (int i = 0; i < 7; i++)
        assert_true(((int64_t *)t->data)[i] == 0);
    po_tensor_free(t);

    PO_CHECK(po_tensor_new(PO_I32, po_shape_make(0, NULL), &t)); /* a scalar: one element */
    assert_int_equal(po_tensor_numel(t), 1);
    assert_int_equal(*(int32_t *)t->data, 0);
    po_tensor_free(t);

    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(2, 0, 3), &t)); /* empty is allowed */
    assert_int_equal(po_tensor_numel(t), 0);
    po_tensor_free(t);
    po_tensor_free(NULL); /* a no-op */
}

static void new_rejects_bad_arguments(void **st) {
    (void)st;
    po_tensor *t = (po_tensor *)&t; /* must be reset to NULL on failure */
    assert_int_equal(po_tensor_new(PO_DTYPE_COUNT, PO_SHAPE(2), &t), PO_ERR_DTYPE);
    assert_null(t);
    assert_int_equal(po_tensor_new(PO_F32, PO_SHAPE(2, -1), &t), PO_ERR_SHAPE);
    assert_null(t);
    po_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = PO_MAX_DIMS + 1;
    assert_int_equal(po_tensor_new(PO_F32, s, &t), PO_ERR_SHAPE);
    assert_non_null(strstr(po_last_error(), "rank"));
    s.ndim = -1;
    assert_int_equal(po_tensor_new(PO_F32, s, &t), PO_ERR_SHAPE);
    float buf[4];
    assert_int_equal(po_tensor_wrap((po_dtype)-1, PO_SHAPE(4), buf, &t), PO_ERR_DTYPE);
    assert_null(t);
}

static void dtypes_and_shapes(void **st) {
    (void)st;
    const char *names[] = {"F32", "I32", "I64"};
    const po_dtype types[] = {PO_F32, PO_I32, PO_I64};
    const size_t sizes[] = {4, 4, 8};
    for (int i = 0; i < 3; i++) {
        po_dtype d = PO_DTYPE_COUNT;
        PO_CHECK(po_dtype_parse(names[i], &d));
        assert_int_equal(d, types[i]);
        assert_string_equal(po_dtype_name(types[i]), names[i]);
        assert_int_equal(po_dtype_size(types[i]), sizes[i]);
    }
    const char *bad[] = {"F16", "BF16", "f32", "F32 ", "", "F64", "U8", "BOOL"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        po_dtype d = PO_I32;
        assert_int_equal(po_dtype_parse(bad[i], &d), PO_ERR_DTYPE);
        assert_int_equal(d, PO_I32); /* untouched */
        char quoted[16];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        assert_non_null(strstr(po_last_error(), quoted));
    }
    assert_int_equal(po_dtype_size(PO_DTYPE_COUNT), 0);
    assert_string_equal(po_dtype_name(PO_DTYPE_COUNT), "?");

    char buf[64];
    po_shape s = PO_SHAPE(2, 3, 4);
    assert_string_equal(po_shape_format(&s, buf, sizeof buf), "[2, 3, 4]");
    po_shape one = PO_SHAPE(7), scalar = po_shape_make(0, NULL);
    assert_string_equal(po_shape_format(&one, buf, sizeof buf), "[7]");
    assert_string_equal(po_shape_format(&scalar, buf, sizeof buf), "[]");
    po_shape big = PO_SHAPE(1234567890123LL, 1);
    assert_string_equal(po_shape_format(&big, buf, sizeof buf), "[1234567890123, 1]");
    /* Truncation, at every buffer size: a NUL-terminated prefix, nothing written past size. */
    const char *full = "[2, 3, 4]";
    for (size_t size = 1; size <= strlen(full) + 2; size++) {
        memset(buf, 'x', sizeof buf);
        assert_ptr_equal(po_shape_format(&s, buf, size), buf);
        size_t len = strlen(buf), want = strlen(full) < size - 1 ? strlen(full) : size - 1;
        if (len != want || memcmp(buf, full, len) != 0)
            fail_msg("po_shape_format into %zu bytes gave \"%s\"", size, buf);
        for (size_t i = size; i < sizeof buf; i++)
            if (buf[i] != 'x') fail_msg("po_shape_format into %zu bytes wrote byte %zu", size, i);
    }
    memset(buf, 'x', sizeof buf);
    assert_ptr_equal(po_shape_format(&s, buf, 0), buf);
    assert_true(buf[0] == 'x');

    assert_true(po_shape_equal(&s, &(po_shape){3, {2, 3, 4}}));
    assert_false(po_shape_equal(&s, &one));
    po_shape t = PO_SHAPE(2, 3, 5);
    assert_false(po_shape_equal(&s, &t));
    assert_int_equal(po_shape_numel(&scalar), 1);
    assert_int_equal(po_shape_make(-3, NULL).ndim, 0); /* clamped */
    int64_t many[PO_MAX_DIMS + 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(po_shape_make(PO_MAX_DIMS + 2, many).ndim, PO_MAX_DIMS);
}

/* Reshape views share storage in both directions; -1 is inferred; bad counts are refused. */
static void reshape_shares_storage(void **st) {
    (void)st;
    po_tensor *t = iota3(2, 3, 4), *v, *w;
    PO_CHECK(po_tensor_reshape(t, PO_SHAPE(4, -1), &v));
    assert_true(po_shape_equal(&v->shape, &(po_shape){2, {4, 6}}));
    assert_strides(v, 2, (const int64_t[]){6, 1});
    assert_ptr_equal(v->data, t->data);
    assert_true(po_tensor_get_f32(v, (const int64_t[]){3, 5}) == at3(t, 1, 2, 3));
    ((float *)v->data)[7] = -1.0f; /* write through the view, read through the base */
    assert_true(at3(t, 0, 1, 3) == -1.0f);
    ((float *)t->data)[23] = -2.0f; /* and the other way */
    assert_true(po_tensor_get_f32(v, (const int64_t[]){3, 5}) == -2.0f);
    PO_CHECK(po_tensor_reshape(v, PO_SHAPE(-1), &w)); /* a view of a view */
    assert_int_equal(w->shape.dim[0], 24);
    assert_ptr_equal(w->data, t->data);
    po_tensor_free(w);

    const po_shape bad[] = {po_shape_make(0, NULL), PO_SHAPE(5, 5),  PO_SHAPE(-1, -1),
                            PO_SHAPE(5, -1),        PO_SHAPE(0, -1), PO_SHAPE(-2, -12)};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(po_tensor_reshape(t, bad[k], &w), PO_ERR_SHAPE);
        assert_null(w);
    }
    po_shape huge;
    memset(&huge, 0, sizeof huge);
    huge.ndim = PO_MAX_DIMS + 1;
    assert_int_equal(po_tensor_reshape(t, huge, &w), PO_ERR_SHAPE);
    assert_null(w);

    /* A transposed view is not contiguous: reshape refuses it until made contiguous. */
    po_tensor *tr, *c;
    PO_CHECK(po_tensor_transpose(t, 0, 2, &tr));
    assert_int_equal(po_tensor_reshape(tr, PO_SHAPE(24), &w), PO_ERR_UNSUPPORTED);
    assert_null(w);
    assert_non_null(strstr(po_last_error(), "contiguous"));
    PO_CHECK(po_tensor_contiguous(tr, &c));
    PO_CHECK(po_tensor_reshape(c, PO_SHAPE(24), &w));
    assert_true(((float *)w->data)[1] == at3(t, 1, 0, 0)); /* [k, j, i] order */
    po_tensor_free(w);
    po_tensor_free(c);
    po_tensor_free(tr);
    po_tensor_free(v);
    po_tensor_free(t);
}

/* Transpose swaps extents and strides; values through the view are the base's swapped. */
static void transpose_views(void **st) {
    (void)st;
    po_tensor *t = iota3(2, 3, 4);
    const int pairs[][2] = {{0, 1}, {0, 2}, {1, 2}, {-1, 0}, {-2, -1}, {1, 1}};
    for (int p = 0; p < 6; p++) {
        po_tensor *v;
        PO_CHECK(po_tensor_transpose(t, pairs[p][0], pairs[p][1], &v));
        int a = pairs[p][0] < 0 ? pairs[p][0] + 3 : pairs[p][0];
        int b = pairs[p][1] < 0 ? pairs[p][1] + 3 : pairs[p][1];
        assert_ptr_equal(v->data, t->data);
        assert_int_equal(v->shape.dim[a], t->shape.dim[b]);
        assert_int_equal(v->stride[a], t->stride[b]);
        assert_int_equal(v->stride[b], t->stride[a]);
        assert_int_equal(po_tensor_is_contiguous(v), a == b);
        int64_t idx[3];
        for (idx[0] = 0; idx[0] < v->shape.dim[0]; idx[0]++)
            for (idx[1] = 0; idx[1] < v->shape.dim[1]; idx[1]++)
                for (idx[2] = 0; idx[2] < v->shape.dim[2]; idx[2]++) {
                    int64_t src[3] = {idx[0], idx[1], idx[2]};
                    src[a] = idx[b];
                    src[b] = idx[a];
                    assert_true(po_tensor_get_f32(v, idx) == po_tensor_get_f32(t, src));
                }
        po_tensor_free(v);
    }
    po_tensor *v = (po_tensor *)&v;
    assert_int_equal(po_tensor_transpose(t, 0, 3, &v), PO_ERR_INVALID_ARG);
    assert_null(v);
    assert_int_equal(po_tensor_transpose(t, -4, 0, &v), PO_ERR_INVALID_ARG);
    po_tensor_free(t);
}

/* Narrow moves the data pointer and keeps the strides; split gives views of every part. */
static void narrow_and_split_views(void **st) {
    (void)st;
    po_tensor *t = iota3(4, 3, 5), *v;
    PO_CHECK(po_tensor_narrow(t, 1, 1, 2, &v));
    assert_true(po_shape_equal(&v->shape, &(po_shape){3, {4, 2, 5}}));
    assert_strides(v, 3, (const int64_t[]){15, 5, 1});
    assert_ptr_equal(v->data, (float *)t->data + 5);
    assert_false(po_tensor_is_contiguous(v));
    assert_true(at3(v, 3, 1, 4) == at3(t, 3, 2, 4));
    po_tensor_free(v);
    PO_CHECK(po_tensor_narrow(t, -1, 4, 1, &v));
    assert_true(at3(v, 2, 1, 0) == 214.0f);
    po_tensor_free(v);
    PO_CHECK(po_tensor_narrow(t, 0, 1, 2, &v)); /* outermost: still contiguous */
    assert_true(po_tensor_is_contiguous(v));
    assert_true(at3(v, 0, 0, 0) == 100.0f);
    po_tensor_free(v);
    PO_CHECK(po_tensor_narrow(t, 2, 5, 0, &v)); /* empty at the end is allowed */
    assert_int_equal(po_tensor_numel(v), 0);
    po_tensor_free(v);
    assert_int_equal(po_tensor_narrow(t, 1, 2, 2, &v), PO_ERR_RANGE);
    assert_null(v);
    assert_int_equal(po_tensor_narrow(t, 1, -1, 1, &v), PO_ERR_RANGE);
    assert_int_equal(po_tensor_narrow(t, 1, 0, -1, &v), PO_ERR_RANGE);
    assert_int_equal(po_tensor_narrow(t, 3, 0, 1, &v), PO_ERR_INVALID_ARG);
    assert_null(v);

    po_tensor *parts[4];
    int n = -1;
    PO_CHECK(po_tensor_split(t, 2, 2, parts, 4, &n)); /* 2, 2, 1 */
    assert_int_equal(n, 3);
    const int64_t lens[] = {2, 2, 1};
    for (int p = 0; p < n; p++) {
        assert_int_equal(parts[p]->shape.dim[2], lens[p]);
        assert_ptr_equal(parts[p]->data, (float *)t->data + 2 * p);
        assert_true(at3(parts[p], 3, 2, lens[p] - 1) == at3(t, 3, 2, 2 * p + lens[p] - 1));
    }
    ((float *)parts[2]->data)[0] = 1234.0f; /* parts alias the base */
    assert_true(at3(t, 0, 0, 4) == 1234.0f);
    for (int p = 0; p < n; p++)
        po_tensor_free(parts[p]);
    PO_CHECK(po_tensor_split(t, 0, 4, parts, 1, &n)); /* one part, the whole */
    assert_int_equal(n, 1);
    po_tensor_free(parts[0]);
    assert_int_equal(po_tensor_split(t, 2, 1, parts, 4, &n), PO_ERR_RANGE); /* 5 parts, 4 slots */
    assert_int_equal(n, 0);
    assert_int_equal(po_tensor_split(t, 2, 0, parts, 4, &n), PO_ERR_INVALID_ARG);
    assert_int_equal(po_tensor_split(t, 3, 1, parts, 4, &n), PO_ERR_INVALID_ARG);
    po_tensor_free(t);
}

/* Contiguous copies of strided views, copies across strides, and their errors. */
static void contiguous_and_copy(void **st) {
    (void)st;
    po_tensor *t = iota3(2, 3, 4), *tr, *c;
    PO_CHECK(po_tensor_transpose(t, 0, 2, &tr)); /* [4, 3, 2] */
    PO_CHECK(po_tensor_contiguous(tr, &c));
    assert_true(po_tensor_is_contiguous(c));
    assert_true(po_shape_equal(&c->shape, &tr->shape));
    assert_strides(c, 3, (const int64_t[]){6, 2, 1});
    assert_ptr_not_equal(c->data, t->data);
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 2; k++)
                assert_true(((float *)c->data)[(i * 3 + j) * 2 + k] == at3(t, k, j, i));
    ((float *)c->data)[0] = -7.0f; /* an independent copy */
    assert_true(at3(t, 0, 0, 0) == 0.0f);
    po_tensor_free(c);

    PO_CHECK(po_tensor_contiguous(t, &c)); /* already contiguous: a new reference, no copy */
    assert_ptr_equal(c->data, t->data);
    po_tensor_free(c);

    /* Copy a contiguous source into a transposed (strided) destination and back. */
    po_tensor *dst_base, *dst, *back;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(4, 3, 2), &dst_base));
    PO_CHECK(po_tensor_transpose(dst_base, 0, 2, &dst)); /* [2, 3, 4], strided */
    PO_CHECK(po_tensor_copy(dst, t));
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 4; k++)
                assert_true(at3(dst, i, j, k) == at3(t, i, j, k));
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(2, 3, 4), &back));
    PO_CHECK(po_tensor_copy(back, dst)); /* strided source */
    assert_memory_equal(back->data, t->data, 24 * sizeof(float));

    /* Integer strided copy (8-byte elements). */
    po_tensor *ia, *ib, *ibt;
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(2, 3), &ia));
    PO_CHECK(po_tensor_new(PO_I64, PO_SHAPE(3, 2), &ib));
    for (int i = 0; i < 6; i++)
        ((int64_t *)ia->data)[i] = ((int64_t)1 << 40) + i;
    PO_CHECK(po_tensor_transpose(ib, 0, 1, &ibt));
    PO_CHECK(po_tensor_copy(ibt, ia));
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            assert_true(po_tensor_get_int(ib, (const int64_t[]){j, i}) == ((int64_t)1 << 40) + i * 3 + j);

    assert_int_equal(po_tensor_copy(ia, t), PO_ERR_DTYPE);
    assert_int_equal(po_tensor_copy(back, tr), PO_ERR_SHAPE);
    po_tensor_free(ibt), po_tensor_free(ib), po_tensor_free(ia);
    po_tensor_free(back), po_tensor_free(dst), po_tensor_free(dst_base);
    po_tensor_free(tr);
    po_tensor_free(t);
}

/* Element access converts between dtypes. */
static void element_access(void **st) {
    (void)st;
    po_tensor *f, *i32;
    PO_CHECK(po_tensor_new(PO_F32, PO_SHAPE(2), &f));
    PO_CHECK(po_tensor_new(PO_I32, PO_SHAPE(2), &i32));
    ((float *)f->data)[1] = -3.75f;
    ((int32_t *)i32->data)[1] = -9;
    assert_true(po_tensor_get_f32(f, (const int64_t[]){1}) == -3.75f);
    assert_int_equal(po_tensor_get_int(f, (const int64_t[]){1}), -3);
    assert_true(po_tensor_get_f32(i32, (const int64_t[]){1}) == -9.0f);
    assert_int_equal(po_tensor_get_int(i32, (const int64_t[]){1}), -9);
    po_tensor_free(f);
    po_tensor_free(i32);
}

/* Views keep the storage alive: free the base first, then use and free every view (under
 * valgrind/ASan: no invalid access, no leak). */
static void base_freed_before_views(void **st) {
    (void)st;
    po_tensor *t = iota3(4, 3, 5), *r, *tr, *nw, *parts[3], *c;
    int n;
    PO_CHECK(po_tensor_reshape(t, PO_SHAPE(12, 5), &r));
    PO_CHECK(po_tensor_transpose(t, 0, 1, &tr));
    PO_CHECK(po_tensor_narrow(t, 2, 1, 3, &nw));
    PO_CHECK(po_tensor_split(t, 0, 2, parts, 3, &n));
    assert_int_equal(n, 2);
    po_tensor_free(t);
    assert_true(po_tensor_get_f32(r, (const int64_t[]){11, 4}) == 324.0f);
    assert_true(at3(tr, 2, 3, 4) == 324.0f);
    assert_true(at3(nw, 3, 2, 2) == 323.0f);
    assert_true(at3(parts[1], 1, 2, 4) == 324.0f);
    po_tensor_free(r);
    PO_CHECK(po_tensor_contiguous(tr, &c)); /* a copy made from a view of a freed base */
    po_tensor_free(tr);
    assert_true(at3(c, 2, 3, 4) == 324.0f);
    po_tensor_free(parts[0]);
    ((float *)nw->data)[2 * 15] = 5.0f; /* nw[2, 0, 0] is t[2, 0, 1]: still writable */
    assert_true(at3(parts[1], 0, 0, 1) == 5.0f);
    po_tensor_free(nw);
    po_tensor_free(parts[1]); /* the last reference: the storage goes here */
    po_tensor_free(c);
}

/* Wrapped memory is borrowed: views work and freeing never touches it. */
static void wrap_borrows(void **st) {
    (void)st;
    float buf[6] = {0, 1, 2, 3, 4, 5};
    po_tensor *t, *v;
    PO_CHECK(po_tensor_wrap(PO_F32, PO_SHAPE(2, 3), buf, &t));
    assert_null(t->storage);
    assert_ptr_equal(t->data, buf);
    PO_CHECK(po_tensor_transpose(t, 0, 1, &v));
    po_tensor_free(t);
    assert_true(po_tensor_get_f32(v, (const int64_t[]){2, 1}) == 5.0f);
    po_tensor_free(v);
    assert_true(buf[5] == 5.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_is_zeroed_and_contiguous),
        cmocka_unit_test(new_rejects_bad_arguments),
        cmocka_unit_test(dtypes_and_shapes),
        cmocka_unit_test(reshape_shares_storage),
        cmocka_unit_test(transpose_views),
        cmocka_unit_test(narrow_and_split_views),
        cmocka_unit_test(contiguous_and_copy),
        cmocka_unit_test(element_access),
        cmocka_unit_test(base_freed_before_views),
        cmocka_unit_test(wrap_borrows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

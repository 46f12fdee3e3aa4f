/* Datasets stored as safetensors tensors: input.x/input.y, and optionally test.x/test.y. */
#include <stdint.h>
#include <stdlib.h>

#include "data/readers.h"
#include "paropt/io.h"

/* Ids and targets are I64 inside, whatever the file holds. */
static po_status widen(po_tensor **t) {
    if ((*t)->dtype != PO_I32) return PO_OK;
    po_tensor *w;
    po_status st = po_tensor_new(PO_I64, (*t)->shape, &w);
    if (st) return st;
    int64_t n = po_tensor_numel(*t);
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)w->data)[i] = ((const int32_t *)(*t)->data)[i];
    po_tensor_free(*t);
    *t = w;
    return PO_OK;
}

/* Largest value of an I64 tensor; fails on a negative one (no class or token id is). */
static po_status max_id(const po_tensor *t, const char *path, const char *name, int64_t *max) {
    const int64_t *v = t->data;
    int64_t n = po_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] == INT64_MAX) /* INT64_MAX: max + 1 classes would overflow */
            return po_fail(PO_ERR_RANGE, "%s: %s holds %lld at position %lld; ids and targets are >= 0", path, name,
                           (long long)v[i], (long long)i);
        if (v[i] > *max) *max = v[i];
    }
    return PO_OK;
}

po_status po__safetensors_open(const char *path, po_data_split split, const char *name, po_dataset **out) {
    *out = NULL;
    po_st_file *f;
    po_status st = po_st_read(path, &f);
    if (st) return st;
    bool test = split == PO_SPLIT_TEST && po_st_find(f, "test.x") >= 0 && po_st_find(f, "test.y") >= 0;
    const char *xn = test ? "test.x" : "input.x", *yn = test ? "test.y" : "input.y";
    po_tensor *x = NULL, *y = NULL;
    st = po_st_get(f, xn, &x);
    if (!st) st = po_st_get(f, yn, &y);
    po_st_free(f);
    if (!st) st = widen(&x);
    if (!st) st = widen(&y);
    if (!st && y->dtype != PO_I64)
        st = po_fail(PO_ERR_DTYPE, "%s: %s must hold integer targets, not %s", path, yn, po_dtype_name(y->dtype));
    if (!st && (x->shape.ndim < 1 || y->shape.ndim < 1 || x->shape.dim[0] != y->shape.dim[0] || x->shape.dim[0] == 0))
        st = po_fail(PO_ERR_SHAPE, "%s: %s and %s must hold the same number (> 0) of samples", path, xn, yn);
    int64_t max = 0;
    if (!st) st = max_id(y, path, yn, &max);
    if (!st && x->dtype == PO_I64) st = max_id(x, path, xn, &max);
    po_dataset *d = st ? NULL : po__dataset_alloc(PO__DS_TENSOR, name, path);
    if (!st && !d) st = PO_ERR_NO_MEMORY;
    if (st) {
        po_tensor_free(x);
        po_tensor_free(y);
        return st;
    }
    d->x = x;
    d->y = y;
    d->n = x->shape.dim[0];
    d->dtype = x->dtype;
    d->classes = max + 1;
    d->sample.ndim = x->shape.ndim - 1;
    for (int i = 1; i < x->shape.ndim; i++)
        d->sample.dim[i - 1] = x->shape.dim[i];
    d->target.ndim = y->shape.ndim - 1;
    for (int i = 1; i < y->shape.ndim; i++)
        d->target.dim[i - 1] = y->shape.dim[i];
    *out = d;
    return PO_OK;
}

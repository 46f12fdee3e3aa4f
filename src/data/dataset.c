#include "paropt/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "paropt/io.h"

struct po_dataset {
    po_tensor *x, *y; /* contiguous; y is I64 */
    char origin[256]; /* the file, or "synthetic data", for messages */
};

static po_status make(po_tensor *x, po_tensor *y, const char *origin, po_dataset **out) {
    po_dataset *d = malloc(sizeof *d);
    if (!d) {
        po_tensor_free(x);
        po_tensor_free(y);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory loading a dataset");
    }
    d->x = x;
    d->y = y;
    snprintf(d->origin, sizeof d->origin, "%s", origin);
    *out = d;
    return PO_OK;
}

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

po_status po_dataset_open_safetensors(const char *path, po_dataset **out) {
    *out = NULL;
    po_st_file *f;
    po_status st = po_st_read(path, &f);
    if (st) return st;
    po_tensor *x = NULL, *y = NULL;
    st = po_st_get(f, "input.x", &x);
    if (!st) st = po_st_get(f, "input.y", &y);
    po_st_free(f);
    if (!st) st = widen(&x);
    if (!st) st = widen(&y);
    if (!st && y->dtype != PO_I64)
        st = po_fail(PO_ERR_DTYPE, "%s: input.y must hold integer targets, not %s", path, po_dtype_name(y->dtype));
    if (!st && (x->shape.ndim < 1 || y->shape.ndim < 1 || x->shape.dim[0] != y->shape.dim[0] || x->shape.dim[0] == 0))
        st = po_fail(PO_ERR_SHAPE, "%s: input.x and input.y must hold the same number (> 0) of samples", path);
    if (st) {
        po_tensor_free(x);
        po_tensor_free(y);
        return st;
    }
    return make(x, y, path, out);
}

po_status po_dataset_synthetic(const po_model *m, int64_t samples, uint64_t seed, po_dataset **out) {
    *out = NULL;
    if (samples < 1) return po_fail(PO_ERR_INVALID_ARG, "synthetic data needs at least one sample");
    po_shape xs = po_node_shape(m->x), ys = po_node_shape(m->y), ls = po_node_shape(m->logits);
    xs.dim[0] = ys.dim[0] = samples;
    po_tensor *x, *y;
    po_status st = po_tensor_new(po_node_dtype(m->x), xs, &x);
    if (st) return st;
    if ((st = po_tensor_new(PO_I64, ys, &y))) {
        po_tensor_free(x);
        return st;
    }
    po_rng r;
    po_rng_seed(&r, seed);
    int64_t classes = ls.dim[ls.ndim - 1], nx = po_tensor_numel(x), ny = po_tensor_numel(y);
    /* Token models take ids below the vocabulary, which is the class count of their logits. */
    for (int64_t i = 0; i < nx; i++) {
        if (x->dtype == PO_F32)
            ((float *)x->data)[i] = po_rng_normal(&r);
        else
            ((int64_t *)x->data)[i] = (int64_t)po_rng_below(&r, (uint64_t)classes);
    }
    for (int64_t i = 0; i < ny; i++)
        ((int64_t *)y->data)[i] = (int64_t)po_rng_below(&r, (uint64_t)classes);
    return make(x, y, "synthetic data", out);
}

void po_dataset_free(po_dataset *d) {
    if (!d) return;
    po_tensor_free(d->x);
    po_tensor_free(d->y);
    free(d);
}

int64_t po_dataset_size(const po_dataset *d) { return d->x->shape.dim[0]; }

/* True when a and b agree after their first (sample) dim. */
static bool same_sample_shape(const po_shape *a, const po_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 1; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

static char *sample_shape(const po_shape *s, char *buf, size_t size) {
    po_shape t = *s;
    t.ndim = s->ndim - 1;
    for (int i = 0; i < t.ndim; i++)
        t.dim[i] = s->dim[i + 1];
    return po_shape_format(&t, buf, size);
}

static po_status check_range(const po_tensor *t, int64_t limit, const char *what, const char *origin) {
    int64_t n = po_tensor_numel(t);
    const int64_t *v = t->data;
    for (int64_t i = 0; i < n; i++)
        if (v[i] < 0 || v[i] >= limit)
            return po_fail(PO_ERR_RANGE, "%s: %s %lld at position %lld is outside [0, %lld)", origin, what,
                           (long long)v[i], (long long)i, (long long)limit);
    return PO_OK;
}

po_status po_dataset_check(const po_dataset *d, const po_model *m) {
    po_shape mx = po_node_shape(m->x), my = po_node_shape(m->y), ml = po_node_shape(m->logits);
    char a[96], b[96];
    if (d->x->dtype != po_node_dtype(m->x))
        return po_fail(PO_ERR_DTYPE, "%s: samples are %s, model %s takes %s", d->origin, po_dtype_name(d->x->dtype),
                       m->name, po_dtype_name(po_node_dtype(m->x)));
    if (!same_sample_shape(&d->x->shape, &mx))
        return po_fail(PO_ERR_SHAPE, "%s: samples are %s, model %s takes %s", d->origin,
                       sample_shape(&d->x->shape, a, sizeof a), m->name, sample_shape(&mx, b, sizeof b));
    if (!same_sample_shape(&d->y->shape, &my))
        return po_fail(PO_ERR_SHAPE, "%s: targets are %s per sample, model %s expects %s", d->origin,
                       sample_shape(&d->y->shape, a, sizeof a), m->name, sample_shape(&my, b, sizeof b));
    int64_t classes = ml.dim[ml.ndim - 1];
    po_status st = check_range(d->y, classes, "target", d->origin);
    if (!st && d->x->dtype == PO_I64) st = check_range(d->x, classes, "token id", d->origin);
    return st;
}

static po_status copy_rows(const po_tensor *src, int64_t first, po_tensor *dst) {
    int64_t n = src->shape.dim[0], rows = dst->shape.dim[0];
    size_t row = (size_t)(po_tensor_numel(src) / n) * po_dtype_size(src->dtype);
    if (!po_tensor_is_contiguous(dst) || dst->dtype != src->dtype || !same_sample_shape(&dst->shape, &src->shape))
        return po_fail(PO_ERR_SHAPE, "batch buffer does not match the dataset");
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)dst->data + (size_t)r * row, (const char *)src->data + (size_t)((first + r) % n) * row, row);
    return PO_OK;
}

po_status po_dataset_batch(const po_dataset *d, int64_t index, po_tensor *x_out, po_tensor *y_out) {
    int64_t B = x_out->shape.dim[0], first = (index * B) % po_dataset_size(d);
    po_status st = copy_rows(d->x, first, x_out);
    return st ? st : copy_rows(d->y, first, y_out);
}

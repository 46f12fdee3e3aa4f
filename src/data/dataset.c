/* The dataset object: storage kinds, accessors, batch filling, the model check, synthetic data
 * and the spec dispatcher. The file formats live in idx.c, cifar.c, text.c, safetensors_data.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/readers.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

po_dataset *po__dataset_alloc(po__ds_kind kind, const char *name, const char *origin) {
    po_dataset *d = calloc(1, sizeof *d);
    if (d) {
        d->kind = kind;
        d->name = dup_str(name);
        d->origin = dup_str(origin);
    }
    if (!d || !d->name || !d->origin) {
        po_dataset_free(d);
        po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", origin);
        return NULL;
    }
    return d;
}

void po_dataset_free(po_dataset *d) {
    if (!d) return;
    po_tensor_free(d->x);
    po_tensor_free(d->y);
    free(d->pixels);
    free(d->labels);
    free(d->text);
    free(d->name);
    free(d->origin);
    free(d);
}

po_status po_dataset_open(const char *spec, po_data_split split, int64_t seq, po_dataset **out) {
    *out = NULL;
    if (!spec || !*spec) return po_fail(PO_ERR_INVALID_ARG, "empty dataset spec");
    if (split != PO_SPLIT_TRAIN && split != PO_SPLIT_TEST)
        return po_fail(PO_ERR_INVALID_ARG, "%s: split must be PO_SPLIT_TRAIN or PO_SPLIT_TEST", spec);
    if (!strcmp(spec, "fashion-mnist")) return po__idx_open(FASHION_MNIST_DIR, split, spec, out);
    if (!strncmp(spec, "idx:", 4)) return po__idx_open(spec + 4, split, spec, out);
    if (!strncmp(spec, "cifar10:", 8)) return po__cifar_open(spec + 8, split, spec, out);
    if (!strncmp(spec, "text:", 5)) return po__text_open(spec + 5, split, seq, spec, out);
    if (!strcmp(spec, "synthetic"))
        return po_fail(PO_ERR_INVALID_ARG, "synthetic data is made for a model: use po_dataset_synthetic");
    return po__safetensors_open(spec, split, spec, out);
}

po_status po_dataset_open_safetensors(const char *path, po_dataset **out) {
    *out = NULL;
    return po__safetensors_open(path, PO_SPLIT_TRAIN, path, out);
}

po_status po_dataset_synthetic(const po_model *m, int64_t samples, uint64_t seed, po_dataset **out) {
    *out = NULL;
    if (samples < 1) return po_fail(PO_ERR_INVALID_ARG, "synthetic data needs at least one sample");
    po_shape xs = po_node_shape(m->x), ys = po_node_shape(m->y), ls = po_node_shape(m->logits);
    int64_t classes = ls.dim[ls.ndim - 1];
    po_dataset *d = po__dataset_alloc(PO__DS_TENSOR, "synthetic", "synthetic data");
    if (!d) return PO_ERR_NO_MEMORY;
    d->n = samples;
    d->dtype = po_node_dtype(m->x);
    d->classes = classes;
    d->classes_known = true;
    d->sample.ndim = xs.ndim - 1;
    for (int i = 1; i < xs.ndim; i++)
        d->sample.dim[i - 1] = xs.dim[i];
    d->target.ndim = ys.ndim - 1;
    for (int i = 1; i < ys.ndim; i++)
        d->target.dim[i - 1] = ys.dim[i];
    xs.dim[0] = ys.dim[0] = samples;
    po_status st = po_tensor_new(d->dtype, xs, &d->x);
    if (!st) st = po_tensor_new(PO_I64, ys, &d->y);
    if (st) {
        po_dataset_free(d);
        return st;
    }
    po_rng r;
    po_rng_seed(&r, seed);
    int64_t nx = po_tensor_numel(d->x), ny = po_tensor_numel(d->y);
    /* Token models take ids below the vocabulary, which is the class count of their logits. */
    for (int64_t i = 0; i < nx; i++) {
        if (d->dtype == PO_F32)
            ((float *)d->x->data)[i] = po_rng_normal(&r);
        else
            ((int64_t *)d->x->data)[i] = (int64_t)po_rng_below(&r, (uint64_t)classes);
    }
    for (int64_t i = 0; i < ny; i++)
        ((int64_t *)d->y->data)[i] = (int64_t)po_rng_below(&r, (uint64_t)classes);
    *out = d;
    return PO_OK;
}

int64_t po_dataset_size(const po_dataset *d) { return d->n; }
po_shape po_dataset_sample_shape(const po_dataset *d) { return d->sample; }
po_shape po_dataset_target_shape(const po_dataset *d) { return d->target; }
po_dtype po_dataset_sample_dtype(const po_dataset *d) { return d->dtype; }
int64_t po_dataset_classes(const po_dataset *d) { return d->classes; }
bool po_dataset_classes_known(const po_dataset *d) { return d->classes_known; }
const char *po_dataset_name(const po_dataset *d) { return d->name; }

void po__dataset_fill(const po_dataset *d, const int64_t *idx, int64_t rows, void *x, int64_t *y) {
    int64_t sx = po_shape_numel(&d->sample), sy = po_shape_numel(&d->target);
    switch (d->kind) {
    case PO__DS_TENSOR: {
        size_t xrow = (size_t)sx * po_dtype_size(d->dtype), yrow = (size_t)sy * sizeof(int64_t);
        for (int64_t r = 0; r < rows; r++) {
            memcpy((char *)x + (size_t)r * xrow, (const char *)d->x->data + (size_t)idx[r] * xrow, xrow);
            memcpy((char *)y + (size_t)r * yrow, (const char *)d->y->data + (size_t)idx[r] * yrow, yrow);
        }
        break;
    }
    case PO__DS_IMAGE: {
        /* A true division per value, as PyTorch's float32 `/ 255.0` does; multiplying by
         * 1/255 would differ in the last bit for some values. */
        float scale[256];
        for (int i = 0; i < 256; i++)
            scale[i] = (float)i / 255.0f;
        float *xf = x;
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *p = d->pixels + (size_t)idx[r] * (size_t)sx;
            float *o = xf + (size_t)r * (size_t)sx;
            for (int64_t i = 0; i < sx; i++)
                o[i] = scale[p[i]];
            y[r] = d->labels[idx[r]];
        }
        break;
    }
    case PO__DS_TEXT: {
        int64_t seq = sx, *xi = x;
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *w = d->text + (size_t)idx[r] * (size_t)seq;
            int64_t *xo = xi + (size_t)r * (size_t)seq, *yo = y + (size_t)r * (size_t)seq;
            for (int64_t i = 0; i < seq; i++) {
                xo[i] = w[i];
                yo[i] = w[i + 1];
            }
        }
        break;
    }
    }
}

po_status po__check_batch_tensor(const po_tensor *t, po_dtype dtype, int64_t B, int64_t row, const char *what) {
    if (t->dtype != dtype)
        return po_fail(PO_ERR_DTYPE, "%s: tensor is %s, the data gives %s", what, po_dtype_name(t->dtype),
                       po_dtype_name(dtype));
    if (!po_tensor_is_contiguous(t) || t->shape.ndim < 1 || t->shape.dim[0] != B || po_tensor_numel(t) != B * row) {
        char s[96];
        return po_fail(PO_ERR_SHAPE, "%s: tensor %s%s is not [%lld, ...] with %lld elements per row", what,
                       po_shape_format(&t->shape, s, sizeof s), po_tensor_is_contiguous(t) ? "" : " (not contiguous)",
                       (long long)B, (long long)row);
    }
    return PO_OK;
}

po_status po_dataset_batch(const po_dataset *d, int64_t index, po_tensor *x_out, po_tensor *y_out) {
    if (x_out->shape.ndim < 1 || x_out->shape.dim[0] < 1)
        return po_fail(PO_ERR_SHAPE, "batch buffer does not match the dataset: it needs a batch dim");
    int64_t B = x_out->shape.dim[0];
    po_status st = po__check_batch_tensor(x_out, d->dtype, B, po_shape_numel(&d->sample), "batch samples");
    if (!st) st = po__check_batch_tensor(y_out, PO_I64, B, po_shape_numel(&d->target), "batch targets");
    if (st) return st;
    /* (index * B) mod n without overflow for any step count (negative indices count back). */
    uint64_t n = (uint64_t)d->n, i = (uint64_t)(index % d->n + d->n) % n, b = (uint64_t)B % n, first64 = 0;
    for (; b; b >>= 1, i = (i >= n - i) ? i - (n - i) : i + i) /* double-and-add: no overflow */
        if (b & 1) first64 = (first64 >= n - i) ? first64 - (n - i) : first64 + i;
    int64_t first = (int64_t)first64;
    int64_t idx[256];
    for (int64_t done = 0; done < B;) {
        int64_t rows = B - done < 256 ? B - done : 256;
        for (int64_t r = 0; r < rows; r++)
            idx[r] = (first + done + r) % d->n;
        size_t xrow = (size_t)po_shape_numel(&d->sample) * po_dtype_size(d->dtype);
        size_t yrow = (size_t)po_shape_numel(&d->target);
        po__dataset_fill(d, idx, rows, (char *)x_out->data + (size_t)done * xrow,
                         (int64_t *)y_out->data + (size_t)done * yrow);
        done += rows;
    }
    return PO_OK;
}

/* True when the model's per-sample input shape (ms, batch dim included) takes samples shaped s:
 * the same extents, or [B, F] with F the sample's element count (a flattening model). */
static bool sample_fits(const po_shape *ms, const po_shape *s) {
    if (ms->ndim == s->ndim + 1) {
        bool same = true;
        for (int i = 0; i < s->ndim; i++)
            same = same && ms->dim[i + 1] == s->dim[i];
        if (same) return true;
    }
    return ms->ndim == 2 && ms->dim[1] == po_shape_numel(s);
}

static bool target_fits(const po_shape *ms, const po_shape *s) {
    if (ms->ndim != s->ndim + 1) return false;
    for (int i = 0; i < s->ndim; i++)
        if (ms->dim[i + 1] != s->dim[i]) return false;
    return true;
}

static char *without_batch(const po_shape *s, char *buf, size_t size) {
    po_shape t = {.ndim = s->ndim - 1};
    for (int i = 0; i < t.ndim; i++)
        t.dim[i] = s->dim[i + 1];
    return po_shape_format(&t, buf, size);
}

static po_status range_i64(const int64_t *v, int64_t n, int64_t limit, const char *what, const char *origin) {
    for (int64_t i = 0; i < n; i++)
        if (v[i] < 0 || v[i] >= limit)
            return po_fail(PO_ERR_RANGE, "%s: %s %lld at position %lld is outside [0, %lld)", origin, what,
                           (long long)v[i], (long long)i, (long long)limit);
    return PO_OK;
}

static po_status range_u8(const uint8_t *v, int64_t n, int64_t limit, const char *what, const char *origin) {
    for (int64_t i = 0; i < n; i++)
        if (v[i] >= limit)
            return po_fail(PO_ERR_RANGE, "%s: %s %u at position %lld is outside [0, %lld)", origin, what, v[i],
                           (long long)i, (long long)limit);
    return PO_OK;
}

po_status po_dataset_check(const po_dataset *d, const po_model *m) {
    po_shape mx = po_node_shape(m->x), my = po_node_shape(m->y), ml = po_node_shape(m->logits);
    char a[96], b[96];
    if (d->dtype != po_node_dtype(m->x))
        return po_fail(PO_ERR_DTYPE, "%s: samples are %s, model %s takes %s", d->origin, po_dtype_name(d->dtype),
                       m->name, po_dtype_name(po_node_dtype(m->x)));
    if (!sample_fits(&mx, &d->sample))
        return po_fail(PO_ERR_SHAPE, "%s: samples are %s, model %s takes %s", d->origin,
                       po_shape_format(&d->sample, a, sizeof a), m->name, without_batch(&mx, b, sizeof b));
    if (!target_fits(&my, &d->target))
        return po_fail(PO_ERR_SHAPE, "%s: targets are %s per sample, model %s expects %s", d->origin,
                       po_shape_format(&d->target, a, sizeof a), m->name, without_batch(&my, b, sizeof b));
    int64_t classes = ml.dim[ml.ndim - 1];
    switch (d->kind) {
    case PO__DS_TENSOR: {
        po_status st = range_i64(d->y->data, po_tensor_numel(d->y), classes, "target", d->origin);
        if (!st && d->dtype == PO_I64)
            st = range_i64(d->x->data, po_tensor_numel(d->x), classes, "token id", d->origin);
        return st;
    }
    case PO__DS_IMAGE: return range_u8(d->labels, d->n, classes, "target", d->origin);
    case PO__DS_TEXT: return range_u8(d->text, d->n * po_shape_numel(&d->sample) + 1, classes, "token id", d->origin);
    }
    return PO_OK;
}

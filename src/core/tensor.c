#include "paropt/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct po_storage {
    int refcount;
    void *data;
};

size_t po_dtype_size(po_dtype t) {
    switch (t) {
#define PO_DTYPE_SIZE(e, name, size)                                                                                   \
    case e: return size;
        PO_DTYPE_LIST(PO_DTYPE_SIZE)
#undef PO_DTYPE_SIZE
    default: return 0;
    }
}

const char *po_dtype_name(po_dtype t) {
    switch (t) {
#define PO_DTYPE_NAME(e, name, size)                                                                                   \
    case e: return name;
        PO_DTYPE_LIST(PO_DTYPE_NAME)
#undef PO_DTYPE_NAME
    default: return "?";
    }
}

po_status po_dtype_parse(const char *name, po_dtype *out) {
#define PO_DTYPE_MATCH(e, n, size)                                                                                     \
    if (strcmp(name, n) == 0) {                                                                                        \
        *out = e;                                                                                                      \
        return PO_OK;                                                                                                  \
    }
    PO_DTYPE_LIST(PO_DTYPE_MATCH)
#undef PO_DTYPE_MATCH
    return po_fail(PO_ERR_DTYPE, "unsupported dtype \"%s\" (paropt reads F32, I32 and I64)", name);
}

po_shape po_shape_make(int ndim, const int64_t *dims) {
    po_shape s;
    memset(&s, 0, sizeof s);
    if (ndim < 0) ndim = 0;
    if (ndim > PO_MAX_DIMS) ndim = PO_MAX_DIMS;
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        s.dim[i] = dims[i];
    return s;
}

int64_t po_shape_numel(const po_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dim[i];
    return n;
}

bool po_shape_equal(const po_shape *a, const po_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

char *po_shape_format(const po_shape *s, char *buf, size_t size) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)s->dim[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

static void set_contiguous_strides(po_tensor *t) {
    int64_t st = 1;
    for (int i = t->shape.ndim - 1; i >= 0; i--) {
        t->stride[i] = st;
        st *= t->shape.dim[i];
    }
}

static po_status check_shape(po_shape shape) {
    if (shape.ndim < 0 || shape.ndim > PO_MAX_DIMS)
        return po_fail(PO_ERR_SHAPE, "rank %d is outside 0..%d", shape.ndim, PO_MAX_DIMS);
    for (int i = 0; i < shape.ndim; i++)
        if (shape.dim[i] < 0) return po_fail(PO_ERR_SHAPE, "negative extent in a shape");
    return PO_OK;
}

po_status po_tensor_new(po_dtype dtype, po_shape shape, po_tensor **out) {
    *out = NULL;
    if (po_dtype_size(dtype) == 0) return po_fail(PO_ERR_DTYPE, "invalid dtype");
    po_status st = check_shape(shape);
    if (st) return st;
    size_t bytes = (size_t)po_shape_numel(&shape) * po_dtype_size(dtype);
    po_tensor *t = calloc(1, sizeof *t);
    struct po_storage *s = calloc(1, sizeof *s);
    void *data = po_aligned_calloc(bytes);
    if (!t || !s || !data) {
        free(t);
        free(s);
        po_aligned_free(data);
        return po_fail(PO_ERR_NO_MEMORY, "cannot allocate a tensor of %zu bytes", bytes);
    }
    s->refcount = 1;
    s->data = data;
    t->dtype = dtype;
    t->shape = shape;
    t->data = data;
    t->storage = s;
    set_contiguous_strides(t);
    *out = t;
    return PO_OK;
}

po_status po_tensor_wrap(po_dtype dtype, po_shape shape, void *data, po_tensor **out) {
    *out = NULL;
    if (po_dtype_size(dtype) == 0) return po_fail(PO_ERR_DTYPE, "invalid dtype");
    po_status st = check_shape(shape);
    if (st) return st;
    po_tensor *t = calloc(1, sizeof *t);
    if (!t) return po_fail(PO_ERR_NO_MEMORY, "cannot allocate a tensor header");
    t->dtype = dtype;
    t->shape = shape;
    t->data = data;
    set_contiguous_strides(t);
    *out = t;
    return PO_OK;
}

void po_tensor_free(po_tensor *t) {
    if (!t) return;
    if (t->storage && --t->storage->refcount == 0) {
        po_aligned_free(t->storage->data);
        free(t->storage);
    }
    free(t);
}

int64_t po_tensor_numel(const po_tensor *t) { return po_shape_numel(&t->shape); }

bool po_tensor_is_contiguous(const po_tensor *t) {
    int64_t st = 1;
    for (int i = t->shape.ndim - 1; i >= 0; i--) {
        if (t->shape.dim[i] != 1 && t->stride[i] != st) return false;
        st *= t->shape.dim[i];
    }
    return true;
}

/* A new header sharing t's storage. */
static po_status new_view(const po_tensor *t, po_tensor **out) {
    po_tensor *v = malloc(sizeof *v);
    if (!v) return po_fail(PO_ERR_NO_MEMORY, "cannot allocate a tensor view");
    *v = *t;
    if (v->storage) v->storage->refcount++;
    *out = v;
    return PO_OK;
}

static int normalize_dim(int dim, int ndim) { return dim < 0 ? dim + ndim : dim; }

po_status po_tensor_reshape(const po_tensor *t, po_shape shape, po_tensor **out) {
    *out = NULL;
    if (shape.ndim < 0 || shape.ndim > PO_MAX_DIMS)
        return po_fail(PO_ERR_SHAPE, "reshape: rank %d is outside 0..%d", shape.ndim, PO_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < shape.ndim; i++) {
        if (shape.dim[i] == -1) {
            if (infer >= 0) return po_fail(PO_ERR_SHAPE, "reshape: more than one -1 extent");
            infer = i;
        } else if (shape.dim[i] < 0) {
            return po_fail(PO_ERR_SHAPE, "reshape: negative extent");
        } else {
            known *= shape.dim[i];
        }
    }
    int64_t n = po_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known) return po_fail(PO_ERR_SHAPE, "reshape: cannot infer the -1 extent");
        shape.dim[infer] = n / known;
        known = n;
    }
    if (known != n) {
        char a[96], b[96];
        return po_fail(PO_ERR_SHAPE, "reshape: %s has %lld elements, %s has %lld",
                       po_shape_format(&t->shape, a, sizeof a), (long long)n, po_shape_format(&shape, b, sizeof b),
                       (long long)known);
    }
    if (!po_tensor_is_contiguous(t))
        return po_fail(PO_ERR_UNSUPPORTED, "reshape of a non-contiguous view; call po_tensor_contiguous first");
    po_status st = new_view(t, out);
    if (st) return st;
    (*out)->shape = shape;
    set_contiguous_strides(*out);
    return PO_OK;
}

po_status po_tensor_transpose(const po_tensor *t, int d0, int d1, po_tensor **out) {
    *out = NULL;
    d0 = normalize_dim(d0, t->shape.ndim);
    d1 = normalize_dim(d1, t->shape.ndim);
    if (d0 < 0 || d1 < 0 || d0 >= t->shape.ndim || d1 >= t->shape.ndim)
        return po_fail(PO_ERR_INVALID_ARG, "transpose: dimension out of range for rank %d", t->shape.ndim);
    po_status st = new_view(t, out);
    if (st) return st;
    po_tensor *v = *out;
    int64_t e = v->shape.dim[d0], s = v->stride[d0];
    v->shape.dim[d0] = v->shape.dim[d1];
    v->stride[d0] = v->stride[d1];
    v->shape.dim[d1] = e;
    v->stride[d1] = s;
    return PO_OK;
}

po_status po_tensor_narrow(const po_tensor *t, int dim, int64_t start, int64_t len, po_tensor **out) {
    *out = NULL;
    dim = normalize_dim(dim, t->shape.ndim);
    if (dim < 0 || dim >= t->shape.ndim)
        return po_fail(PO_ERR_INVALID_ARG, "narrow: dimension out of range for rank %d", t->shape.ndim);
    if (start < 0 || len < 0 || start + len > t->shape.dim[dim])
        return po_fail(PO_ERR_RANGE, "narrow: [%lld, %lld) is outside extent %lld", (long long)start,
                       (long long)(start + len), (long long)t->shape.dim[dim]);
    po_status st = new_view(t, out);
    if (st) return st;
    po_tensor *v = *out;
    v->data = (char *)v->data + (size_t)(start * v->stride[dim]) * po_dtype_size(v->dtype);
    v->shape.dim[dim] = len;
    return PO_OK;
}

po_status po_tensor_split(const po_tensor *t, int dim, int64_t size, po_tensor **out, int max_parts, int *n_parts) {
    *n_parts = 0;
    dim = normalize_dim(dim, t->shape.ndim);
    if (dim < 0 || dim >= t->shape.ndim || size <= 0)
        return po_fail(PO_ERR_INVALID_ARG, "split: bad dimension or part size");
    int64_t extent = t->shape.dim[dim];
    int64_t parts = (extent + size - 1) / size;
    if (parts > max_parts)
        return po_fail(PO_ERR_RANGE, "split: %lld parts do not fit in %d slots", (long long)parts, max_parts);
    for (int64_t p = 0; p < parts; p++) {
        int64_t len = extent - p * size < size ? extent - p * size : size;
        po_status st = po_tensor_narrow(t, dim, p * size, len, &out[p]);
        if (st) {
            for (int64_t q = 0; q < p; q++)
                po_tensor_free(out[q]);
            return st;
        }
    }
    *n_parts = (int)parts;
    return PO_OK;
}

/* Strided copies walk the shared shape with an odometer index. */
po_status po_tensor_copy(po_tensor *dst, const po_tensor *src) {
    if (dst->dtype != src->dtype) return po_fail(PO_ERR_DTYPE, "copy: dtypes differ");
    if (!po_shape_equal(&dst->shape, &src->shape)) return po_fail(PO_ERR_SHAPE, "copy: shapes differ");
    size_t es = po_dtype_size(src->dtype);
    int64_t n = po_tensor_numel(src);
    if (n == 0) return PO_OK;
    if (po_tensor_is_contiguous(dst) && po_tensor_is_contiguous(src)) {
        memmove(dst->data, src->data, (size_t)n * es);
        return PO_OK;
    }
    int nd = src->shape.ndim;
    int64_t idx[PO_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        int64_t so = 0, d = 0;
        for (int i = 0; i < nd; i++) {
            so += idx[i] * src->stride[i];
            d += idx[i] * dst->stride[i];
        }
        memcpy((char *)dst->data + d * (int64_t)es, (const char *)src->data + so * (int64_t)es, es);
        for (int i = nd - 1; i >= 0; i--) {
            if (++idx[i] < src->shape.dim[i]) break;
            idx[i] = 0;
        }
    }
    return PO_OK;
}

po_status po_tensor_contiguous(const po_tensor *t, po_tensor **out) {
    *out = NULL;
    if (po_tensor_is_contiguous(t)) return new_view(t, out);
    po_status st = po_tensor_new(t->dtype, t->shape, out);
    if (st) return st;
    st = po_tensor_copy(*out, t);
    if (st) {
        po_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

static const char *element_at(const po_tensor *t, const int64_t *index) {
    int64_t off = 0;
    for (int i = 0; i < t->shape.ndim; i++)
        off += index[i] * t->stride[i];
    return (const char *)t->data + off * (int64_t)po_dtype_size(t->dtype);
}

/* Typed loads through memcpy: no alignment or aliasing assumptions about the storage. */
float po_tensor_get_f32(const po_tensor *t, const int64_t *index) {
    const char *p = element_at(t, index);
    float f;
    int32_t i32;
    int64_t i64;
    switch (t->dtype) {
    case PO_F32: memcpy(&f, p, sizeof f); return f;
    case PO_I32: memcpy(&i32, p, sizeof i32); return (float)i32;
    case PO_I64: memcpy(&i64, p, sizeof i64); return (float)i64;
    default: return 0.0f;
    }
}

int64_t po_tensor_get_int(const po_tensor *t, const int64_t *index) {
    const char *p = element_at(t, index);
    float f;
    int32_t i32;
    int64_t i64;
    switch (t->dtype) {
    case PO_F32: memcpy(&f, p, sizeof f); return (int64_t)f;
    case PO_I32: memcpy(&i32, p, sizeof i32); return i32;
    case PO_I64: memcpy(&i64, p, sizeof i64); return i64;
    default: return 0;
    }
}

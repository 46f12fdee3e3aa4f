/* Shape ops: RESHAPE (a view), TRANSPOSE, SLICE (a view when contiguous), SLICE_GRAD, CONCAT.
 *
 * Attributes: RESHAPE ai[0] = rank, ai[1..] = extents (one may be -1).
 *             TRANSPOSE ai[0], ai[1] = the dims swapped (normalised).
 *             SLICE ai[0] = dim, ai[1] = start, ai[2] = len.
 *             SLICE_GRAD ai[0] = dim, ai[1] = start, ai[2] = full extent of dim.
 *             CONCAT ai[0] = dim. */
#include <string.h>

#include "ops/ops_util.h"

/* --- RESHAPE ------------------------------------------------------------------------------ */

static po_status reshape_infer(po_node *n) {
    int nd = (int)n->ai[0];
    if (nd < 0 || nd > PO_MAX_DIMS) return po_fail(PO_ERR_SHAPE, "bad rank %d", nd);
    po_shape s = po_shape_make(nd, &n->ai[1]);
    int infer = -1;
    int64_t known = 1, total = po__numel(n->in[0]);
    for (int i = 0; i < nd; i++) {
        if (s.dim[i] == -1 && infer < 0)
            infer = i;
        else if (s.dim[i] < 0)
            return po_fail(PO_ERR_SHAPE, "bad extent %lld", (long long)s.dim[i]);
        else
            known *= s.dim[i];
    }
    if (infer >= 0 && known > 0 && total % known == 0) {
        s.dim[infer] = total / known;
        known = total;
    }
    if (known != total) return po__shape_error("element counts differ", &n->in[0]->shape, &s);
    n->dtype = n->in[0]->dtype;
    n->shape = s;
    n->store = PO_STORE_VIEW;
    n->view_src = n->in[0];
    n->view_offset = 0;
    return PO_OK;
}

static void reshape_grad(po_graph *g, po_node *n, po_node *gy) {
    po__acc_grad(g, n->in[0], po_reshape(g, gy, n->in[0]->shape));
}

const po_op_def po_op_def_reshape = {.name = "reshape", .infer = reshape_infer, .grad = reshape_grad};

po_node *po_reshape(po_graph *g, po_node *x, po_shape shape) {
    if (shape.ndim < 0 || shape.ndim > PO_MAX_DIMS)
        return po__graph_fail(g, PO_ERR_SHAPE, "reshape: bad rank %d", shape.ndim);
    int64_t ai[PO_ATTR_INTS] = {shape.ndim};
    for (int i = 0; i < shape.ndim; i++)
        ai[1 + i] = shape.dim[i];
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_RESHAPE, 1, in, ai, NULL);
}

po_node *po_flatten(po_graph *g, po_node *x, int start_dim) {
    if (!x) return NULL;
    int d = po__norm_dim(start_dim, x->shape.ndim);
    if (d < 0) return po__graph_fail(g, PO_ERR_INVALID_ARG, "flatten: start_dim %d out of range", start_dim);
    po_shape s = x->shape;
    s.ndim = d + 1;
    s.dim[d] = po__dims_product(&x->shape, d, x->shape.ndim);
    return po_reshape(g, x, s);
}

/* --- TRANSPOSE ---------------------------------------------------------------------------- */

static po_status transpose_infer(po_node *n) {
    int nd = n->in[0]->shape.ndim;
    int d0 = (int)n->ai[0], d1 = (int)n->ai[1];
    if (d0 < 0 || d1 < 0 || d0 >= nd || d1 >= nd)
        return po_fail(PO_ERR_INVALID_ARG, "dims out of range for rank %d", nd);
    n->dtype = n->in[0]->dtype;
    n->shape = n->in[0]->shape;
    n->shape.dim[d0] = n->in[0]->shape.dim[d1];
    n->shape.dim[d1] = n->in[0]->shape.dim[d0];
    return PO_OK;
}

static void transpose_grad(po_graph *g, po_node *n, po_node *gy) {
    po__acc_grad(g, n->in[0], po_transpose(g, gy, (int)n->ai[0], (int)n->ai[1]));
}

static void copy_cost(const po_node *n, po_op_cost *c) { c->bytes_read = c->bytes_written = (double)po__nbytes(n); }

/* Viewing x as [outer, A, mid, B, inner] with A, B the swapped dims, writes
 * y[outer, B, mid, A, inner]. */
static po_status transpose_run(const po_kargs *a) {
    const po_node *n = a->node;
    const po_shape *s = &n->in[0]->shape;
    int d0 = (int)(n->ai[0] < n->ai[1] ? n->ai[0] : n->ai[1]);
    int d1 = (int)(n->ai[0] < n->ai[1] ? n->ai[1] : n->ai[0]);
    size_t es = po_dtype_size(n->dtype);
    if (d0 == d1) { /* swapping a dim with itself is the identity (the split below needs d0 < d1) */
        memcpy(a->out, a->in[0], po__nbytes(n));
        return PO_OK;
    }
    int64_t outer = po__dims_product(s, 0, d0), A = s->dim[d0], mid = po__dims_product(s, d0 + 1, d1);
    int64_t B = s->dim[d1], inner = po__dims_product(s, d1 + 1, s->ndim);
    size_t block = (size_t)inner * es;
    const char *x = a->in[0];
    char *y = a->out;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t m = 0; m < mid; m++)
                for (int64_t i = 0; i < A; i++) {
                    int64_t src = (((o * A + i) * mid + m) * B + b) * inner;
                    int64_t dst = (((o * B + b) * mid + m) * A + i) * inner;
                    memcpy(y + dst * (int64_t)es, x + src * (int64_t)es, block);
                }
    return PO_OK;
}

const po_op_def po_op_def_transpose = {
    .name = "transpose", .infer = transpose_infer, .grad = transpose_grad, .cost = copy_cost, .cpu_run = transpose_run};

po_node *po_transpose(po_graph *g, po_node *x, int d0, int d1) {
    if (!x) return NULL;
    int a = po__norm_dim(d0, x->shape.ndim), b = po__norm_dim(d1, x->shape.ndim);
    if (a < 0 || b < 0) return po__graph_fail(g, PO_ERR_INVALID_ARG, "transpose: dims %d, %d out of range", d0, d1);
    int64_t ai[PO_ATTR_INTS] = {a, b};
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_TRANSPOSE, 1, in, ai, NULL);
}

/* --- SLICE and SLICE_GRAD ------------------------------------------------------------------ */

/* Copies `len` rows of `inner` elements between [outer, ext_src, inner] and
 * [outer, ext_dst, inner] layouts at row offsets src_at and dst_at. */
static void copy_rows(char *dst, int64_t ext_dst, int64_t dst_at, const char *src, int64_t ext_src, int64_t src_at,
                      int64_t outer, int64_t len, int64_t inner, size_t es) {
    size_t bytes = (size_t)(len * inner) * es;
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + ((o * ext_dst + dst_at) * inner) * (int64_t)es,
               src + ((o * ext_src + src_at) * inner) * (int64_t)es, bytes);
}

static po_status slice_infer(po_node *n) {
    const po_shape *s = &n->in[0]->shape;
    int dim = (int)n->ai[0];
    int64_t start = n->ai[1], len = n->ai[2];
    if (dim < 0 || dim >= s->ndim) return po_fail(PO_ERR_INVALID_ARG, "dim out of range");
    if (start < 0 || len <= 0 || start + len > s->dim[dim])
        return po_fail(PO_ERR_RANGE, "[%lld, %lld) is outside extent %lld", (long long)start, (long long)(start + len),
                       (long long)s->dim[dim]);
    n->dtype = n->in[0]->dtype;
    n->shape = *s;
    n->shape.dim[dim] = len;
    if (po__dims_product(s, 0, dim) == 1) { /* one contiguous block: alias it */
        n->store = PO_STORE_VIEW;
        n->view_src = n->in[0];
        n->view_offset = (size_t)(start * po__dims_product(s, dim + 1, s->ndim)) * po_dtype_size(n->dtype);
    }
    return PO_OK;
}

static void slice_grad(po_graph *g, po_node *n, po_node *gy) {
    int64_t ai[PO_ATTR_INTS] = {n->ai[0], n->ai[1], n->in[0]->shape.dim[n->ai[0]]};
    po_node *in[1] = {gy};
    po__acc_grad(g, n->in[0], po__node_new(g, PO_OP_SLICE_GRAD, 1, in, ai, NULL));
}

static po_status slice_run(const po_kargs *a) {
    const po_node *n = a->node;
    const po_shape *s = &n->in[0]->shape;
    int dim = (int)n->ai[0];
    int64_t outer = po__dims_product(s, 0, dim), inner = po__dims_product(s, dim + 1, s->ndim);
    size_t es = po_dtype_size(n->dtype);
    /* A view already is its rows (slice_infer): copying them onto themselves is an overlapping
     * memcpy, and a race where two pipelines share the source (a hybrid plan's lanes slicing the
     * shared position table). */
    if (outer == 1 && (const char *)a->out == (const char *)a->in[0] + (size_t)(n->ai[1] * inner) * es) return PO_OK;
    copy_rows(a->out, n->shape.dim[dim], 0, a->in[0], s->dim[dim], n->ai[1], outer, n->ai[2], inner, es);
    return PO_OK;
}

static void slice_cost(const po_node *n, po_op_cost *c) {
    if (n->store != PO_STORE_VIEW) copy_cost(n, c);
}

static po_status slice_grad_infer(po_node *n) {
    po_status st = po__want_f32(n, 0);
    if (st) return st;
    int dim = (int)n->ai[0];
    n->shape = n->in[0]->shape;
    if (dim < 0 || dim >= n->shape.ndim || n->ai[1] < 0 || n->ai[1] + n->shape.dim[dim] > n->ai[2])
        return po_fail(PO_ERR_RANGE, "slice_grad: bad placement");
    n->shape.dim[dim] = n->ai[2];
    return PO_OK;
}

static po_status slice_grad_run(const po_kargs *a) {
    const po_node *n = a->node;
    const po_shape *s = &n->shape;
    int dim = (int)n->ai[0];
    memset(a->out, 0, po__nbytes(n));
    copy_rows(a->out, s->dim[dim], n->ai[1], a->in[0], n->in[0]->shape.dim[dim], 0, po__dims_product(s, 0, dim),
              n->in[0]->shape.dim[dim], po__dims_product(s, dim + 1, s->ndim), sizeof(float));
    return PO_OK;
}

const po_op_def po_op_def_slice = {
    .name = "slice", .infer = slice_infer, .grad = slice_grad, .cost = slice_cost, .cpu_run = slice_run};

/* Reads the slice's gradient, writes the whole (zero-padded) input gradient. */
static void slice_grad_cost(const po_node *n, po_op_cost *c) {
    c->bytes_read = (double)po__nbytes(n->in[0]);
    c->bytes_written = (double)po__nbytes(n);
}

const po_op_def po_op_def_slice_grad = {
    .name = "slice_grad", .infer = slice_grad_infer, .cost = slice_grad_cost, .cpu_run = slice_grad_run};

po_node *po_slice(po_graph *g, po_node *x, int dim, int64_t start, int64_t len) {
    if (!x) return NULL;
    int d = po__norm_dim(dim, x->shape.ndim);
    if (d < 0) return po__graph_fail(g, PO_ERR_INVALID_ARG, "slice: dim %d out of range", dim);
    int64_t ai[PO_ATTR_INTS] = {d, start, len};
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_SLICE, 1, in, ai, NULL);
}

int po_split(po_graph *g, po_node *x, int dim, int64_t size, po_node **out, int max_parts) {
    if (!x) return 0;
    int d = po__norm_dim(dim, x->shape.ndim);
    if (d < 0 || size <= 0) {
        po__graph_fail(g, PO_ERR_INVALID_ARG, "split: bad dim %d or size %lld", dim, (long long)size);
        return 0;
    }
    int64_t extent = x->shape.dim[d], parts = (extent + size - 1) / size;
    if (parts > max_parts) {
        po__graph_fail(g, PO_ERR_RANGE, "split: %lld parts do not fit in %d", (long long)parts, max_parts);
        return 0;
    }
    for (int64_t p = 0; p < parts; p++) {
        int64_t len = extent - p * size < size ? extent - p * size : size;
        if (!(out[p] = po_slice(g, x, d, p * size, len))) return 0;
    }
    return (int)parts;
}

/* --- CONCAT -------------------------------------------------------------------------------- */

static po_status concat_infer(po_node *n) {
    const po_shape *s0 = &n->in[0]->shape;
    int dim = (int)n->ai[0];
    if (dim < 0 || dim >= s0->ndim) return po_fail(PO_ERR_INVALID_ARG, "dim out of range");
    n->dtype = n->in[0]->dtype;
    n->shape = *s0;
    n->shape.dim[dim] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const po_shape *s = &n->in[i]->shape;
        if (n->in[i]->dtype != n->dtype) return po_fail(PO_ERR_DTYPE, "inputs have different dtypes");
        bool ok = s->ndim == s0->ndim;
        for (int k = 0; ok && k < s->ndim; k++)
            ok = k == dim || s->dim[k] == s0->dim[k];
        if (!ok) return po__shape_error("extents outside the concat dim differ", s0, s);
        n->shape.dim[dim] += s->dim[dim];
    }
    return PO_OK;
}

static void concat_grad(po_graph *g, po_node *n, po_node *gy) {
    int dim = (int)n->ai[0];
    int64_t at = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape.dim[dim];
        if (po__wants_grad(n, i)) po__acc_grad(g, n->in[i], po_slice(g, gy, dim, at, len));
        at += len;
    }
}

static po_status concat_run(const po_kargs *a) {
    const po_node *n = a->node;
    const po_shape *s = &n->shape;
    int dim = (int)n->ai[0];
    int64_t outer = po__dims_product(s, 0, dim), inner = po__dims_product(s, dim + 1, s->ndim), at = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape.dim[dim];
        copy_rows(a->out, s->dim[dim], at, a->in[i], len, 0, outer, len, inner, po_dtype_size(n->dtype));
        at += len;
    }
    return PO_OK;
}

const po_op_def po_op_def_concat = {
    .name = "concat", .infer = concat_infer, .grad = concat_grad, .cost = copy_cost, .cpu_run = concat_run};

po_node *po_concat(po_graph *g, po_node *const *xs, int n, int dim) {
    if (n < 1) return po__graph_fail(g, PO_ERR_INVALID_ARG, "concat: no inputs");
    for (int i = 0; i < n; i++)
        if (!xs[i]) return NULL;
    int d = po__norm_dim(dim, xs[0]->shape.ndim);
    if (d < 0) return po__graph_fail(g, PO_ERR_INVALID_ARG, "concat: dim %d out of range", dim);
    int64_t ai[PO_ATTR_INTS] = {d};
    return po__node_new(g, PO_OP_CONCAT, n, xs, ai, NULL);
}

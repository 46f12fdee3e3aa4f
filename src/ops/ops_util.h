/* Small helpers shared by op definitions: argument checks and shape arithmetic. */
#ifndef PO_OPS_UTIL_H
#define PO_OPS_UTIL_H

#include <stdbool.h>
#include <stdio.h>

#include "ops/op_def.h"

/* PO_ERR_DTYPE unless input i of n is F32. */
static inline po_status po__want_f32(const po_node *n, int i) {
    if (n->in[i]->dtype == PO_F32) return PO_OK;
    return po_fail(PO_ERR_DTYPE, "input %d must be F32, got %s", i, po_dtype_name(n->in[i]->dtype));
}

static inline po_status po__want_int(const po_node *n, int i) {
    po_dtype t = n->in[i]->dtype;
    if (t == PO_I32 || t == PO_I64) return PO_OK;
    return po_fail(PO_ERR_DTYPE, "input %d must hold integer ids (I32 or I64), got %s", i, po_dtype_name(t));
}

/* True when `suffix` equals the trailing dims of `s`. */
static inline bool po__is_suffix(const po_shape *suffix, const po_shape *s) {
    if (suffix->ndim > s->ndim) return false;
    for (int i = 0; i < suffix->ndim; i++)
        if (suffix->dim[suffix->ndim - 1 - i] != s->dim[s->ndim - 1 - i]) return false;
    return true;
}

static inline po_status po__shape_error(const char *what, const po_shape *a, const po_shape *b) {
    char x[96], y[96];
    return po_fail(PO_ERR_SHAPE, "%s: %s and %s", what, po_shape_format(a, x, sizeof x),
                   po_shape_format(b, y, sizeof y));
}

/* Product of dims [from, to). */
static inline int64_t po__dims_product(const po_shape *s, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= s->dim[i];
    return p;
}

/* Normalises a possibly negative dim index for rank ndim; -1 when out of range. */
static inline int po__norm_dim(int dim, int ndim) {
    if (dim < 0) dim += ndim;
    return dim >= 0 && dim < ndim ? dim : -1;
}

/* Element-wise op costs: `flops_per` per output element, reading `n_read` tensors of the
 * output's size. */
static inline void po__cost_elementwise(const po_node *n, po_op_cost *c, double flops_per, int n_read) {
    double e = (double)po__numel(n);
    c->flops = e * flops_per;
    c->bytes_read = e * 4.0 * n_read;
    c->bytes_written = e * 4.0;
}

/* Operator split's units for element-wise ops (op_def cpu_units): runs of PO__ELEM_UNIT
 * elements, so that members' stretches of an aligned buffer start on 64-byte lines of their own. */
#define PO__ELEM_UNIT 4096
static inline int64_t po__elem_units(const po_node *n) { return (po__numel(n) + PO__ELEM_UNIT - 1) / PO__ELEM_UNIT; }
/* The elements [*lo, *hi) of units [begin, end) of n. */
static inline void po__elem_range(const po_node *n, int64_t begin, int64_t end, int64_t *lo, int64_t *hi) {
    int64_t e = po__numel(n);
    *lo = begin * PO__ELEM_UNIT < e ? begin * PO__ELEM_UNIT : e;
    *hi = end * PO__ELEM_UNIT < e ? end * PO__ELEM_UNIT : e;
}

#endif

/* SUM_TO: sums x[..., suffix] over its leading dims. The output shape is the target suffix,
 * stored at creation (see po_sum_to); used for bias gradients and broadcast adds. */
#include <string.h>

#include "ops/ops_util.h"

static po_status sum_to_infer(po_node *n) {
    po_status st = po__want_f32(n, 0);
    if (st) return st;
    /* ai[0] = target rank, ai[1..] = its extents. */
    int nd = (int)n->ai[0];
    if (nd < 0 || nd > PO_MAX_DIMS) return po_fail(PO_ERR_SHAPE, "sum_to: bad target rank %d", nd);
    n->shape = po_shape_make(nd, &n->ai[1]);
    if (!po__is_suffix(&n->shape, &n->in[0]->shape))
        return po__shape_error("target must be a suffix of the input shape", &n->shape, &n->in[0]->shape);
    return PO_OK;
}

static void sum_to_grad(po_graph *g, po_node *n, po_node *gy) {
    /* Broadcasting back is adding gy to zeros of x's shape. */
    po__acc_grad(g, n->in[0], po_add(g, po_fill(g, n->in[0]->shape, 0.0f), gy));
}

static void sum_to_cost(const po_node *n, po_op_cost *c) {
    c->flops = (double)po__numel(n->in[0]);
    c->bytes_read = (double)po__nbytes(n->in[0]);
    c->bytes_written = (double)po__nbytes(n);
}

/* Rows of x: the elements of its leading dimensions, each a copy of the output's shape. */
static int64_t sum_to_rows(const po_node *n) {
    int64_t inner = po__numel(n);
    return inner ? po__numel(n->in[0]) / inner : 0;
}

/* The sum of rows [begin, end) of x, in row order, into a->out. Operator split deals a bias
 * gradient out by rows (runtime/opsplit.h, po__opsplit_gathers): each member sums the rows it
 * computed and the parts are added up after, rather than one thread reading every member's
 * rows. */
static po_status sum_to_run_units(const po_kargs *a, int64_t begin, int64_t end) {
    const float *x = a->in[0];
    float *y = a->out;
    int64_t inner = po__numel(a->node);
    memset(y, 0, (size_t)inner * sizeof *y);
    for (int64_t r = begin; r < end; r++)
#pragma omp simd
        for (int64_t j = 0; j < inner; j++)
            y[j] += x[r * inner + j];
    return PO_OK;
}

/* The whole node, rows 0 .. rows - 1 in order (units_sum: a node dealt out by rows sums each
 * member's part in row order, then the parts in member order). */
static po_status sum_to_run(const po_kargs *a) { return sum_to_run_units(a, 0, sum_to_rows(a->node)); }

const po_op_def po_op_def_sum_to = {.name = "sum_to",
                                    .infer = sum_to_infer,
                                    .grad = sum_to_grad,
                                    .cost = sum_to_cost,
                                    .cpu_run = sum_to_run,
                                    .cpu_units = sum_to_rows,
                                    .cpu_run_units = sum_to_run_units,
                                    .units_sum = true};

po_node *po_sum_to(po_graph *g, po_node *x, po_shape shape) {
    /* Checked before the extents are copied: a hand-made rank above PO_MAX_DIMS would read past
     * shape.dim and write past ai (as po_reshape also guards). */
    if (shape.ndim < 0 || shape.ndim > PO_MAX_DIMS)
        return po__graph_fail(g, PO_ERR_SHAPE, "sum_to: bad target rank %d", shape.ndim);
    int64_t ai[PO_ATTR_INTS] = {shape.ndim};
    for (int i = 0; i < shape.ndim; i++)
        ai[1 + i] = shape.dim[i];
    po_node *in[1] = {x};
    return po__node_new(g, PO_OP_SUM_TO, 1, in, ai, NULL);
}

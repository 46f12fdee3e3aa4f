/* Leaves: graph inputs, parameters and constant fills. Shapes are set by the builders in
 * src/graph/graph.c. */
#include <string.h>

#include "ops/ops_util.h"

static po_status infer_leaf(po_node *n) {
    (void)n;
    return PO_OK;
}

const po_op_def po_op_def_input = {.name = "input", .infer = infer_leaf};
const po_op_def po_op_def_param = {.name = "param", .infer = infer_leaf};

/* FILL: af[0] = value. */
static po_status fill_run(const po_kargs *a) {
    float v = a->node->af[0], *y = a->out;
    int64_t n = po__numel(a->node);
    for (int64_t i = 0; i < n; i++)
        y[i] = v;
    return PO_OK;
}

static void fill_cost(const po_node *n, po_op_cost *c) { c->bytes_written = (double)po__nbytes(n); }

const po_op_def po_op_def_fill = {.name = "fill", .infer = infer_leaf, .cost = fill_cost, .cpu_run = fill_run};

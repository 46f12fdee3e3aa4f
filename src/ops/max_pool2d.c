/* PLACEHOLDER while the max_pool2d family is written (replaced wholesale). */
#include "ops/ops_util.h"
static po_status ph_infer(po_node *n) { (void)n; return po_fail(PO_ERR_UNSUPPORTED, "max_pool2d not built yet"); }
const po_op_def po_op_def_max_pool2d = {.name = "max_pool2d", .infer = ph_infer};
const po_op_def po_op_def_max_pool2d_grad = {.name = "max_pool2d_grad", .infer = ph_infer};
po_node *po_max_pool2d(po_graph *g, po_node *x, int kernel, int stride, int padding) {
    (void)x; (void)kernel; (void)stride; (void)padding; return po__graph_fail(g, PO_ERR_UNSUPPORTED, "max_pool2d not built yet"); }

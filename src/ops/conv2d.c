/* PLACEHOLDER while the conv2d family is written (replaced wholesale). */
#include "ops/ops_util.h"
static po_status ph_infer(po_node *n) { (void)n; return po_fail(PO_ERR_UNSUPPORTED, "conv2d not built yet"); }
const po_op_def po_op_def_conv2d = {.name = "conv2d", .infer = ph_infer};
const po_op_def po_op_def_conv2d_grad_input = {.name = "conv2d_grad_input", .infer = ph_infer};
const po_op_def po_op_def_conv2d_grad_weight = {.name = "conv2d_grad_weight", .infer = ph_infer};
const po_op_def po_op_def_conv2d_grad_bias = {.name = "conv2d_grad_bias", .infer = ph_infer};
po_conv2d_opts po_conv2d_opts_default(void) { po_conv2d_opts o = {1, 1, 0, 0}; return o; }
po_node *po_conv2d(po_graph *g, po_node *x, po_node *w, po_node *b, po_conv2d_opts opts) {
    (void)x; (void)w; (void)b; (void)opts; return po__graph_fail(g, PO_ERR_UNSUPPORTED, "conv2d not built yet"); }

#include "paropt/analyze.h"

#include "ops/op_def.h"

po_cost po_node_cost(const po_node *n) {
    po_op_cost c = {0.0, 0.0, 0.0};
    const po_op_def *def = po__op_def(n->op);
    if (def->cost) def->cost(n, &c);
    po_cost out = {c.flops, c.bytes_read, c.bytes_written};
    return out;
}

/* Graph analysis: the work each node does. */
#ifndef PAROPT_ANALYZE_H
#define PAROPT_ANALYZE_H

#include "paropt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_cost {
    double flops;         /* floating-point operations; a multiply-add counts 2 */
    double bytes_read;    /* bytes of inputs (and saved state) the kernel reads */
    double bytes_written; /* bytes of outputs (and saved state) it writes */
} po_cost;

/* Work of one node; all zero for nodes that compute nothing (inputs, parameters, views). */
po_cost po_node_cost(const po_node *n);

#ifdef __cplusplus
}
#endif
#endif

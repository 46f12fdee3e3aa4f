/* What every op provides: its definition record and its CPU kernel's calling convention. */
#ifndef PO_OPS_OP_DEF_H
#define PO_OPS_OP_DEF_H

#include <stdint.h>

#include "graph/node.h"
#include "paropt/ops.h"

/* Work of one node, for analysis and for reporting achieved FLOP/s. */
typedef struct po_op_cost {
    double flops;         /* floating-point operations (a multiply-add is 2) */
    double bytes_read;    /* bytes of inputs and saved state read */
    double bytes_written; /* bytes of outputs and saved state written */
} po_op_cost;

/* Per-run values that are not part of the graph. */
typedef struct po_step_ctx {
    int64_t t;      /* optimizer step number, 1 for the first step */
    float lr_scale; /* multiplies every optimizer node's learning rate */
} po_step_ctx;

/* Everything a CPU kernel touches, resolved once when the executor is built. */
typedef struct po_kargs {
    const po_node *node;
    void *out;             /* output (for in-place ops, the updated tensor) */
    void *aux;             /* node's auxiliary buffer, or NULL */
    const void *const *in; /* output buffer of each input */
    void *const *in_aux;   /* auxiliary buffer of each input (NULL where none) */
    void *state;           /* from cpu_init, or NULL */
    void *scratch;         /* node->scratch_bytes of temporary space */
    const po_step_ctx *step;
} po_kargs;

typedef struct po_op_def {
    const char *name;
    /* Checks inputs and attributes, sets dtype, shape, aux/scratch bytes and, for views,
     * store/view_src/view_offset. Return an error with po_fail on bad arguments. */
    po_status (*infer)(po_node *n);
    /* Adds the gradient of the loss for each input that wants one (po__acc_grad), given gy,
     * the gradient for n's output. NULL: the op is not differentiable (its inputs get none). */
    void (*grad)(po_graph *g, po_node *n, po_node *gy);
    /* FLOPs and bytes moved. NULL: no work. */
    void (*cost)(const po_node *n, po_op_cost *c);
    /* Optional per-node setup (oneDNN primitives) and its release. */
    po_status (*cpu_init)(const po_node *n, void **state);
    void (*cpu_free)(void *state);
    /* Computes the node. Returns an error only for bad data (an index out of range), never for
     * a programming error. NULL with cpu_run_units or cpu_run_range set: the whole node is all
     * its units, or its every element (po__op_run). NULL with neither: no work (inputs,
     * parameters, views). */
    po_status (*cpu_run)(const po_kargs *a);
    /* Optional: elements [begin, end) of an element-wise node's work only (the optimizer's
     * updates, ReLU and its gradient), so several threads can share one node: a large
     * parameter's update, or a ReLU over the blocks of a split product (runtime/opsplit.c). */
    po_status (*cpu_run_range)(const po_kargs *a, int64_t begin, int64_t end);
    /* Optional, for operator split: the node's work as cpu_units(n) independent units (causal
     * attention: one per sample and head), of which cpu_run_units computes [begin, end) and
     * writes only those units' part of the output. Several threads may run disjoint ranges of
     * one node at once, each with its own a->scratch; every unit is computed exactly as cpu_run
     * computes it, so a split node's result is the whole node's, bit for bit (up to the order
     * of the final sum for units_sum). */
    int64_t (*cpu_units)(const po_node *n);
    po_status (*cpu_run_units)(const po_kargs *a, int64_t begin, int64_t end);
    /* With cpu_units: a range writes its units' contribution to the whole output (a weight
     * gradient summed over samples), not a part of it; ranges run at once each write an output
     * of their own, which the caller adds up. */
    bool units_sum;
} po_op_def;

/* The definition of op; never NULL for a valid op. */
const po_op_def *po__op_def(po_op op);

/* Whether nodes of def's op have work on the CPU, and that work for the node of a: cpu_run, or
 * cpu_run_units over every unit, or cpu_run_range over every element. */
bool po__op_has_work(const po_op_def *def);
po_status po__op_run(const po_op_def *def, const po_kargs *a);

#define PO_OP_EXTERN(e, name) extern const po_op_def po_op_def_##name;
PO_OP_LIST(PO_OP_EXTERN)
#undef PO_OP_EXTERN

#endif

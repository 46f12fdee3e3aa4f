/* Optimizers with PyTorch's semantics (torch.optim.SGD, Adam, AdamW; single-tensor code path).
 *
 * The update is part of the graph: po_graph_add_optimizer appends one in-place update node per
 * parameter after the backward pass, so analysis and planning see optimizer work like any
 * other. State (momentum, moments) lives in po_params' state buffer. */
#ifndef PAROPT_OPTIM_H
#define PAROPT_OPTIM_H

#include <stdbool.h>

#include "paropt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PO_OPTIM_SGD, PO_OPTIM_ADAM, PO_OPTIM_ADAMW } po_optim_kind;

typedef struct po_optim_opts {
    po_optim_kind kind;
    float lr;           /* learning rate, > 0 */
    float weight_decay; /* SGD/Adam: added to the gradient (L2); AdamW: decoupled decay */
    float momentum;     /* SGD only, >= 0 */
    float dampening;    /* SGD only */
    bool nesterov;      /* SGD only; needs momentum > 0 and dampening 0 */
    float beta1, beta2; /* Adam/AdamW, in [0, 1) */
    float eps;          /* Adam/AdamW, > 0 */
} po_optim_opts;

/* PyTorch's defaults: SGD lr 1e-3 (PyTorch has none; paropt picks Adam's), momentum 0;
 * Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0; AdamW the same with
 * weight_decay 1e-2. */
po_optim_opts po_optim_opts_default(po_optim_kind kind);
/* "sgd", "adam", "adamw" */
po_status po_optim_kind_parse(const char *name, po_optim_kind *out);
const char *po_optim_kind_name(po_optim_kind kind);
/* PO_ERR_INVALID_ARG with a message when a value is out of range. */
po_status po_optim_opts_check(const po_optim_opts *o);

/* Appends the update of every parameter (after po_graph_backward). */
po_status po_graph_add_optimizer(po_graph *g, const po_optim_opts *o);

#ifdef __cplusplus
}
#endif
#endif

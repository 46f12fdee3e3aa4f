/* Hybrid training step: pipeline stages that are each data parallel over a group of devices.
 *
 * Replica r of every stage forms lane r: a pipeline of its own (runtime/pp.h) over a contiguous
 * slice of each batch, with parameter values and optimizer state shared with lane 0 and
 * gradients of its own. A step starts every lane at once; once all are done, the gradients are
 * averaged into lane 0's by rows (g = sum_r rows_r / batch x g_r, in lane order: the same sum as
 * data parallel over the lanes) and lane 0 applies the optimizer to the shared storage.
 *
 * Why lanes rather than one pipeline whose stages fan out: the planner's hybrid plans give every
 * stage the same group size and even shares, so a stage's replica r always hands its rows to the
 * next stage's replica r; lanes keep each activation on one path and reuse the pipeline engine
 * unchanged, and a plan whose stages split the batch differently is refused. */
#ifndef PO_RUNTIME_HYBRID_H
#define PO_RUNTIME_HYBRID_H

#include "paropt/train.h"

typedef struct po_hy po_hy;

/* Builds the lanes for model spec `spec` at full batch `batch`. PO_ERR_INVALID_ARG with a message
 * for bad stages, replica counts or micro-batch counts, or a lane whose rows do not divide into
 * the micro-batches. */
po_status po__hy_new(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                     const po_hybrid_opts *opts, po_hy **out);
void po__hy_free(po_hy *hy);

/* One step on the full batch in x, y ([batch, ...], contiguous); *loss = the batch's mean. */
po_status po__hy_step(po_hy *hy, const po_tensor *x, const po_tensor *y, float *loss);

po_params *po__hy_params(po_hy *hy); /* the shared parameters (lane 0's master storage) */
po_exec *po__hy_exec(po_hy *hy);     /* lane 0's master executor: it holds the optimizer step count */
int po__hy_workers(const po_hy *hy); /* stages x replicas */
int64_t po__hy_rows(const po_hy *hy, int worker); /* rows of each micro-batch worker takes */
po_status po__hy_set_slowdown(po_hy *hy, int worker, float factor);
po_status po__hy_stats(const po_hy *hy, int worker, po_worker_stats *out);
struct po_trace;
void po__hy_set_trace(po_hy *hy, struct po_trace *tr); /* worker w records on track w */

#endif

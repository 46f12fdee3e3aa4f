/* Data-parallel training step over worker threads, one per device (a pinned core group).
 *
 * Each worker holds a copy of the model's graph for its share of the batch and computes its
 * share's gradients into gradient storage of its own; the parameters and optimizer state are
 * one copy shared by all. A step: every worker copies its rows of the batch, runs forward and
 * backward, announcing each gradient bucket (runtime/dp_buckets.h) as soon as its part of it is
 * final; the gradients are reduced into worker 0's a bucket at a time, weighted by share
 * (sum_i (B_i / B) g_i, in worker order: exactly the full batch's mean gradient, the same bits
 * whoever reduces a bucket), by whichever worker has finished its backward pass first, as soon
 * as every worker has announced that bucket — so an early worker's wait for a slower one is
 * spent reducing; then they apply the optimizer, each to a balanced set of parameters. */
#ifndef PO_RUNTIME_DP_H
#define PO_RUNTIME_DP_H

#include "paropt/train.h"

typedef struct po_dp po_dp;

/* Workers per data-parallel group. */
#define PO__DP_MAX_WORKERS 64

/* Builds workers for model spec `spec` at full batch `batch` split by opts->workers' shares,
 * with optimizer o; parameters are initialised from seed. */
po_status po__dp_new(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                     const po_trainer_opts *opts, po_dp **out);
void po__dp_free(po_dp *dp);

/* One step on the full batch in x, y ([batch, ...], contiguous); *loss = the batch's mean. */
po_status po__dp_step(po_dp *dp, const po_tensor *x, const po_tensor *y, float *loss);

po_params *po__dp_params(po_dp *dp); /* the shared parameters (worker 0's storage) */
po_exec *po__dp_exec(po_dp *dp);     /* worker 0's executor: it holds the optimizer step count */
/* Rows of the batch worker i takes. */
int64_t po__dp_rows(const po_dp *dp, int i);
int po__dp_workers(const po_dp *dp);
po_status po__dp_set_slowdown(po_dp *dp, int i, float factor);
void po__dp_stats(const po_dp *dp, int i, po_worker_stats *out);
int64_t po__dp_rebalances(const po_dp *dp);
/* Worker i records into track i of tr (NULL: no trace): its ops, its all-reduce slice, the
 * gradient flows it reads and its optimizer slice. */
struct po_trace;
void po__dp_set_trace(po_dp *dp, struct po_trace *tr);

#endif

/* Pipeline-parallel training step over stage threads, one per device (a pinned core group).
 *
 * Every stage holds executors over one shared copy of the model's graph built at micro-batch
 * rows (batch / m) with its backward pass and optimizer, and runs only the nodes of its layers:
 * a node belongs to the stage owning its layer (nodes outside every layer take the layer of the
 * closest earlier node, as the planner's workload does). A tensor one stage computes and another
 * reads (forward activations, backward gradients, and any state saved for the backward pass)
 * is published by its producer, per micro-batch, into a staging buffer once the producer's
 * phase is done, and copied by the consumer into its executor just where the producer would
 * have run, so the executors' memory plans hold as they are.
 *
 * Each micro-batch in flight has an executor of its own (GPipe: m per stage; 1F1B: at most
 * n_stages - s at stage s), with parameter values and optimizer state shared with the master
 * storage and gradients private. After the backward of micro-batch j, in the order j = 0, 1,
 * ..., a stage adds (rows / batch) times its gradients into the master gradient buffer for the
 * parameters whose gradient it computes; after all stages are done, each applies the optimizer
 * nodes of its layers to the master storage. */
#ifndef PO_RUNTIME_PP_H
#define PO_RUNTIME_PP_H

#include "paropt/train.h"

typedef struct po_pp po_pp;

#define PO__PP_MAX_STAGES 64

/* Builds the stages for model spec `spec` at full batch `batch` with optimizer o; parameters
 * initialised from seed (the same values po_trainer_new draws). Checks opts: PO_ERR_INVALID_ARG
 * with a message when the stages do not cover the model's layers in order or micro_batches does
 * not divide the batch; PO_ERR_UNSUPPORTED when a cut makes a stage depend on a later stage's
 * forward (or an earlier stage's backward) work. */
po_status po__pp_new(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                     const po_pipeline_opts *opts, po_pp **out);
void po__pp_free(po_pp *pp);

/* A lane of a hybrid plan (runtime/hybrid.h): po__pp_new, but with parameter values and
 * optimizer state shared with `share` (another pipeline's po__pp_params; NULL: its own storage
 * initialised from seed) and gradients of its own. */
po_status po__pp_new_lane(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                          const po_pipeline_opts *opts, po_params *share, po_pp **out);

/* po__pp_new, but with `own` as its master storage, values and optimizer state as they are (no
 * initialisation): the parameters of a pipeline of the same model and optimizer, taken from it
 * with po__pp_release_params. On success the pipeline owns them; on failure they stay the
 * caller's. (Re-partitioning, runtime/pp_rebalance.h.) */
po_status po__pp_new_adopting(const char *spec, int64_t batch, const po_optim_opts *o, const po_pipeline_opts *opts,
                              po_params *own, po_pp **out);
/* Hands the master parameters to the caller: po__pp_free then leaves them alone. Only between
 * steps, and only to free the pipeline next. */
po_params *po__pp_release_params(po_pp *pp);
/* Carries `from`'s run-time settings over to `to` (a pipeline of the same stages, just built):
 * the optimizer step count, each stage's emulated slowdown, the trace and its tracks, the update
 * hook (po__pp_set_update), and the last step's statistics. Not the learning-rate scale. */
void po__pp_inherit(po_pp *to, const po_pp *from);

/* One step on the full batch in x, y ([batch, ...], contiguous); *loss = the batch's mean.
 * po__pp_step = po__pp_start (wakes the stages and returns) + po__pp_finish (waits for them), so
 * a caller can run several pipelines at once. x and y must stay valid until po__pp_finish. */
po_status po__pp_step(po_pp *pp, const po_tensor *x, const po_tensor *y, float *loss);
void po__pp_start(po_pp *pp, const po_tensor *x, const po_tensor *y);
po_status po__pp_finish(po_pp *pp, float *loss);
/* With fn set (NULL: the stages apply their own optimizer nodes and the step is counted): each
 * stage's thread calls fn(ctx, stage, ok) at the end of every step instead, and the caller
 * counts the step (a hybrid plan averages its lanes' gradients and updates there, each lane's
 * stage s taking a share of stage s's parameters). ok is false after a failure anywhere in this
 * pipeline; fn is called all the same, so a barrier across pipelines inside it is always met. A
 * failure fn returns (when ok) fails the step. The device's emulated slowness covers fn's time. */
typedef po_status (*po__pp_update_fn)(void *ctx, int stage, bool ok);
void po__pp_set_update(po_pp *pp, po__pp_update_fn fn, void *ctx);
/* Stage s's parameters (indices into the master po_params, those whose gradient it computes)
 * and its optimizer nodes (ids in the master executor's graph); *ids stays the pipeline's. */
int po__pp_stage_params(const po_pp *pp, int s, const int **ids);
int po__pp_stage_optimizer(const po_pp *pp, int s, const int **ids);

po_params *po__pp_params(po_pp *pp); /* the master parameters */
po_exec *po__pp_exec(po_pp *pp);     /* the master executor: it holds the optimizer step count */
int po__pp_stages(const po_pp *pp);
int64_t po__pp_rows(const po_pp *pp); /* rows of each micro-batch */
po_status po__pp_set_slowdown(po_pp *pp, int stage, float factor);
void po__pp_stats(const po_pp *pp, int stage, po_worker_stats *out);
/* Stage s records into track s of tr (NULL: no trace): its ops, a flow per micro-batch tensor
 * it receives, and its gradient-accumulation and optimizer slices. */
struct po_trace;
void po__pp_set_trace(po_pp *pp, struct po_trace *tr);
/* Stage s records on track base + s * stride instead (default 0, 1); set before tracing. */
void po__pp_set_tracks(po_pp *pp, int base, int stride);
/* Executors (micro-batch slots) of stage s, and the most micro-batches it held in flight at
 * once (forward started, gradients not yet accumulated) over every step so far. */
int po__pp_slots(const po_pp *pp, int stage);
int po__pp_max_in_flight(const po_pp *pp, int stage);

/* Stage s's layer range (inclusive), the model's layer count (at least 1) and the layer node n
 * is counted in (its own, or for nodes outside every layer the closest earlier node's). */
void po__pp_stage_layers(const po_pp *pp, int s, int *first, int *last);
int po__pp_n_layers(const po_pp *pp);
int po__pp_node_layer(const po_pp *pp, int node);
/* Per-node profiling of every stage's executors (po_exec_set_profiling); off by default. */
void po__pp_set_profiling(po_pp *pp, bool on);
/* Adds to secs[layer] the forward and backward seconds stage s's executors profiled for each of
 * its layers since the last call, and clears those profiles. Between steps only. */
void po__pp_take_layer_seconds(po_pp *pp, int s, double *secs);

/* The pipeline engine of a trainer made by po_trainer_new_pipeline, else NULL (trainer.c). */
po_pp *po__trainer_pp(po_trainer *t);

#endif

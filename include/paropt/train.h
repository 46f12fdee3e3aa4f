/* Training a model on one worker: backward pass, optimizer, parameters and executor together.
 *
 *   po_model *m;     po_model_build("mnist_mlp", 128, &m);
 *   po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
 *   po_trainer *t;   po_trainer_new(m, &o, 42, &t);
 *   for (...) { fill po_trainer_input(t, 0) and (t, 1); po_trainer_step(t, &loss); }
 *   po_params_save(po_trainer_params(t), "model.safetensors", 0, NULL, NULL);
 */
#ifndef PAROPT_TRAIN_H
#define PAROPT_TRAIN_H

#include <stdint.h>

#include "paropt/data.h"
#include "paropt/models.h"
#include "paropt/optim.h"
#include "paropt/params.h"
#include "paropt/plan.h"
#include "paropt/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_trainer po_trainer;

/* Adds the backward pass and the optimizer to m's graph, allocates parameters initialised from
 * `seed` (PyTorch's default distributions), and prepares the executor. m must outlive t. */
po_status po_trainer_new(po_model *m, const po_optim_opts *o, uint64_t seed, po_trainer **out);

/* One worker of a data-parallel trainer: a thread pinned to cores first_core ..
 * first_core + n_cores - 1 that takes `share` of every batch. (A worker runs one thread for
 * now, whatever its core count.) */
typedef struct po_worker_spec {
    int first_core, n_cores;
    double share; /* fraction of each batch; all 0 = even shares; otherwise normalised */
} po_worker_spec;

typedef struct po_trainer_opts {
    int n_workers;                 /* 0 or 1: train on the calling thread */
    const po_worker_spec *workers; /* n_workers entries */
    /* Re-split the batch when the workers' measured finish times drift more than 10% apart for
     * 3 steps: rows follow measured speed, without restarting. Results then depend on timing
     * (the split changes the summation order), so leave it off for bit-reproducible runs. */
    bool rebalance;
} po_trainer_opts;

/* po_trainer_new spreading each step over workers (data parallel): every worker computes its
 * share's gradients with a copy of the model, the gradients are averaged by share (the same
 * gradient as the whole batch's, up to rounding), and the optimizer runs once on one shared
 * copy of the parameters. m's graph is left as built (each worker builds its own copy). */
po_status po_trainer_new_ex(po_model *m, const po_optim_opts *o, uint64_t seed, const po_trainer_opts *opts,
                            po_trainer **out);
void po_trainer_free(po_trainer *t);

/* Pipeline parallel: stage i is a thread pinned like a data-parallel worker (worker.share is
 * unused) that runs layers first_layer..last_layer (po_graph_layer_name) of the model; the
 * stages must cover every layer once, in order. Each step splits the batch into micro_batches
 * equal micro-batches (which must divide the batch); every stage runs its layers' forward and
 * backward work for each of them, GPipe (all forwards, then all backwards) or 1F1B (stage s
 * starts n_stages - s - 1 forwards, then alternates a forward and a backward, so it holds at
 * most n_stages - s micro-batches in flight). The micro-batches' gradients are averaged by rows
 * in micro-batch order, and each stage applies the optimizer to its own layers' parameters:
 * one micro-batch gives exactly the single-device step, several give it up to rounding.
 * The trainer is used as any other: po_trainer_input is the whole batch, po_trainer_params all
 * parameters, po_trainer_exec holds the step count, workers are stages (worker stats: rows of a
 * micro-batch, busy time, rows / batch), traces have one track per stage. PO_ERR_INVALID_ARG
 * with a message for bad stages or micro-batch counts. m must outlive the trainer. */
typedef struct po_pipeline_stage {
    int first_layer, last_layer; /* inclusive layer range */
    po_worker_spec worker;       /* cores it runs on (stages may share a core) */
} po_pipeline_stage;
typedef struct po_pipeline_opts {
    int n_stages;
    const po_pipeline_stage *stages; /* n_stages entries */
    int micro_batches;               /* >= 1, divides the batch */
    bool one_f_one_b;                /* 1F1B schedule; false: GPipe */
    /* Re-partition by measured speed (po_trainer_new_pipeline only; hybrid lanes ignore it):
     * when the stages' measured compute times drift more than 10% apart over a window of steps,
     * the layer ranges are re-solved over the same devices in the same order from each layer's
     * measured time, and the pipeline is rebuilt between two steps without restarting
     * (runtime/pp_rebalance.h). Parameters, optimizer state and the step count carry over, and
     * the numbers computed do not depend on the ranges (same kernels, same micro-batches, same
     * summation order); po_trainer_exec changes, po_trainer_params does not. */
    bool rebalance;
} po_pipeline_opts;
po_status po_trainer_new_pipeline(po_model *m, const po_optim_opts *o, uint64_t seed, const po_pipeline_opts *opts,
                                  po_trainer **out);

/* Hybrid: pipeline stages that are each data parallel over n_replicas devices. Replica r of every
 * stage forms lane r, a pipeline of its own over rows_r of each batch (shares[r] of it, rounded;
 * the rows of a lane must divide into the micro-batches); the lanes run at once, then their
 * gradients are averaged by rows (sum_r rows_r / batch x g_r: the whole batch's mean gradient)
 * and the optimizer runs once on the shared parameters. Workers are numbered in plan order,
 * stage-major: stage s replica r is worker s * n_replicas + r (stats, slowdown, trace tracks).
 * With one micro-batch per lane and even shares it computes what data parallel over the lanes
 * computes; in every case the single-device step up to rounding. m must outlive the trainer. */
typedef struct po_hybrid_opts {
    po_pipeline_opts pipeline;     /* layer ranges, micro-batches, schedule; stages[s].worker unused */
    int n_replicas;                /* devices per stage, >= 1 */
    const po_worker_spec *workers; /* [n_stages * n_replicas], stage-major */
    const double *shares;          /* [n_replicas]: lane shares of each batch; NULL = even */
} po_hybrid_opts;
po_status po_trainer_new_hybrid(po_model *m, const po_optim_opts *o, uint64_t seed, const po_hybrid_opts *opts,
                                po_trainer **out);

/* Operator split over n workers (CPU core groups sharing memory; n >= 1): po_trainer_new's one
 * graph, parameters and executor, run each step by a thread pinned to workers[0]'s cores, while
 * helper threads pinned to the other workers' cores take blocks of the large matrix products
 * (LINEAR and MATMUL nodes of at least 1 MFLOP per product call; not convolutions): C's rows, or
 * columns when rows are few, cut in proportion to the workers' shares (all 0 = even), each block
 * computed with the provider chosen for the whole product. Everything else runs on worker 0.
 * The single-device step up to the rounding of the blocked products. Worker stats: share and
 * rows (share x batch) of each split product, busy time of the last step (worker 0: the step
 * less its waits for helpers; a helper: its blocks); po_trainer_set_slowdown slows worker 0's
 * ops and blocks, or a helper's blocks (idling F - 1 times each block's duration); traces have
 * worker 0's ops on track 0 and each helper's blocks on its own. po_trainer_exec is the one
 * executor (its per-op profile leaves out split nodes). m must outlive the trainer. */
po_status po_trainer_new_opsplit(po_model *m, const po_optim_opts *o, uint64_t seed, const po_worker_spec *workers,
                                 int n, po_trainer **out);

/* The one-line switch to parallel training: po_trainer_new, but each step spread over the
 * devices `devices` names (hw.h syntax; NULL = "auto", every core of this machine), data
 * parallel with shares that follow measured speed. With one device it is po_trainer_new. The
 * rest of a training loop stays as it is. */
po_status po_trainer_new_parallel(po_model *m, const po_optim_opts *o, uint64_t seed, const char *devices,
                                  po_trainer **out);

/* The automatic plan, in one line: po_trainer_new, but the planner measures the devices and
 * picks how the step runs on them for the objective — one device, or data parallel over any
 * subset with shares by measured speed (pipeline, hybrid and operator-split plans run through
 * po_trainer_new_plan, but are not yet chosen automatically). The rest of a training
 * loop stays as it is. A single-device plan trains on the calling thread (not moved to that
 * device's cores: pin the thread yourself if that matters). Devices with the option
 * slowdown=F run emulated F times slower. */
typedef struct po_parallel_opts {
    const char *devices;     /* hw.h syntax; NULL = "auto", every core of this machine */
    po_objective objective;  /* TIME (default), ENERGY (joules per sample) or EDP */
    double max_slowdown_pct; /* with ENERGY: least energy within this % of the fastest; NaN: none */
    int calibrate;           /* po_planner_opts.calibrate (default 2) */
    bool rebalance;          /* re-split by measured speed while training (default true) */
    void (*progress)(const char *what, void *ctx); /* measurement progress; NULL: silence */
    void *progress_ctx;
} po_parallel_opts;
po_parallel_opts po_parallel_opts_default(void);
/* plan (may be NULL) receives the plan trained with, its prediction and its explanation;
 * po_plan_free it. */
po_status po_parallel_new(po_model *m, const po_optim_opts *o, uint64_t seed, const po_parallel_opts *opts,
                          po_plan *plan, po_trainer **out);

/* The workers of a plan on devs, in plan order (stage-major: stage 0's replicas, then stage
 * 1's, ...), each with its replica's share (a pipeline stage's: 1). Each replica's device is
 * looked up by id. PO_ERR_UNSUPPORTED for a hybrid plan whose stages differ in device count or
 * shares (po_trainer_new_hybrid runs lanes) and for families the runtime does not run,
 * PO_ERR_NOT_FOUND for a device not in devs. dev_index[i] (may be NULL) gets the index in devs
 * of worker i. */
po_status po_plan_workers(const po_plan *p, const po_device_list *devs, po_worker_spec *workers, int *dev_index,
                          int max_workers, int *n_workers);
/* A trainer running plan p on devs (po_plan_workers): po_trainer_new_ex for single and dp (with
 * rebalance), po_trainer_new_pipeline for pp (with rebalance), po_trainer_new_hybrid for hybrid,
 * po_trainer_new_opsplit for opsplit (replica 0 runs the graph). Devices with the option
 * slowdown=F run emulated F times slower. */
po_status po_trainer_new_plan(po_model *m, const po_optim_opts *o, uint64_t seed, const po_plan *p,
                              const po_device_list *devs, bool rebalance, po_trainer **out);

po_params *po_trainer_params(po_trainer *t);
/* Rows of each batch worker i takes (0 for a single-threaded trainer). */
int64_t po_trainer_worker_rows(const po_trainer *t, int i);

typedef struct po_worker_stats {
    int64_t rows;     /* rows of each batch it takes */
    double compute_s; /* its forward + backward time in the last step */
    double share;     /* rows / batch */
} po_worker_stats;
int po_trainer_n_workers(const po_trainer *t); /* 1 for a single-threaded trainer */
/* Statistics of worker i of a data-parallel trainer; PO_ERR_INVALID_ARG otherwise. */
po_status po_trainer_worker_stats(const po_trainer *t, int i, po_worker_stats *out);
/* How often the batch was re-split (po_trainer_opts.rebalance) or the pipeline re-partitioned
 * (po_pipeline_opts.rebalance). */
int64_t po_trainer_rebalances(const po_trainer *t);
/* Layers *first_layer..*last_layer (inclusive, po_graph_layer_name) that pipeline stage i runs
 * now; PO_ERR_INVALID_ARG for a trainer that is not a pipeline or no stage i. */
po_status po_trainer_worker_layers(const po_trainer *t, int i, int *first_layer, int *last_layer);
/* Emulated slowdown of worker i (po_exec_set_slowdown), from the next step on. */
po_status po_trainer_set_slowdown(po_trainer *t, int worker, float factor);
po_exec *po_trainer_exec(po_trainer *t);
/* Records every step's ops (and, data parallel, each worker's all-reduce and optimizer work) on
 * one track per worker of tr while tr records (paropt/trace.h); NULL stops. */
struct po_trace;
void po_trainer_set_trace(po_trainer *t, struct po_trace *tr);

/* Batch buffers to fill before a step, as tensors over the executor's input memory:
 * 0 is the samples (m->x), 1 the targets (m->y). Owned by the trainer. */
po_tensor *po_trainer_input(po_trainer *t, int which);

/* One training step on the current inputs; *loss gets the batch's mean loss before the update. */
po_status po_trainer_step(po_trainer *t, float *loss);

/* --- evaluation ------------------------------------------------------------------------- */

typedef struct po_eval_result {
    double loss;     /* mean cross-entropy over every target */
    double accuracy; /* fraction of targets whose largest logit is the target class */
    int64_t targets; /* targets counted: samples, or samples x positions for sequences */
} po_eval_result;

/* Evaluates the current parameters on every sample of d once, in file order, `batch` samples
 * at a time, with a forward-only copy of the model sharing the trainer's parameters (built on
 * first use and kept for the same batch). Loss and accuracy are accumulated in double over
 * exactly the dataset's samples. Training state is untouched. */
po_status po_trainer_evaluate(po_trainer *t, const po_dataset *d, int64_t batch, po_eval_result *out);

/* --- checkpoints ------------------------------------------------------------------------ */

/* Where a run stands: enough, with the parameters and optimizer state, to continue it
 * bit-identically (the data order is a pure function of data_seed and the epoch). */
typedef struct po_train_position {
    int64_t step;           /* optimizer steps taken */
    int64_t epoch;          /* epoch of the next batch (0-based) */
    int64_t batch_in_epoch; /* index of the next batch within that epoch */
    uint64_t data_seed;     /* seed of the shuffling */
} po_train_position;

/* Writes parameters (under their names), optimizer state (as "optim.<slot>.<name>") and the
 * position (as metadata), plus n_meta extra metadata strings, to a safetensors file
 * atomically: path holds either its previous content or the whole checkpoint. */
po_status po_checkpoint_save(const char *path, po_params *p, const po_train_position *pos, int n_meta,
                             const char *const *meta_keys, const char *const *meta_values);
/* Reads a checkpoint into p (same parameters and optimizer state layout) and *pos. The file is
 * fully validated first: on any error p and *pos are unchanged. */
po_status po_checkpoint_load(const char *path, po_params *p, po_train_position *pos);

#ifdef __cplusplus
}
#endif
#endif

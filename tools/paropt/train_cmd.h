/* paropt train: shared between the argument/settings side (cmd_train.c) and the training loop
 * (train_loop.c). */
#ifndef PO_CLI_TRAIN_CMD_H
#define PO_CLI_TRAIN_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "paropt/paropt.h"

typedef struct train_args {
    const char *model, *data, *init, *save, *out, *resume;
    int64_t steps;  /* total steps of the run (resolved from --epochs when given) */
    int64_t epochs; /* 0 when the run is measured in steps */
    int64_t warmup; /* first steps left out of the timing */
    int64_t batch, eval_batch;
    int64_t log_every, checkpoint_every;
    po_optim_opts optim;
    uint64_t seed;
    po_gemm_provider gemm;
    const char *devices;     /* device list (hw.h syntax); NULL: one worker, the calling thread */
    const char *plan;        /* auto, single, dp (the default with several devices) or a plan file */
    po_objective objective;  /* what --plan auto optimises */
    double max_slowdown;     /* --max-slowdown P with the energy objective; NaN: none */
    int64_t calibrate;       /* steps timed per device before planning (0: device figures only) */
    const char *shares;      /* comma-separated batch shares per device, or NULL for even */
    const char *slowdown_at; /* "STEP:DEVICE:F[,...]": change a device's emulated slowdown mid-run */
    bool json, profile;
    bool momentum_set;
    const char *seq_lens;   /* --seq-lens as given, or NULL (train_varlen.h) */
    int64_t seq_len[64];    /* its lengths, in order; step k trains on seq_len[k % n_seq_lens] */
    int n_seq_lens;         /* 0 without --seq-lens */
    const char *plan_cache; /* --plan-cache DIR: plans kept on disk too, or NULL */
    char *owned[8];         /* strings loaded from a run's settings.json */
} train_args;

/* Everything a run trains with, built by cmd_train.c. */
typedef struct train_setup {
    po_model *model;
    po_trainer *trainer;
    po_dataset *train, *test; /* test is NULL without a test split (synthetic data) */
    po_loader *loader;
    po_train_position start; /* where training begins (a checkpoint's position when resuming) */
    FILE *metrics;           /* run directory's metrics.jsonl, or NULL */
    int n_workers;           /* devices the steps run on */
    po_worker_spec workers[64];
    char device_id[64][32]; /* each worker's device, for messages and metrics */
    struct {
        int64_t step; /* applies before this step (1-based) runs */
        int worker;
        float factor;
    } slow_events[16]; /* --slowdown-at */
    int n_slow_events;
    po_device_list devs; /* --devices, parsed */
    bool planned;        /* plan holds what the run trains with and its prediction */
    po_plan plan;
    po_planner *planner;         /* the measured devices and calibrated cost model */
    const po_workload *workload; /* the step the plan was made for (names its layers) */
    po_trace *trace;             /* the run directory's trace while training */
    po_meter *meter;             /* energy of the timed steps */
    po_tfevents *events;         /* the run directory's TensorBoard scalars, or NULL */
    /* Plans by graph (with --devices): train_plan_resolve looks a searched plan up here first. */
    po_plan_cache *plan_cache;
    int64_t plan_hits, plan_misses; /* plans found (or graphs met again), plans made */
    bool plan_quiet;                /* train_plan_resolve prints no plan (later --seq-lens graphs) */
    struct train_varlen *varlen;    /* --seq-lens: the graphs; s->trainer and the plan fields
                                     * borrow the current one's (train_varlen.h); else NULL */
    char varlen_spec[640];          /* --seq-lens: the model spec built */
} train_setup;

typedef struct train_result {
    float final_loss;
    double ms_per_step, samples_per_s;
    bool evaluated;
    po_eval_result eval;
    int64_t timed_steps;    /* steps in ms_per_step (after --warmup) */
    double busy[64];        /* per worker: compute time / wall time over the timed steps */
    double energy_j;        /* over the timed steps; NaN when not metered */
    char energy_source[64]; /* po_meter_source */
} train_result;

/* --plan with --devices (train_plan.c): plans (auto), builds the named family's plan, or loads
 * a plan file; predicts its step on this machine's measured devices; prints it; and replaces
 * s->workers with the plan's devices and shares. s->model must be built. Exit code. */
int train_plan_resolve(const train_args *a, train_setup *s);
/* Whether --plan names a file rather than a family. */
bool train_plan_is_file(const char *plan);
/* A run on one worker trains on the calling thread: keeps it on that worker's cores. */
void train_plan_pin(const train_setup *s);

/* Runs steps start.step .. args->steps; returns a CLI exit code. */
int train_loop(const train_args *args, train_setup *s, train_result *r);

#endif

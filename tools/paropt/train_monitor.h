/* What a training run records besides its loss and speed: each device's busy time, energy with
 * its source, memory, a Chrome trace of a few steps (trace.json) and TensorBoard scalars. The
 * training loop (train_loop.c) calls these at fixed points of each step. */
#ifndef PO_CLI_TRAIN_MONITOR_H
#define PO_CLI_TRAIN_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "train_cmd.h"

typedef struct train_monitor {
    double compute_s[64];  /* per worker: forward + backward time over the timed steps */
    double step_s;         /* the calling thread's po_trainer_step time over the timed steps */
    int traced;            /* steps recorded in the trace so far */
    double last_j, last_t; /* the energy reading at the previous logged step */
} train_monitor;

/* Opens the run directory's trace (with --out) and attaches it to the trainer. */
void monitor_begin(const train_args *a, train_setup *s, train_monitor *m);
/* Before the first timed step: starts the energy meter over the workers' cores. */
void monitor_start_energy(train_setup *s);
/* Before step `step` (1-based) runs: whether the trace records it (the first timed step, logged
 * steps, at most 8 in all, and the last step); starts recording if so. */
bool monitor_trace_step(const train_args *a, train_setup *s, train_monitor *m, int64_t step);
/* After a traced step: one-device runs get a "step" slice enclosing the ops; stops recording. */
void monitor_trace_done(train_setup *s, double t0, double t1);
/* After a timed step that took step_s in po_trainer_step. */
void monitor_timed_step(train_setup *s, train_monitor *m, double step_s);
/* A logged step: adds rss_bytes and, when metered, power_w, energy_j and energy_source to the
 * metrics record, and writes the TensorBoard scalars (energy tags name their source). */
void monitor_log_step(train_setup *s, train_monitor *m, json_t *record, int64_t step, float loss, double samples_per_s,
                      double step_ms);
/* An evaluation's TensorBoard scalars. */
void monitor_log_eval(train_setup *s, int64_t step, const po_eval_result *e);
/* At the end: energy and busy fractions into r, trace.json written atomically. Exit code. */
int monitor_finish(const train_args *a, train_setup *s, train_monitor *m, double train_s, train_result *r);

#endif

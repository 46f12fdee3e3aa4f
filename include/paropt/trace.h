/* Execution traces: what each device did when, written as a Chrome trace (trace.json) that
 * Perfetto and chrome://tracing open.
 *
 *     po_trace *tr;
 *     po_trace_new(2, &tr);                    // two tracks: one per device
 *     po_trace_set_track_name(tr, 0, "cpu:0");
 *     po_trainer_set_trace(trainer, tr);       // executors record into their worker's track
 *     po_trace_begin_step(tr, 7);              // record step 7 ...
 *     po_trainer_step(...);
 *     po_trace_end_step(tr);                   // ... and stop
 *     po_trace_write(tr, "run/trace.json");     // atomically
 *
 * Recording is off outside begin/end, so a trace holds only the steps asked for (every op of
 * every step would grow without bound). Each track is written by one thread at a time (its
 * worker); begin/end/write run on the controlling thread between steps. Times are the
 * monotonic clock, written in microseconds from the trace's creation. */
#ifndef PAROPT_TRACE_H
#define PAROPT_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_trace po_trace;

po_status po_trace_new(int n_tracks, po_trace **out);
void po_trace_free(po_trace *tr);
/* The track's name in viewers (a device id); copied. */
po_status po_trace_set_track_name(po_trace *tr, int track, const char *name);

/* Starts recording slices, labelled with `step`; po_trace_end_step stops. */
void po_trace_begin_step(po_trace *tr, int64_t step);
void po_trace_end_step(po_trace *tr);
bool po_trace_recording(const po_trace *tr);

/* One slice on a track: name and category must outlive the trace (op names, string literals).
 * t0 <= t1 are monotonic seconds (CLOCK_MONOTONIC). Ignored when not recording or out of
 * memory (a trace is an aid: it never fails a training step). */
void po_trace_slice(po_trace *tr, int track, const char *name, const char *category, double t0, double t1);
/* A transfer between tracks drawn as a flow arrow (Chrome's "s"/"f" events) from track a at t0
 * to track b at t1. */
void po_trace_flow(po_trace *tr, int from_track, int to_track, const char *name, double t0, double t1);

int64_t po_trace_n_slices(const po_trace *tr);
/* The monotonic clock in seconds, the time base slices are given in. */
double po_trace_now(void);

/* Writes {"traceEvents": [...], "displayTimeUnit": "ms"} atomically (temporary file, fsync,
 * rename): one thread-name record per track, one complete ("X") event per slice with args.step. */
po_status po_trace_write(const po_trace *tr, const char *path);

#ifdef __cplusplus
}
#endif

#endif

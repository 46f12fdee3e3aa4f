/* What the run report reads from a run directory: settings.json, metrics.jsonl, and the
 * optional plan.json, summary.json and trace.json. A missing optional file is not an error
 * (the report says "not recorded"); a malformed one is described in `*_error` and treated as
 * missing, so one bad file never costs the rest of the report. */
#ifndef PO_REPORT_RUN_DATA_H
#define PO_REPORT_RUN_DATA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paropt/status.h"

typedef struct {
    double *x, *y;
    size_t n, cap;
} rd_series;

typedef struct {
    char *name;
    rd_series s;
} rd_named_series;

/* Series keyed by a name (a device, an energy source), in order of first appearance. */
typedef struct {
    rd_named_series *v;
    int n, cap;
} rd_series_set;

typedef struct {
    int64_t pid, tid;
    const char *name; /* from the thread_name metadata, or NULL (borrowed from the trace JSON) */
} rd_track;

typedef struct {
    int track;        /* index into rd_trace.tracks */
    double ts, dur;   /* microseconds */
    const char *name; /* borrowed from the trace JSON */
    const char *cat;  /* NULL when absent */
    int64_t step;     /* args.step, or INT64_MIN when absent */
} rd_slice;

typedef struct {
    json_t *root;
    rd_track *tracks;
    int n_tracks;
    rd_slice *slices; /* every complete ("X") event, sorted by step, track, then start */
    size_t n_slices;
} rd_trace;

typedef struct {
    json_t *settings;                 /* always present after rd_load */
    json_t *plan, *summary;           /* NULL when absent or unreadable */
    char *plan_error, *summary_error; /* why the file could not be read, or NULL */
    bool has_trace;
    rd_trace trace;
    char *trace_error;
    bool has_metrics;    /* metrics.jsonl exists */
    size_t bad_lines;    /* lines of metrics.jsonl that were not JSON objects (e.g. a cut last line) */
    size_t step_records; /* step records read */
    rd_series loss, samples_per_s, step_ms, test_loss, test_accuracy;
    rd_series_set busy;   /* per device: busy fraction (0..1) by step */
    rd_series_set power;  /* per energy source: watts by step */
    rd_series_set energy; /* per energy source: joules by step */
    double *rebalance_steps;
    size_t n_rebalances, rebalance_cap;
    bool repartitions; /* the rebalances moved a pipeline's layer ranges (workers with "layers") */
} rd_run;

/* Reads the run directory. Errors: PO_ERR_NOT_FOUND (no such directory), PO_ERR_INVALID_ARG
 * (not a directory, or no settings.json: "DIR: not a run directory (no settings.json)"),
 * PO_ERR_FORMAT (settings.json malformed), PO_ERR_IO, PO_ERR_NO_MEMORY. Free with po__run_free
 * whatever the result. */
po_status po__run_load(const char *dir, rd_run *r);
void po__run_free(rd_run *r);

/* A number member of o, or NaN when o is NULL or the member is absent or not a number. */
double po__json_num(const json_t *o, const char *key);
/* A string member of o, or NULL. */
const char *po__json_str(const json_t *o, const char *key);

#endif

/* The run report: one self-contained HTML page describing a training run directory.
 *
 *     po_report_write_html("runs/r1", NULL);   // writes runs/r1/report.html
 *
 * The page has inline CSS and inline SVG charts, no script and no external resource, so it
 * opens offline in any browser. Its sections (each <section id=...>): plan (the planner's plan,
 * its explanation and alternatives, from plan.json), gantt (one training step per device, from
 * trace.json), utilization (busy fraction per device over the run, from metrics.jsonl),
 * power (power and energy over the run, each figure with its source: measured:rapl,
 * measured:nvml or estimated:model), loss, accuracy, and prediction (predicted against measured
 * step time, from summary.json and plan.json). What the run did not record is said in its
 * section ("not recorded"); a malformed optional file is described there too, and the rest of
 * the report is still written. */
#ifndef PAROPT_REPORT_H
#define PAROPT_REPORT_H

#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the report of the run directory run_dir to out_path (NULL: run_dir/report.html),
 * atomically: a temporary file next to it, fsynced, then renamed, so an existing report is
 * replaced whole or not at all. Reads settings.json (required: it marks a run directory),
 * metrics.jsonl, and plan.json, summary.json and trace.json when present.
 * Errors (one line in po_last_error()): PO_ERR_NOT_FOUND "DIR: cannot open: ..." (no such
 * directory); PO_ERR_INVALID_ARG "DIR: not a directory" or "DIR: not a run directory (no
 * settings.json)"; PO_ERR_FORMAT for a malformed settings.json (with line and column);
 * PO_ERR_IO for unreadable files or a failed write; PO_ERR_NO_MEMORY. */
po_status po_report_write_html(const char *run_dir, const char *out_path);

#ifdef __cplusplus
}
#endif
#endif

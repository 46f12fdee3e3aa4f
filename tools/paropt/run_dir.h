/* A training run's directory (--out DIR):
 *   settings.json          every setting of the run, written once at its start (--resume reads it)
 *   metrics.jsonl          one JSON object per logged step and per evaluation, each with "step"
 *   checkpoints/step-N.safetensors   the newest two checkpoints
 *   model.safetensors      the final parameters
 *   plan.json              the plan trained with (with --devices), as paropt plan --out writes it
 *   trace.json             a Chrome trace of a few steps: one track per device (Perfetto opens it)
 *   summary.json           the summary paropt train --json prints, written at the end
 * Every file is replaced atomically or appended line by line, so a kill at any moment leaves
 * a directory a later --resume can continue from. */
#ifndef PO_CLI_RUN_DIR_H
#define PO_CLI_RUN_DIR_H

#include <stdint.h>
#include <stdio.h>

#include "paropt/train.h"

/* Makes dir (and its parent chain's last component) for a new run and writes settings_json.
 * Refuses a directory that already holds a run (settings.json present): pass --resume instead,
 * so an existing run is never overwritten. */
po_status run_dir_create(const char *dir, const char *settings_json);
/* The settings.json text of an existing run; free() it. */
po_status run_dir_read_settings(const char *dir, char **json);

/* Saves a checkpoint for pos->step and keeps the newest two. */
po_status run_dir_checkpoint(const char *dir, po_params *p, const po_train_position *pos, const char *model_spec);
/* Loads the newest readable checkpoint into p and *pos; falls back to the previous one if the
 * newest cannot be read. PO_ERR_NOT_FOUND when dir has none. */
po_status run_dir_resume(const char *dir, po_params *p, po_train_position *pos, char *path_used, size_t path_size);

/* Opens metrics.jsonl for appending, first dropping every record whose step is after
 * keep_until_step (records a killed run logged past its last checkpoint) and any partial last
 * line; keep_until_step < 0 keeps everything. */
po_status run_dir_open_metrics(const char *dir, int64_t keep_until_step, FILE **out);
/* Writes DIR/name with text, atomically (summary.json and the like). */
po_status run_dir_write(const char *dir, const char *name, const char *text);

/* Appends one JSON object line and flushes it. */
void run_dir_log(FILE *metrics, const char *json_object);

#endif

/* paropt train --seq-lens L1,L2,...: a training loop whose graph changes between steps. Step k
 * trains on sequences of length L[k % n]; each distinct length is its own graph, with its own
 * trainer (and, with --devices, its own plan), built the first time the loop meets that length
 * and kept. The model is built with max_seq = the longest length (or the spec's max_seq), so
 * every length's graph has the same parameters; batches are the data's windows (at the longest
 * length) cropped to the step's first L tokens, inputs and targets alike.
 *
 * Counting (the summary's plan_cache): a miss is a graph whose plan had to be made (searched,
 * or built for a named family or a plan file; without --devices, the graph's trainer built); a
 * hit is a plan found in the cache (--plan-cache DIR) the first time a graph is met, or a
 * training step after the first whose length differs from the previous step's and whose graph
 * was met before (its kept trainer runs the plan made then). Evaluation, which runs at the
 * longest length, meets graphs but counts no hit.
 *
 * Device figures come from the hardware cache (measured once per machine); calibration (each
 * op of the step timed on each device) and the contention measurement are per graph, as the
 * ops' shapes differ from length to length: po_planner_new runs for each new graph. */
#ifndef PO_CLI_TRAIN_VARLEN_H
#define PO_CLI_TRAIN_VARLEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "train_cmd.h"

typedef struct train_varlen train_varlen;

/* Parses "L1,L2,..." (positive integers, at most 64) into a->seq_len / a->n_seq_lens. Prints the
 * error and returns false on bad input. */
bool varlen_parse(const char *text, train_args *a);

/* Before the model is built: checks that the model takes sequences (has a seq key) and that
 * its max_seq, if the spec gives one, holds the longest length; writes into spec (size bytes)
 * the model spec the run builds: the user's with seq = the longest length and max_seq set.
 * Exit code. */
int varlen_model_spec(const train_args *a, char *spec, size_t size);

/* After the data is opened: every length must fit the data's sequences, and the longest must be
 * their length (evaluation runs at it). Exit code. */
int varlen_check_data(const train_args *a, const po_dataset *train);

/* Builds the first length's graph and trainer (planned with --devices) and makes it
 * s->trainer. s->model (the longest length's model), s->loader and, with devices, s->devs and
 * the workers resolve_devices set must be ready. Exit code. */
int varlen_new(const train_args *a, train_setup *s);

/* Before step `step` (0-based) runs: the trainer of its length becomes s->trainer (built the
 * first time; parameters, optimizer state and step count carried over). Exit code. */
int varlen_step(const train_args *a, train_setup *s, int64_t step);
/* The next batch of the loader, cropped to the current trainer's length, into its inputs. */
po_status varlen_next_batch(train_setup *s);
/* The longest length's trainer becomes s->trainer (evaluation runs at it). Exit code. */
int varlen_for_eval(const train_args *a, train_setup *s);
/* Length of the current trainer's sequences. */
int64_t varlen_current(const train_setup *s);

/* "seq_lens" and "graphs" (distinct graphs trained) for the summary. */
void varlen_summary(const train_args *a, const train_setup *s, json_t *o);

/* Frees every graph, its trainer and plan, and clears what s borrowed from them (trainer,
 * plan, planner, workload). */
void varlen_free(train_setup *s);

#endif

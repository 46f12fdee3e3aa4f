/* Re-partitioning a pipeline by measured speed (po_pipeline_opts.rebalance; issue 7).
 *
 * A po_ppr watches one pipeline (runtime/pp.h) of a trainer. After every successful step,
 * po__ppr_after_step:
 *   measures  each stage's compute time of the step (po__pp_stats: its forward, backward and
 *             gradient accumulation, emulated slowness included) and, from per-node profiling of
 *             the stages' executors (a clock read per node), each layer's time on the stage that
 *             ran it;
 *   settles   by ignoring the first step after the pipeline was (re)built (page faults);
 *   judges    over a window of `patience` steps (4 at first): when the slowest stage's median
 *             compute time (runtime/balance.h) exceeds the fastest's by more than 10%, it re-solves;
 *   estimates each layer's time on each stage's device from these measurements and those of
 *             earlier windows (po__ppr_remember, po__ppr_estimate) and solves for the
 *             contiguous layer ranges over the same devices, in the same order, that minimise
 *             the slowest stage (po__ppr_solve, exact);
 *   moves     only when that predicted slowest stage is more than 5% below the measured one
 *             (the rest is noise, and a rebuild costs a step or two);
 *   rebuilds  a pipeline with the new ranges that adopts the old one's po_params (the same
 *             values, gradients and optimizer moments: not copied, not touched), takes over its
 *             step count, emulated slowdowns, trace and tracks (po__pp_inherit), and replaces
 *             the old one, which is freed. *pp changes; the parameters object does not.
 * A move back to the ranges before the previous move is noise, not a change of speed: it
 * doubles the window (up to 64 steps); a move elsewhere halves it again (down to 4).
 * A rebuild that fails (a cut the pipeline refuses, memory) leaves the old pipeline running and
 * turns re-partitioning off; the step itself has succeeded.
 * Only the stages' ranges change, never the micro-batches, the schedule or the summation
 * order: a re-partitioned pipeline computes the same numbers as the old one would have. */
#ifndef PO_RUNTIME_PP_REBALANCE_H
#define PO_RUNTIME_PP_REBALANCE_H

#include <stdbool.h>

#include "runtime/pp.h"

typedef struct po_ppr po_ppr;

/* Watches pp, built from (spec, batch, o, opts) by po__pp_new; turns its profiling on. Copies
 * everything it keeps (pp must stay the one po__ppr_after_step is given). */
po_status po__ppr_new(const char *spec, int64_t batch, const po_optim_opts *o, const po_pipeline_opts *opts, po_pp *pp,
                      po_ppr **out);
void po__ppr_free(po_ppr *r);
/* After a successful step of *pp: measures, and may replace *pp by a re-partitioned pipeline. */
po_status po__ppr_after_step(po_ppr *r, po_pp **pp);
int64_t po__ppr_rebalances(const po_ppr *r); /* re-partitions so far */

/* --- the pure parts, for tests --------------------------------------------------------- */

/* The contiguous partition of n_layers layers into k non-empty ranges, in order, that minimises
 * the largest range cost, where range s costs sum of cost[s * n_layers + l] over its layers
 * (stage s's device running layer l). Writes the ranges' last layers to last[k] and returns
 * their largest cost; on ties, the first solution in lexicographic order of last[]. Exact
 * (dynamic programming, O(k n^2)); needs 1 <= k <= n_layers. */
double po__ppr_solve(int k, int n_layers, const double *cost, int *last);

/* What the pipeline measured over a window, per step. */
typedef struct po_ppr_measure {
    int k, n_layers;
    const int *last;        /* [k] the current ranges' last layers */
    const double *stage_s;  /* [k] each stage's compute seconds over the window (median) */
    const double *layer_s;  /* [n_layers] each layer's mean profiled seconds on its stage (0: none) */
    const double *ref_cost; /* [n_layers] device-independent cost of each layer (> 0), any unit */
    /* [k * n_layers] or NULL: layer l's seconds on stage s's device as last measured there,
     * carried to now (po__ppr_remember); 0 where unknown. */
    const double *known;
} po_ppr_measure;

/* Layer l's time on its own stage is the stage's measured time shared out by the layers'
 * profiled times (by ref_cost where none were profiled): it includes what the stage spends
 * besides kernels (emulated slowness, tensor copies, gradient accumulation).
 * po__ppr_remember brings the table `known` (m->known's storage) up to date with a window:
 * the current layers' own times go in; a device's entries for layers it no longer runs are
 * scaled by how its time on the layers it ran then and runs now has changed (a device that
 * slowed down slowed down for every layer), or forgotten when it runs none of them now.
 * po__ppr_estimate gives every layer's seconds on every stage's device, cost[s * n_layers + l]:
 * its own time on its own stage; where it ran before, that time (from known); elsewhere its own
 * time scaled by the ratio of the two devices' speeds, measured on the layers both have run
 * (known), or failing that by each device's measured time over its layers' ref_cost. */
void po__ppr_remember(const po_ppr_measure *m, double *known);
void po__ppr_estimate(const po_ppr_measure *m, double *cost);

/* The move the rule above makes from measurements: true, with the new last layers in last_out[k]
 * and the predicted slowest stage in *predicted_s, when the stages are more than 10% apart and
 * the best partition's slowest stage is predicted more than 5% below the measured slowest. */
bool po__ppr_propose(const po_ppr_measure *m, int *last_out, double *predicted_s);

#endif

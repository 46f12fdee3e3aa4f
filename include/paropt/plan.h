/* Planning a training step across devices: what a step costs where, which split is best, and why.
 *
 *     po_workload *w;    po_workload_from_model("tiny_gpt", 8, &adam, &w);  // the step's work
 *     po_cluster *c;     po_cluster_load("cluster.json", &c);               // or po_cluster_from_profile
 *     po_cost_model *cm; po_cost_model_new(c, &cm);                          // + measurements, if any
 *     po_plan_opts o = po_plan_opts_default();
 *     po_plan plan;      po_plan_search(w, cm, &o, &plan);                   // plan.explanation says why
 *     char *json = po_plan_to_json(&plan);  ...  po_plan_free(&plan);
 *
 * The pieces:
 *   workload    one training step (forward, backward, optimizer) reduced to what planning needs:
 *               per node its op, layer, phase and work, affine in the batch (the graph is built at
 *               two batch sizes, so the work of any share of the batch is exact for the reference
 *               models); per layer its parameter, gradient and optimizer-state bytes, the
 *               activations kept from forward for backward (the "stash"), and the bytes crossing
 *               each layer boundary.
 *   cluster     the devices (figures: GEMM efficiency curve, memory bandwidth, element-wise rate,
 *               dispatch overhead, memory, active and idle power) and the links between them.
 *               From this machine's measured profile, from a JSON file, or built by hand.
 *   cost model  StarPU-like: a node's time on a device is the mean of measured times with the same
 *               (op, shapes, device) key when there are any (scaled by the roofline's ratio when
 *               the batch differs), else a roofline: dispatch overhead + max(FLOPs / attainable
 *               FLOP/s, bytes / bandwidth), attainable FLOP/s for GEMM-like ops interpolated on the
 *               device's GEMM curve at the product's size, for the rest 2 x its element-wise rate;
 *               bandwidth the cache rate (8 bytes x element-wise rate) for working sets under the
 *               device's cache size, else its memory bandwidth. Transfers cost latency + bytes /
 *               bandwidth; a ring all-reduce of n devices 2(n-1)/n x bytes / (slowest ring link)
 *               + 2(n-1) x (largest ring latency). Energy = active power x busy time + idle power x
 *               idle time, per device the plan uses.
 *   simulator   a discrete-event simulation of one step of a plan: compute per layer and phase
 *               (the sum of its nodes' times: the ops of one layer run back to back on one device)
 *               per micro-batch and replica, per node for operator split; transfers on directed
 *               links; all-reduce per layer as soon as its gradients are final (overlapping the
 *               rest of the backward pass on GPUs; on CPU cores the workers reduce, so it takes
 *               their time); the GPipe or 1F1B order; the optimizer. It gives the step time, each
 *               device's busy fraction and peak memory, and energy.
 *   search      enumerates strategy families over device subsets (pruned: see po_plan_search),
 *               scores each candidate with the simulator and keeps the top K by the objective.
 *
 * Units: seconds (ms where a name says so), bytes, FLOP, GFLOP/s = 1e9 FLOP/s, GB/s = 1e9 bytes/s,
 * watts, joules. Every energy figure carries its source; predictions are "estimated:model". */
#ifndef PAROPT_PLAN_H
#define PAROPT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paropt/graph.h"
#include "paropt/hw.h"
#include "paropt/optim.h"
#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- workload ------------------------------------------------------------------------------- */

typedef struct po_workload po_workload;

/* The training step of a reference model (po_model_build spec) at `batch` (> 0; 0 = the spec's)
 * with optimizer o (NULL: Adam): the graph is built at batch and at a second batch (batch / 2,
 * or 2 when batch is 1) and every figure is the line through the two. Free with
 * po_workload_free (NULL is fine). */
/* The model's whole training step as one graph: po_model_build, po_graph_backward and
 * po_graph_add_optimizer (o), at `batch` rows; graph errors carry the graph's message. */
struct po_model;
po_status po_model_build_step(const char *spec, int64_t batch, const po_optim_opts *o, struct po_model **out);
po_status po_workload_from_model(const char *spec, int64_t batch, const po_optim_opts *o, po_workload **out);
/* The same from two full training graphs (forward, po_graph_backward, po_graph_add_optimizer)
 * of one model at two different batch sizes: they must have the same nodes, ops and layers
 * (PO_ERR_INVALID_ARG naming the first difference otherwise). The graphs are not kept. */
po_status po_workload_from_graphs(const po_graph *g, int64_t batch, const po_graph *g2, int64_t batch2,
                                  po_workload **out);
void po_workload_free(po_workload *w);

int64_t po_workload_batch(const po_workload *w);
const char *po_workload_name(const po_workload *w); /* the resolved model spec, or "graph" */
int po_workload_n_layers(const po_workload *w);
const char *po_workload_layer_name(const po_workload *w, int layer); /* NULL out of range */
/* 64-bit signature of the graph at the planned batch: every node's op, dtype and shapes. */
uint64_t po_workload_signature(const po_workload *w);

/* Figures of one layer for `rows` samples (any positive real: a share of the batch). */
typedef struct po_workload_layer {
    double flops_forward, flops_backward, flops_optimizer;
    double param_bytes, grad_bytes, optim_state_bytes; /* as po_layer_info: padded, independent of rows */
    double stash_bytes;    /* arena bytes its forward nodes write and a backward node reads: held from
                            * the forward to the backward pass of every micro-batch in flight */
    double boundary_bytes; /* bytes of the activations crossing from this layer to the later ones
                            * (what a pipeline stage ending here sends on; the gradient comes back
                            * the same size); 0 for the last layer */
} po_workload_layer;
po_status po_workload_layer_info(const po_workload *w, int layer, double rows, po_workload_layer *out);
/* Memory of one device holding layers first..last for micro-batches of `rows` samples with
 * `in_flight` of them between their forward and backward pass: parameters, gradients and optimizer
 * state of those layers + in_flight x their stash + the step's working buffers (arena beyond the
 * stash, scratch, input buffers). With recompute, only each micro-batch's stage input is kept in
 * flight and one micro-batch's stash is rebuilt at a time. For all layers, rows = the batch and
 * one micro-batch this equals po_analysis' peak_memory_bytes. */
double po_workload_memory_bytes(const po_workload *w, int first, int last, double rows, int in_flight, bool recompute);

/* Key of a node's measured times: its op, dtype and the shapes of its inputs and output. */
uint64_t po_op_key(const po_node *n);

/* --- cluster -------------------------------------------------------------------------------- */

typedef struct po_cluster_device {
    po_device dev;         /* id (unique in the cluster), kind, name, memory_bytes, cores for CPU devices */
    po_device_perf perf;   /* gemm curve (n_gemm 0: flat at gemm_gflops), mem_bandwidth_gbs,
                            * elementwise_gelems, dispatch_us, gemm_call_us (NaN: a default by kind,
                            * 0.05 / 0.2 us for CPUs, 5 / 5 us for GPUs: a kernel launch) */
    double cache_bytes;    /* working sets up to this size move at the cache rate (0: none) */
    double active_w;       /* power while computing, watts (NaN: unknown, energy then unknown) */
    double idle_w;         /* power while waiting */
    int memory_group;      /* devices with the same group >= 0 share memory_bytes (the cores of one
                            * machine); -1: memory of its own */
    char power_source[48]; /* where active_w/idle_w come from: "catalog:<id>", "cluster file" */
} po_cluster_device;

typedef struct po_link {
    double bandwidth_gbs; /* GB/s one way */
    double latency_us;    /* one way */
    /* Devices sharing memory: ns per byte the second device pays beyond its own time to
     * rewrite data the first has read (po_link_perf's reclaim_ns_per_byte); 0: none. */
    double reclaim_ns_per_byte;
    /* Devices whose threads hand a step to each other: one way of a wake-up of a blocked
     * thread (po_link_perf's wake_us); 0: none. */
    double wake_us;
} po_link;

typedef struct po_cluster po_cluster;

/* An empty cluster; the default link is 10 GB/s, 10 us until set. */
po_status po_cluster_new(po_cluster **out);
void po_cluster_free(po_cluster *c);
/* Adds a copy of d. PO_ERR_INVALID_ARG for a repeated or empty id, or figures that are not
 * positive (GEMM GFLOP/s, bandwidth, element-wise rate, memory). NaN overheads get defaults. */
po_status po_cluster_add(po_cluster *c, const po_cluster_device *d);
/* Adds a device named id with the catalog's figures for `type` (po_catalog_find: an entry id,
 * name, or a name as CUDA reports it); its power is the entry's TDP and idle power. */
po_status po_cluster_add_catalog(po_cluster *c, const char *id, const char *type);
/* The link between a and b, both directions. */
po_status po_cluster_set_link(po_cluster *c, const char *a, const char *b, po_link l);
/* The link from a to b only. */
po_status po_cluster_set_link_directed(po_cluster *c, const char *from, const char *to, po_link l);
/* The link of every pair without one of its own. */
po_status po_cluster_set_default_link(po_cluster *c, po_link l);

int po_cluster_size(const po_cluster *c);
const po_cluster_device *po_cluster_device_at(const po_cluster *c, int i); /* NULL out of range */
int po_cluster_find(const po_cluster *c, const char *id);                  /* index, or -1 */
po_link po_cluster_link(const po_cluster *c, int from, int to);            /* from != to */
/* Signature of every device's figures and every link: a planning cache key part. */
uint64_t po_cluster_signature(const po_cluster *c);

/* This machine's devices as measured (po_hw_profile_get): CPU devices get the catalog's per-core
 * power for this CPU times their cores, the L2 caches of their cores and one shared memory
 * group; GPUs the catalog entry their name matches (power NaN when none does). */
po_status po_cluster_from_profile(const po_machine *m, const po_hw_profile *p, po_cluster **out);

/* A cluster file (JSON):
 *   {"devices": [{"id": "g0", "type": "A100-SXM4-80GB"},                  a catalog entry
 *                {"id": "c0", "kind": "cpu", "peak_gflops": 80, "mem_bandwidth_gbs": 15,
 *                 "memory_gb": 16, "tdp_w": 5, "idle_w": 1.5},             or figures
 *                {"id": "n", "type": "h100-sxm", "count": 4}, ...],         n0..n3
 *    "links": [{"between": ["g0", "g1"], "bandwidth_gbs": 300, "latency_us": 2}, ...],
 *    "default_link": {"bandwidth_gbs": 25, "latency_us": 5}}
 * A device takes either "type" or the five figures peak_gflops, mem_bandwidth_gbs, memory_gb
 * (1e9 bytes), tdp_w, idle_w; with "type" any of them overrides the entry. Optional: "kind"
 * ("cuda" default, "cpu"), "name", "elementwise_gelems", "dispatch_us", "cache_mb",
 * "memory_group", "count" (ids get 0..count-1 appended). A link's "between" may name "*" for
 * every device; a link may add "reclaim_ns_per_byte" and "wake_us" (po_link; default 0).
 * Errors name origin, line and column: "c.json:4:17: devices[1].type: ...". */
po_status po_cluster_parse(const char *text, const char *origin, po_cluster **out);
po_status po_cluster_load(const char *path, po_cluster **out);

/* --- cost model ----------------------------------------------------------------------------- */

typedef struct po_cost_model po_cost_model;

/* A cost model for cluster c (which must outlive it), with an empty history. */
po_status po_cost_model_new(const po_cluster *c, po_cost_model **out);
void po_cost_model_free(po_cost_model *cm);
const po_cluster *po_cost_model_cluster(const po_cost_model *cm);

/* Adds one measured time of a node with key (po_op_key) on device (an id of the cluster):
 * synthetic figures are as good as real ones. The history keeps count and mean per key. */
po_status po_cost_model_record_key(po_cost_model *cm, uint64_t key, const char *device, double seconds);
po_status po_cost_model_record(po_cost_model *cm, const po_node *n, const char *device, double seconds);
/* Mean measured seconds of a key on a device, or PO_ERR_NOT_FOUND ("unknown": calibrate). */
po_status po_cost_model_lookup(const po_cost_model *cm, uint64_t key, const char *device, double *seconds, int *count);
/* Measures every node of g (a full training graph; parameters are allocated and initialised here)
 * on real device d (machine m; d->id must be in the cluster): `runs` steps (after one warm-up; more,
 * up to 25, until 0.4 s are timed) on a thread pinned to d's cores with the executor's per-node
 * clock, each node's median over the runs recorded.
 * CPU devices only, as po_hw_time_node. A device with the option slowdown=F (an emulated slow
 * device, po_exec_set_slowdown) is timed while emulating it, so its slowness is measured. */
po_status po_cost_model_calibrate(po_cost_model *cm, const po_machine *m, const po_device *d, const po_graph *g,
                                  int runs);
/* po_cost_model_calibrate on several devices at once: they take turns, one step each, round
 * after round, so a burst of load from elsewhere on the machine falls on every device's runs
 * alike instead of making one of two alike devices look slow. Each device runs as many steps as
 * the fastest needs (runs or more, up to 25, until it has 0.4 s timed). */
po_status po_cost_model_calibrate_many(po_cost_model *cm, const po_machine *m, const po_device *devs, int n_devs,
                                       const po_graph *g, int runs);

/* Shared-memory contention: how much slower device `device` computes while the other devices
 * of its memory group compute too (they share caches and memory bandwidth), >= 1; measured by
 * po_planner's calibration. The simulator applies it to a plan's compute on a device when the
 * plan keeps more than one device of that group busy. Default 1. */
po_status po_cost_model_set_contention(po_cost_model *cm, const char *device, double factor);
double po_cost_model_contention(const po_cost_model *cm, int device); /* cluster index */

typedef enum { PO_BOUND_COMPUTE, PO_BOUND_MEMORY, PO_BOUND_OVERHEAD } po_bound;
const char *po_bound_name(po_bound b); /* "compute", "memory", "overhead" */

/* A node's predicted time on device `device` (cluster index). */
typedef struct po_op_estimate {
    double seconds;
    bool measured;  /* from the history (else the roofline) */
    po_bound bound; /* which roofline term is largest: FLOP/s, bytes, or dispatch */
} po_op_estimate;
po_status po_cost_model_node_time(const po_cost_model *cm, const po_node *n, int device, po_op_estimate *out);
/* Roofline time of `flops` and `bytes` as one call of a GEMM-like op (gemm true: the curve at
 * that size) or an element-wise one, overhead included. */
double po_cost_model_roofline(const po_cost_model *cm, int device, double flops, double bytes, bool gemm,
                              po_bound *bound);

/* Seconds to move bytes from device `from` to device `to` (0 when from == to). */
double po_cost_model_transfer_s(const po_cost_model *cm, int from, int to, double bytes);
/* Seconds device `writer` pays beyond its own time to rewrite `bytes` that the other devices of
 * readers[0..n) have read (the link's reclaim cost; the dearest of them; the writer itself, if
 * listed, is skipped): data-parallel replicas in shared memory each updating their part of
 * parameters every replica read. 0 when none of the links has a reclaim cost. */
double po_cost_model_reclaim_s(const po_cost_model *cm, const int *readers, int n, int writer, double bytes);
/* Seconds of one wake-up of a blocked thread between devices[0] and any other of devices[0..n)
 * (the dearest link's wake_us, either way): a plan over several devices runs each step on
 * threads of their own, woken for it and waking the caller at its end. 0 for n < 2. */
double po_cost_model_wake_s(const po_cost_model *cm, const int *devices, int n);
/* Seconds of a ring all-reduce of bytes over devices[0..n) in that ring order (0 for n < 2). */
double po_cost_model_allreduce_s(const po_cost_model *cm, const int *devices, int n, double bytes);
/* Joules of one device over a window: active_w x busy_s + idle_w x (window_s - busy_s). */
double po_cost_model_energy_j(const po_cost_model *cm, int device, double busy_s, double window_s);

/* --- plans ---------------------------------------------------------------------------------- */

typedef enum {
    PO_STRATEGY_SINGLE,
    PO_STRATEGY_DP,
    PO_STRATEGY_PP,
    PO_STRATEGY_HYBRID,
    PO_STRATEGY_OPSPLIT,
    PO_STRATEGY_COUNT
} po_strategy;
const char *po_strategy_name(po_strategy s); /* "single", "dp", "pp", "hybrid", "opsplit" */
po_status po_strategy_parse(const char *name, po_strategy *out);

typedef enum { PO_OBJECTIVE_TIME, PO_OBJECTIVE_ENERGY, PO_OBJECTIVE_EDP } po_objective;
const char *po_objective_name(po_objective o); /* "time", "energy", "edp" */
po_status po_objective_parse(const char *name, po_objective *out);

/* NONE: one micro-batch (single, dp, opsplit). GPIPE: every forward, then every backward.
 * 1F1B: stage s (of S) runs min(S - s - 1, m) forwards, then alternates one forward and one
 * backward, then the remaining backwards: at most min(S - s, m) micro-batches in flight. */
typedef enum { PO_SCHEDULE_NONE, PO_SCHEDULE_GPIPE, PO_SCHEDULE_1F1B } po_schedule;
const char *po_schedule_name(po_schedule s); /* "none", "gpipe", "1f1b" */
po_status po_schedule_parse(const char *name, po_schedule *out);

typedef struct po_plan_replica {
    char device[32]; /* cluster device id */
    double share;    /* fraction of each micro-batch (dp, hybrid) or of each split op (opsplit) */
} po_plan_replica;

/* A pipeline stage: layers first..last (workload layer indices) on its replicas, each taking a
 * share of every micro-batch (data parallel within the stage when there are several). single: one
 * stage, one replica; dp: one stage; pp: one replica per stage; hybrid: several stages, some with
 * several replicas; opsplit: one stage whose first replica runs the graph and every replica takes
 * its share of each split matrix product: the LINEAR and MATMUL nodes of at least 1 MFLOP per
 * product call (src/runtime/opsplit.h; simulator and runtime split the same nodes), not
 * convolutions (oneDNN primitives the runtime does not cut). */
typedef struct po_plan_stage {
    int first_layer, last_layer;
    bool recompute; /* activations recomputed in backward instead of kept (memory-short stages) */
    int n_replicas;
    po_plan_replica *replicas; /* owned */
} po_plan_stage;

typedef struct po_device_prediction {
    char device[32];
    int64_t peak_memory_bytes;
    int64_t memory_bytes; /* the device's capacity */
    double busy;          /* fraction of the step it computes */
    double energy_j;      /* per step */
} po_device_prediction;

typedef struct po_prediction {
    double step_ms;
    double samples_per_s;
    double energy_j_per_sample; /* NaN when a device's power is unknown */
    char energy_source[32];     /* "estimated:model" (or "unknown") */
    bool fits_memory;           /* every device (and shared memory group) within its memory */
    int n_devices;
    po_device_prediction *devices; /* owned; the devices the plan uses, in plan order */
} po_prediction;

typedef struct po_plan_alternative {
    po_strategy strategy;
    char summary[256]; /* po_plan_summary of that candidate */
    po_prediction predicted;
} po_plan_alternative;

typedef struct po_plan {
    po_strategy strategy;
    po_objective objective;
    double max_slowdown_pct; /* NaN: none */
    char model[512];         /* po_workload_name (informational) */
    int64_t batch;
    int n_stages;
    po_plan_stage *stages; /* owned */
    int micro_batches;     /* >= 1; divides the batch */
    po_schedule schedule;
    po_prediction predicted;
    int n_explanation;
    char **explanation; /* owned sentences */
    int n_alternatives;
    po_plan_alternative *alternatives; /* owned; the runners-up, best first */
} po_plan;

/* Frees what p owns and zeroes it (NULL or a zeroed plan is fine). */
void po_plan_free(po_plan *p);
po_status po_plan_copy(const po_plan *src, po_plan *dst); /* deep copy; dst overwritten */
void po_prediction_free(po_prediction *p);
po_status po_prediction_copy(const po_prediction *src, po_prediction *dst);
/* One line: "dp over cpu:0 (0.50), cpu:1 (0.50)", "pp: l1-l2 on g0 | l3 on g1, 4 micro-batches
 * 1f1b", ... in buf; returns buf. */
const char *po_plan_summary(const po_plan *p, const po_workload *w, char *buf, size_t size);
/* Structural checks against a workload and cluster: stages cover the layers in order, devices
 * exist and appear once, shares positive and summing to 1 per stage, micro-batches divide the
 * batch, each replica gets at least one row. One-line PO_ERR_INVALID_ARG otherwise. */
po_status po_plan_validate(const po_plan *p, const po_workload *w, const po_cluster *c);

/* --- simulator ------------------------------------------------------------------------------ */

/* Simulates one step of plan p (validated first) and fills *out (overwritten). */
po_status po_plan_simulate(const po_plan *p, const po_workload *w, const po_cost_model *cm, po_prediction *out);

/* --- data-parallel shares ------------------------------------------------------------------- */

/* Shares of the batch for data parallelism over devices[0..n) (cluster indices), solved in closed
 * form on each device's forward + backward time linearised in its rows (t_i(b) = a_i + c_i b,
 * re-linearised at the solution three times): shares so every replica's compute ends at the same
 * time (the all-reduce, which waits for the last, then ends at the same time for all; the
 * optimizer after it does not depend on shares), i.e. proportional to speed when compute
 * dominates. A device whose memory cannot hold a replica with one row gets 0; one whose memory
 * caps its rows keeps that cap and the rest is solved again. Rows are then rounded to whole
 * samples (each used device at least one) and shares[i] = rows / batch. PO_ERR_NOT_FOUND when the
 * devices cannot hold the batch together. *binding (may be NULL) gets the index (into devices) of
 * a device whose memory capped its share, or -1. */
po_status po_dp_shares(const po_workload *w, const po_cost_model *cm, const int *devices, int n, double *shares,
                       int *binding);

/* --- pipeline partitioning (exact dynamic programming) -------------------------------------- */

/* A pipeline partitioning problem over L layers and U units (devices, or groups of devices).
 * Arrays are indexed t[(u * L + i) * L + j] for layers i..j (i <= j) on unit u, and
 * comm[(a * U + b) * L + j] for the boundary after layer j between units a != b (seconds to send
 * the activation and receive its gradient). A solution is S >= 1 stages with contiguous layer
 * ranges covering 0..L-1 in order, on S distinct units, each with or without recomputation. Stage
 * s's time per micro-batch is t_s = time[u_s, range_s] (recompute_time with recomputation) +
 * comm[u_s, u_{s+1}, last layer of s] (not for the last stage). Stage s holds
 * static + k_s x stash bytes (the recompute_ arrays with recomputation), k_s = m for GPIPE and
 * min(m, S - s) for 1F1B (s from 0); it must not exceed capacity[u_s].
 * The solver minimises T = (m - 1) x max_s t_s + sum_s t_s (the step time of a synchronous
 * pipeline of m micro-batches: fill and drain, then the bottleneck stage m - 1 more times), exactly:
 * a backward dynamic program over (first layer placed, stages placed, units used per class of
 * interchangeable units, class of the front unit) keeping each state's Pareto set of
 * (bottleneck, sum). Ties go to fewer stages. */
typedef struct po_pp_problem {
    int n_layers, n_units;
    int micro_batches;                               /* m >= 1 */
    po_schedule schedule;                            /* GPIPE or 1F1B (NONE counts as GPIPE) */
    int max_stages;                                  /* 0: no limit beyond the units and layers */
    int min_stages; /* 0 or 1: any; 2: a real pipeline even where one stage would be faster */
    const double *time, *static_bytes, *stash_bytes; /* [U][L][L] */
    const double *recompute_time, *recompute_static_bytes, *recompute_stash; /* NULL: no recomputation */
    const double *comm;                                                      /* [U][U][L] */
    const double *capacity;                                                  /* [U] bytes */
} po_pp_problem;

typedef struct po_pp_solution {
    double objective;    /* T above, seconds */
    double bottleneck_s; /* max_s t_s */
    double sum_s;        /* sum_s t_s */
    int n_stages;
    int *first, *last, *unit; /* [n_stages], owned */
    bool *recompute;          /* [n_stages] */
} po_pp_solution;

/* PO_ERR_NOT_FOUND when no partition fits in memory. */
po_status po_pp_solve(const po_pp_problem *p, po_pp_solution *out);
void po_pp_solution_free(po_pp_solution *s);
/* T of a given assignment (for tests and what-if), or INFINITY when it breaks a memory limit. */
double po_pp_evaluate(const po_pp_problem *p, int n_stages, const int *first, const int *last, const int *unit,
                      const bool *recompute);

/* --- search --------------------------------------------------------------------------------- */

typedef struct po_plan_opts {
    po_objective objective;  /* TIME (default), ENERGY (joules per sample), EDP (energy x time) */
    double max_slowdown_pct; /* with ENERGY: least energy among plans at most this much slower than
                              * the fastest (NaN, the default: no limit) */
    unsigned strategies;     /* mask of 1u << po_strategy to consider; 0 = all */
    int top_k;               /* plans kept: the chosen one + top_k - 1 alternatives (default 5) */
    bool recompute;          /* consider activation recomputation (default true) */
    int max_micro_batches;   /* largest micro-batch count tried (default 64) */
} po_plan_opts;
po_plan_opts po_plan_opts_default(void);

/* Finds the best plan for w on cm's cluster by the objective, simulating every candidate:
 *   single   each device (one per class of interchangeable devices);
 *   dp       device subsets: every combination of counts per class of interchangeable devices
 *            when there are at most 512, else the k fastest (and the k most energy-efficient)
 *            for every k; shares by po_dp_shares;
 *   pp       po_pp_solve over the devices for every micro-batch count (divisors of the batch up
 *            to max_micro_batches) and both schedules (and, for the energy objectives, every
 *            stage limit), recomputation where allowed; a one-stage answer counts as single;
 *   hybrid   the same over groups of g interchangeable devices (g = 2, 4, ...), each stage data
 *            parallel over one group;
 *   opsplit  the k fastest devices (k = 2..8) sharing every GEMM/convolution that runs faster
 *            split (by speed) than whole.
 * Plans that do not fit in memory are dropped. Classes of interchangeable devices whose twins
 * are at least as well connected among themselves are cut to the pipeline's largest stage count
 * (exact: a pipeline never needs more), and with more than 16 device classes the pipeline search
 * keeps the 16 fastest devices. *out gets the best plan with its prediction, its explanation and
 * up to top_k - 1 alternatives; PO_ERR_NOT_FOUND (one line saying what does not fit) when no
 * candidate fits. */
po_status po_plan_search(const po_workload *w, const po_cost_model *cm, const po_plan_opts *o, po_plan *out);

/* Writes the explanation sentences of p (replacing any): the chosen plan and its prediction, the
 * bottleneck (device or link; compute, memory or communication bound), the binding constraint,
 * the runner-up (`runner_up`, may be NULL) and how much worse it is, and every device's
 * utilisation. p must carry its prediction (po_plan_simulate). */
po_status po_plan_explain(po_plan *p, const po_workload *w, const po_cost_model *cm, const po_plan *runner_up);

/* --- JSON ------------------------------------------------------------------------------------- */

/* The plan as one JSON object (README, "paropt plan"): strategy, objective, max_slowdown, model,
 * batch, stages [{layers: [first, last], layer_names, recompute, replicas: [{device, share}]}],
 * micro_batches, schedule, predicted {step_ms, samples_per_s, energy_j_per_sample,
 * energy_source, fits_memory, peak_memory_bytes {dev: bytes}, memory_bytes {dev: bytes},
 * busy {dev: fraction}}, explanation [...], alternatives [{strategy, summary, predicted}].
 * w (may be NULL) names the layers. Returns a malloc'd string (NULL when out of memory). */
char *po_plan_to_json(const po_plan *p, const po_workload *w);
/* Reads a plan back (predictions, explanation and alternatives when present). Errors name
 * origin, line and column of the offending value. */
po_status po_plan_from_json(const char *text, const char *origin, po_plan *out);
po_status po_plan_save(const po_plan *p, const po_workload *w, const char *path); /* atomic */
po_status po_plan_load(const char *path, po_plan *out);

/* --- plan cache ------------------------------------------------------------------------------- */

typedef struct po_plan_cache po_plan_cache;

/* A cache of plans in memory, and in directory dir when not NULL (files plan-<key>.json, written
 * atomically; unreadable ones are misses, a failed write is not an error). */
po_status po_plan_cache_new(const char *dir, po_plan_cache **out);
void po_plan_cache_free(po_plan_cache *pc);
/* The key: the workload's signature (graph ops and shapes), the cluster's (devices, figures,
 * links), the measured history's size, and the options. */
uint64_t po_plan_cache_key(const po_workload *w, const po_cost_model *cm, const po_plan_opts *o);
/* A copy of the cached plan, or PO_ERR_NOT_FOUND. */
po_status po_plan_cache_get(po_plan_cache *pc, uint64_t key, po_plan *out);
po_status po_plan_cache_put(po_plan_cache *pc, uint64_t key, const po_plan *p);
/* The cached plan for (w, cm, o) when there is one (*hit true), else po_plan_search and put. */
po_status po_plan_cached(po_plan_cache *pc, const po_workload *w, const po_cost_model *cm, const po_plan_opts *o,
                         po_plan *out, bool *hit);

/* --- planning on this machine -------------------------------------------------------------- */

/* What planning a model on this machine's devices needs, measured once: the workload, the
 * devices' figures (as paropt devices measures them; cached), and with calibration every op's
 * time on every device. paropt train --plan and po_parallel_new plan from it. */
typedef struct po_planner po_planner;

typedef struct po_planner_opts {
    po_bench_level level;                          /* how thoroughly devices are measured (QUICK) */
    int calibrate;                                 /* steps timed per device at the batch and at half of it, each op's
                                                      median recorded (po_cost_model_calibrate); 0: the figures alone
                                                      (default 2) */
    void (*progress)(const char *what, void *ctx); /* before each measurement; NULL: silence */
    void *progress_ctx;
} po_planner_opts;
po_planner_opts po_planner_opts_default(void);

/* spec and batch as po_model_build, o the optimizer (NULL: Adam), devs CPU devices of this
 * machine (an emulated slow device, option slowdown=F, is measured slow). */
po_status po_planner_new(const char *spec, int64_t batch, const po_optim_opts *o, const po_device_list *devs,
                         const po_planner_opts *opts, po_planner **out);
void po_planner_free(po_planner *p);
const po_workload *po_planner_workload(const po_planner *p);
const po_cluster *po_planner_cluster(const po_planner *p);
const po_cost_model *po_planner_cost_model(const po_planner *p);

#ifdef __cplusplus
}
#endif
#endif

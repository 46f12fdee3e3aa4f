/* Executing a graph on the CPU.
 *
 * An executor binds a graph to parameter storage, plans and allocates every intermediate
 * buffer once (po_memplan), prepares each kernel (oneDNN primitives) once, and then runs the
 * whole graph — forward, backward and optimizer, as the graph holds them — on the calling
 * thread, each run without allocating. oneDNN is held to one thread: paropt owns parallelism
 * (one executor per worker), and nested thread pools would oversubscribe the cores. */
#ifndef PAROPT_RUNTIME_H
#define PAROPT_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paropt/graph.h"
#include "paropt/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_exec po_exec;

/* Prepares g to run with parameter storage p, made from g or from any graph with the same
 * parameters (names and shapes, in order) and at least g's optimizer state: a forward-only
 * evaluation graph can share a training graph's storage. Both must outlive the executor and
 * the graph must not change afterwards. */
po_status po_exec_new(const po_graph *g, po_params *p, po_exec **out);
void po_exec_free(po_exec *ex);
/* The graph the executor runs. */
const po_graph *po_exec_graph(const po_exec *ex);

/* Copies `value` into input node `input` for the next runs. Shapes must match exactly; integer
 * inputs accept I32 or I64 values (converted); float inputs need F32. */
po_status po_exec_set_input(po_exec *ex, const po_node *input, const po_tensor *value);
/* The input's buffer, to fill in place (node dtype and shape, contiguous). */
void *po_exec_input_data(po_exec *ex, const po_node *input);

/* Runs every node once. With an optimizer in the graph, this is one training step and the
 * step counter advances. Fails (and stops) on bad data, e.g. a target out of range. */
po_status po_exec_run(po_exec *ex);

/* Runs only the nodes of the given phases (a mask of 1u << PO_PHASE_...), in graph order.
 * Unlike po_exec_run it does not advance the optimizer step counter (po_exec_set_steps). */
po_status po_exec_run_phases(po_exec *ex, unsigned phases);
/* Runs nodes ids[0..n) in that order, without advancing the step counter. Several threads may
 * run disjoint node lists of one executor at once when those nodes share no buffer they write
 * (the updates of different parameters, for instance) and have no scratch space. Neither
 * traced (po_exec_set_trace) nor slowed (po_exec_set_slowdown): threads sharing an executor
 * record their own slices and emulate their own device's speed. */
po_status po_exec_run_nodes(po_exec *ex, const int *ids, int n);

/* A node's output after a run: kept nodes (po_graph_keep, the loss), inputs, parameters and
 * gradients; NULL for intermediates whose buffer has been reused. Contiguous, node's shape. */
const void *po_exec_output(const po_exec *ex, const po_node *n);

/* Optimizer steps taken (Adam's bias correction uses it). Set it when resuming. */
int64_t po_exec_steps(const po_exec *ex);
void po_exec_set_steps(po_exec *ex, int64_t steps);
/* Multiplies every optimizer node's learning rate from the next run on (schedules). */
void po_exec_set_lr_scale(po_exec *ex, float scale);

/* Per-node timing: when on, every run adds each node's wall time to its total (a clock read per
 * node; off by default). po_exec_node_seconds is that total, po_exec_profiled_runs the runs
 * counted; po_exec_reset_profile clears both. */
void po_exec_set_profiling(po_exec *ex, bool on);
double po_exec_node_seconds(const po_exec *ex, const po_node *n);
int64_t po_exec_profiled_runs(const po_exec *ex);
void po_exec_reset_profile(po_exec *ex);

/* Records one slice per node (named by its op, categorised by its phase) on `track` of tr
 * while tr records (paropt/trace.h); NULL stops. The trace must outlive the executor's runs. */
struct po_trace;
void po_exec_set_trace(po_exec *ex, struct po_trace *tr, int track);

/* Emulated heterogeneity, for tests and demonstrations on machines whose cores are all alike:
 * with factor F > 1 every kernel owes (F - 1) times its duration of idling, paid in sleeps of at
 * least half a millisecond and in full by the end of each run, so the executor runs F times
 * slower while its core is free. 1 turns it off. An emulation only: the numbers computed are
 * unchanged. */
po_status po_exec_set_slowdown(po_exec *ex, float factor);

/* Bytes of the intermediate-buffer arena and of the shared kernel scratch space. */
size_t po_exec_arena_bytes(const po_exec *ex);
size_t po_exec_scratch_bytes(const po_exec *ex);
/* Bytes of tensor data the executor allocated: arena + scratch + one buffer per input node (as
 * requested, before the allocator's rounding). It allocates them all in po_exec_new and nothing
 * while running, so this is also its high-water mark; parameters, gradients and optimizer state
 * are po_params' (po_params_allocated_bytes). po_analysis predicts the sum of the two. */
size_t po_exec_allocated_bytes(const po_exec *ex);

/* Which library runs matrix products (process-wide). The two round differently, so a fixed
 * choice is what makes runs bit-reproducible.
 *   DEFAULT   a fixed choice per CPU and product size: oneDNN for small products (under 4M
 *             multiply-adds, where its lower per-call cost wins) and, for larger ones, where
 *             AVX-512 is present (its JIT kernels run about twice as fast as OpenBLAS there);
 *             OpenBLAS for large products elsewhere (on AVX2-only cores such as AMD Zen 3,
 *             oneDNN's sgemm falls to 30-40 GFLOP/s when a leading dimension is a power of
 *             two, while OpenBLAS holds 75-90).
 *   AUTO      times each distinct product shape once on both and keeps the faster (oneDNN
 *             only when at least 25% faster): fastest, but timing noise can change a choice,
 *             and so the last bits of results, from one run to the next.
 *   ONEDNN, OPENBLAS  pin one library. */
typedef enum { PO_GEMM_DEFAULT, PO_GEMM_AUTO, PO_GEMM_ONEDNN, PO_GEMM_OPENBLAS } po_gemm_provider;
void po_set_gemm_provider(po_gemm_provider p);
po_gemm_provider po_get_gemm_provider(void);
/* "default", "auto", "onednn", "openblas". */
po_status po_gemm_provider_parse(const char *name, po_gemm_provider *out);
const char *po_gemm_provider_name(po_gemm_provider p);
/* The library DEFAULT stands for on this CPU for large products (ONEDNN or OPENBLAS). */
po_gemm_provider po_gemm_default_provider(void);

#ifdef __cplusplus
}
#endif
#endif

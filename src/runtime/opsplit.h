/* Operator-split training step on CPU core groups in shared memory (plans of the opsplit family).
 *
 * One executor runs the whole step, node by node, on a main thread pinned to member 0's cores. The
 * nodes po__opsplit_node_splits picks run with a GEMM team (runtime/gemm_team.h) joined: their
 * matrix products are cut into blocks by the members' shares (an input gradient dY W along K, by
 * the weight's rows) and computed by all members at once; or, for ops that divide into units
 * (attention, convolutions, pooling, layer norm, activations, sums over rows), member k computes
 * its stretch of the units, in proportion to the shares, with a scratch area of its own (and,
 * for a gradient summed over samples or rows, an output of its own, added up after). The
 * optimizer's updates (one node per parameter, at the end of the step) are shared out by element
 * in proportion to the members' shares (runtime/optim_split.h) and run by all at once; except that
 * an update whose gradient is a split product's output, and whose parameter no later node reads,
 * runs right after that product, each member updating the rows it has just computed: the gradient
 * is read from the member's caches rather than memory (mnist_mlp over two cores, alternated runs,
 * medians: 7.04 -> 6.90 ms a step). A ReLU or its gradient right on a split product's output runs
 * on each member's part of that output (po__opsplit_rides). Every other node runs on the main
 * thread alone. The result is the single-device step's up to the rounding of the blocked products and
 * of the order of a summed node's final additions (a convolution's weight gradient, a bias
 * gradient); any other node split by units, or run on a product's parts, is the whole node's, bit
 * for bit. */
#ifndef PO_RUNTIME_OPSPLIT_H
#define PO_RUNTIME_OPSPLIT_H

#include <stdbool.h>

#include "paropt/graph.h"
#include "paropt/train.h"

/* Which nodes operator split shares out: matrix-product nodes (LINEAR, MATMUL), whose product
 * calls are cut into blocks, and nodes whose op divides into independent units (cpu_units:
 * causal attention by (sample, head), convolutions by sample, layer norm by rows, max pooling
 * by planes, GELU and ReLU by runs of elements, sums over rows by rows), dealt out by unit; in
 * either case only where every product call (per sample for attention, the whole node for the
 * others) does at least this many FLOPs (a bias gradient over a spread input excepted:
 * po__opsplit_gathers). Below it the hand-off to the helpers (about a microsecond spinning, tens
 * when a helper had blocked) eats what splitting saves: 1 MFLOP is about 5-10 us on one core. A
 * convolution's weight gradient sums over the samples: each member computes its samples' part
 * into a buffer of its own, and the main thread adds them up in member order. The planner's
 * simulator (src/plan/simulate.c, build_opsplit) and the runtime decide alike
 * (po__wnode_splits against po__opsplit_node_splits), so the plan predicts what runs. */
#define PO__OPSPLIT_MIN_CALL_FLOPS 1.0e6
/* Whether op's nodes are split by units (po__op_def(op)->cpu_units) rather than by blocks of
 * their products. */
bool po__opsplit_by_units(po_op op);
static inline bool po__opsplit_rule(po_op op, double call_flops) {
    return (op == PO_OP_LINEAR || op == PO_OP_MATMUL || po__opsplit_by_units(op)) &&
           call_flops >= PO__OPSPLIT_MIN_CALL_FLOPS;
}
/* Product calls node n makes (at least 1): a batched matmul one per leading index, attention one
 * per sample, any other node one. The planner's workload (src/plan/workload.c) and the runtime
 * both count with it, so they size calls alike. */
double po__product_calls(const po_node *n);
/* FLOPs of one product call of n: its FLOPs over po__product_calls. */
double po__opsplit_call_flops(const po_node *n);
/* The node n sums over its leading dimensions when n is a SUM_TO (a Linear layer's bias
 * gradient: dY summed over its rows), else NULL. Where that node's output is spread over the
 * members' caches (split, or run on a split product's parts: its rows were written by the member
 * that computed them), n is dealt out by rows whatever its size, each member summing its own
 * rows: run on the main thread alone it read every member's rows, and the lines it took became
 * the next step's cost to whoever wrote them again. mnist_mlp over two cores, its two bias
 * gradients (128 x 1024 each), Zen 5 VM: the second ReLU's output shares arena lines with the
 * first layer's dY, and with the sums on the main thread the helper's part of it took 41-48 us
 * against member 0's 15-19; dealt out, 29-35 each. Step time, 28 alternated pairs of 300-step
 * runs within an hour as the VM's cross-core costs changed: 0.91-0.98 (median 0.95) in the
 * first 6, 0.88-1.08 (median about 0.99) in the other 22. */
const po_node *po__opsplit_gathers(const po_node *n);
/* Whether operator split shares node n out: po__opsplit_rule on its per-call FLOPs, or a SUM_TO
 * over a spread output (po__opsplit_gathers). The planner decides on the workload alike
 * (po__wnode_splits, src/plan/workload.c). */
bool po__opsplit_node_splits(const po_node *n);
/* The matrix product (LINEAR or MATMUL of one product call) whose output n, a ReLU or ReLU
 * gradient, reads as its first input, element for element; else NULL. Where the product is
 * split and n is not (too small to pay a hand-off of its own), each member runs n on the
 * elements of the output it computed, right where they are, in its caches: run on the main
 * thread alone, n read the other members' parts from their caches and wrote lines they had
 * read, 2-3x its one-core time (mnist_mlp over two cores, trace medians: 241 us a step for its
 * four, 203 on the parts, against 121 on one core). The simulator (src/plan/simulate.c)
 * charges such a node as split by the shares, plus the reclaim of the lines it writes. */
const po_node *po__opsplit_follows(const po_node *n);
static inline bool po__opsplit_rides(const po_node *n) {
    const po_node *p = po__opsplit_follows(n);
    return p && po__opsplit_node_splits(p) && !po__opsplit_node_splits(n);
}

typedef struct po_os po_os;

/* A runner for ex (which must outlive it) over members (cores and shares; at least one):
 * starts the main thread, pinned to members[0]'s cores, and the team's helpers. */
po_status po__os_new(po_exec *ex, const po_worker_spec *members, int n, po_os **out);
void po__os_free(po_os *os);

/* One step (po_exec_run's work: forward, backward, optimizer; the step counter moves), run on
 * the main thread while the calling thread waits. */
po_status po__os_step(po_os *os);

int po__os_members(const po_os *os);
/* Member k emulated `factor` times slower (po_exec_set_slowdown): member 0's nodes and blocks,
 * a helper's blocks. */
po_status po__os_set_slowdown(po_os *os, int k, float factor);
/* Member k's share and its busy time in the last step (member 0: the step less its waits for
 * helpers; a helper: its blocks). rows is left 0. */
void po__os_stats(const po_os *os, int k, po_worker_stats *out);
/* Re-sharing by measured speed (off at first): after each step, the members' busy time on
 * their blocks and optimizer parts goes into a runtime/balance.h window; when their medians
 * drift more than 10% apart, each member's share moves toward one proportional to its measured
 * speed (share / busy time): all the way when they are more than 30% apart, else halfway; and
 * the optimizer is shared out again. No rebuild: the next
 * step's products are cut by the new shares. */
void po__os_set_rebalance(po_os *os, bool on);
int64_t po__os_rebalances(const po_os *os);
/* Products shared out so far (the team's count). */
int64_t po__os_splits(const po_os *os);
/* Of those, the products cut along K. And the runs of followers (po__opsplit_rides) on their
 * product's parts; a follower runs whole on the main thread instead when the product's cut was
 * not of its output as a [rows, cols] matrix. */
int64_t po__os_k_splits(const po_os *os);
int64_t po__os_follower_runs(const po_os *os);
/* Nodes of the graph split as products or by units, and nodes run on a split product's parts
 * (po__opsplit_rides). */
int po__os_split_nodes(const po_os *os);
int po__os_follower_nodes(const po_os *os);
/* Optimizer update elements member k applies, right after a product (its rows of the weight
 * gradient just computed) or after the backward pass (0 for every member when the optimizer is
 * not shared out). */
int64_t po__os_optimizer_elements(const po_os *os, int k);
/* Updates that run right after the product computing their weight gradient. */
int po__os_fused_updates(const po_os *os);
/* Member 0's nodes on track 0, helpers' blocks on their own tracks; NULL stops. */
struct po_trace;
void po__os_set_trace(po_os *os, struct po_trace *tr);

/* The runner of an operator-split trainer (po_trainer_new_opsplit), else NULL: for tests. */
po_os *po__trainer_os(po_trainer *t);

#endif

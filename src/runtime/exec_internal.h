/* Executor internals for the pipeline runtime (src/runtime/pp.c): raw access to any node's
 * buffers and runs of arbitrary node lists that are traced and slowed like po_exec_run. */
#ifndef PO_RUNTIME_EXEC_INTERNAL_H
#define PO_RUNTIME_EXEC_INTERNAL_H

#include "paropt/runtime.h"

/* Where node node_id's output lives in this executor (its arena slot, input buffer, parameter
 * or gradient), whether or not the memory planner still holds it live; NULL for a bad id. */
void *po__exec_node_buffer(po_exec *ex, int node_id);
/* The node's auxiliary buffer (state saved for backward), or NULL when it has none. */
void *po__exec_node_aux(po_exec *ex, int node_id);
/* Runs nodes ids[0..n) in that order on the calling thread, each traced (po_exec_set_trace) and
 * slowed (po_exec_set_slowdown) as in po_exec_run; the step counter does not move. Idling owed
 * to the slowdown is paid in quanta; po__exec_pay_idle pays the rest. */
po_status po__exec_run_list(po_exec *ex, const int *ids, int n);
void po__exec_pay_idle(po_exec *ex);
/* Elements [begin, end) of node node_id's work, from any of several threads sharing the
 * executor (as po_exec_run_nodes: not traced, not slowed). PO_ERR_UNSUPPORTED for an op without
 * a range kernel (the optimizer's updates have one), PO_ERR_INVALID_ARG for a bad id or range. */
po_status po__exec_run_range(po_exec *ex, int node_id, int64_t begin, int64_t end);
/* Whether node node_id's op can run by element ranges (po__exec_run_range). */
bool po__exec_has_range(const po_exec *ex, int node_id);
/* Independent units of node node_id's work (the op's cpu_units: causal attention's (sample, head)
 * pairs), or 0 when its op does not divide so (or for a bad id). */
int64_t po__exec_units(const po_exec *ex, int node_id);
/* Bytes of temporary space node node_id's kernel needs (its scratch_bytes); 0 for a bad id. */
size_t po__exec_scratch_bytes(const po_exec *ex, int node_id);
/* Whether node node_id's units each add to the whole output (op_def units_sum: a weight
 * gradient over samples) rather than write a part of it. */
bool po__exec_units_sum(const po_exec *ex, int node_id);
/* Bytes of node node_id's output; 0 for a bad id. */
size_t po__exec_output_bytes(const po_exec *ex, int node_id);
/* Units [begin, end) of node node_id's work, from any of several threads sharing the executor
 * (not traced, not slowed), with scratch as the kernel's temporary space: NULL takes the
 * executor's own, which only one of the threads may do; the others each give their own of
 * po__exec_scratch_bytes. out: where the output goes (NULL: the node's buffer); for a
 * units_sum node, the range's contribution, which concurrent ranges must each write to a
 * buffer of their own. PO_ERR_UNSUPPORTED for an op without units, PO_ERR_INVALID_ARG for a
 * bad id or range. */
po_status po__exec_run_units(po_exec *ex, int node_id, int64_t begin, int64_t end, void *scratch, void *out);

#endif

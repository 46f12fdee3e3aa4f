/* The single-worker CPU executor. */
#include "paropt/runtime.h"

#include "paropt/trace.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "graph/memplan.h"
#include "ops/op_def.h"
#include "runtime/exec_internal.h"

struct po_exec {
    const po_graph *g;
    po_params *p;
    po_memplan plan;
    void *arena, *scratch;
    void **out;           /* per node: where its output lives */
    void **aux;           /* per node: its aux buffer, or NULL */
    void **input_bufs;    /* per node: owned buffer for INPUT nodes, else NULL */
    void **state;         /* per node: kernel state from cpu_init */
    po_kargs *args;       /* per node, fully resolved */
    const void **in_ptrs; /* backing store for every args[i].in */
    void **in_aux_ptrs;   /* backing store for every args[i].in_aux */
    po_step_ctx step;
    int64_t steps_done;
    bool has_optimizer;
    bool profiling;
    float slowdown;       /* emulation factor, 1 = off */
    double *node_seconds; /* per node, when profiling */
    int64_t profiled_runs;
    po_trace *trace; /* slices of each node while the trace records; NULL: none */
    int trace_track;
    double idle_debt_s; /* emulated slowness owed (negative: a sleep's overshoot, credited) */
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static po_status resolve_storage(po_exec *ex) {
    const po_graph *g = ex->g;
    float *values = po_params_values(ex->p), *grads = po_params_grads(ex->p);
    float *state = po_params_state(ex->p);
    int slots = po_params_state_slots(ex->p);
    for (int i = 0; i < g->n_nodes; i++) {
        const po_node *n = g->nodes[i];
        const po_param_info *pi = n->param_index >= 0 ? po_params_info(ex->p, n->param_index) : NULL;
        switch (n->store) {
        case PO_STORE_ARENA: ex->out[i] = (char *)ex->arena + ex->plan.out_offset[i]; break;
        case PO_STORE_INPUT:
            ex->input_bufs[i] = po_aligned_calloc(po__nbytes(n));
            if (!ex->input_bufs[i]) return po_fail(PO_ERR_NO_MEMORY, "out of memory for input \"%s\"", n->name);
            ex->out[i] = ex->input_bufs[i];
            break;
        case PO_STORE_PARAM: ex->out[i] = values + pi->offset; break;
        case PO_STORE_GRAD: ex->out[i] = grads + pi->offset; break;
        case PO_STORE_VIEW: ex->out[i] = (char *)ex->out[n->view_src->id] + n->view_offset; break;
        }
        if (n->aux_store == PO_AUX_OPTSTATE)
            ex->aux[i] = state ? state + (size_t)slots * pi->offset : NULL;
        else if (n->aux_bytes)
            ex->aux[i] = (char *)ex->arena + ex->plan.aux_offset[i];
        if (n->phase == PO_PHASE_OPTIMIZER) ex->has_optimizer = true;
    }
    return PO_OK;
}

static po_status resolve_args(po_exec *ex) {
    const po_graph *g = ex->g;
    size_t total_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        total_in += (size_t)g->nodes[i]->n_in;
    ex->in_ptrs = calloc(total_in + 1, sizeof *ex->in_ptrs);
    ex->in_aux_ptrs = calloc(total_in + 1, sizeof *ex->in_aux_ptrs);
    if (!ex->in_ptrs || !ex->in_aux_ptrs) return po_fail(PO_ERR_NO_MEMORY, "out of memory preparing the executor");
    size_t k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const po_node *n = g->nodes[i];
        po_kargs *a = &ex->args[i];
        a->node = n;
        a->out = ex->out[i];
        a->aux = ex->aux[i];
        a->in = &ex->in_ptrs[k];
        a->in_aux = &ex->in_aux_ptrs[k];
        for (int j = 0; j < n->n_in; j++, k++) {
            ex->in_ptrs[k] = ex->out[n->in[j]->id];
            ex->in_aux_ptrs[k] = ex->aux[n->in[j]->id];
        }
        a->scratch = ex->scratch;
        a->step = &ex->step;
        const po_op_def *def = po__op_def(n->op);
        if (def->cpu_init) {
            po_status st = def->cpu_init(n, &ex->state[i]);
            if (st) return po_fail(st, "preparing %s (node %d): %s", def->name, i, po_last_error());
        }
        a->state = ex->state[i];
    }
    return PO_OK;
}

po_status po_exec_new(const po_graph *g, po_params *p, po_exec **out) {
    *out = NULL;
    if (g->status) return po_fail(g->status, "%s", g->error);
    /* Any graph with the same parameters may share the storage (an evaluation graph of
     * another batch size runs on the training graph's parameters). */
    if (po_params_count(p) != g->n_params)
        return po_fail(PO_ERR_INVALID_ARG, "parameter storage was made for another graph");
    for (int i = 0; i < g->n_params; i++) {
        const po_param_info *pi = po_params_info(p, i);
        if (strcmp(pi->name, g->params[i]->name) != 0 || !po_shape_equal(&pi->shape, &g->params[i]->shape))
            return po_fail(PO_ERR_INVALID_ARG, "parameter storage was made for another graph (\"%s\")", pi->name);
    }
    if (g->optim_slots > po_params_state_slots(p))
        return po_fail(PO_ERR_INVALID_ARG, "parameter storage lacks this graph's optimizer state");
    po_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return po_fail(PO_ERR_NO_MEMORY, "out of memory creating the executor");
    ex->g = g;
    ex->p = p;
    ex->step.lr_scale = 1.0f;
    ex->step.t = 1;
    ex->slowdown = 1.0f;
    int n = g->n_nodes ? g->n_nodes : 1;
    po_status st = po_memplan_build(g, &ex->plan);
    if (!st) {
        ex->out = calloc((size_t)n, sizeof *ex->out);
        ex->aux = calloc((size_t)n, sizeof *ex->aux);
        ex->input_bufs = calloc((size_t)n, sizeof *ex->input_bufs);
        ex->state = calloc((size_t)n, sizeof *ex->state);
        ex->args = calloc((size_t)n, sizeof *ex->args);
        ex->node_seconds = calloc((size_t)n, sizeof *ex->node_seconds);
        ex->arena = po_aligned_calloc(ex->plan.arena_bytes);
        ex->scratch = po_aligned_calloc(ex->plan.scratch_bytes);
        if (!ex->out || !ex->aux || !ex->input_bufs || !ex->state || !ex->args || !ex->node_seconds || !ex->arena ||
            !ex->scratch)
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory: the graph needs %zu bytes of buffers",
                         ex->plan.arena_bytes + ex->plan.scratch_bytes);
    }
    /* oneDNN primitives are created (and JIT-compiled) in cpu_init for this thread count. */
    omp_set_num_threads(1);
    if (!st) st = resolve_storage(ex);
    if (!st) st = resolve_args(ex);
    if (st) {
        po_exec_free(ex);
        return st;
    }
    *out = ex;
    return PO_OK;
}

void po_exec_free(po_exec *ex) {
    if (!ex) return;
    for (int i = 0; i < ex->g->n_nodes && ex->state; i++) {
        const po_op_def *def = po__op_def(ex->g->nodes[i]->op);
        if (ex->state[i] && def->cpu_free) def->cpu_free(ex->state[i]);
    }
    for (int i = 0; i < ex->g->n_nodes && ex->input_bufs; i++)
        po_aligned_free(ex->input_bufs[i]);
    po_memplan_free(&ex->plan);
    po_aligned_free(ex->arena);
    po_aligned_free(ex->scratch);
    free(ex->out);
    free(ex->aux);
    free(ex->input_bufs);
    free(ex->state);
    free(ex->args);
    free(ex->node_seconds);
    free(ex->in_ptrs);
    free(ex->in_aux_ptrs);
    free(ex);
}

static bool is_input(const po_exec *ex, const po_node *n) {
    return n && n->id < ex->g->n_nodes && ex->g->nodes[n->id] == n && n->op == PO_OP_INPUT;
}

void *po_exec_input_data(po_exec *ex, const po_node *input) { return is_input(ex, input) ? ex->out[input->id] : NULL; }

po_status po_exec_set_input(po_exec *ex, const po_node *input, const po_tensor *value) {
    if (!is_input(ex, input)) return po_fail(PO_ERR_INVALID_ARG, "set_input: not an input node of this graph");
    if (!po_shape_equal(&value->shape, &input->shape)) {
        char a[96], b[96];
        return po_fail(PO_ERR_SHAPE, "input \"%s\" expects shape %s, got %s", input->name,
                       po_shape_format(&input->shape, a, sizeof a), po_shape_format(&value->shape, b, sizeof b));
    }
    void *dst = ex->out[input->id];
    po_tensor *src;
    po_status st = po_tensor_contiguous(value, &src);
    if (st) return st;
    int64_t n = po__numel(input);
    if (src->dtype == input->dtype) {
        memcpy(dst, src->data, (size_t)n * po_dtype_size(src->dtype));
    } else if (input->dtype == PO_I64 && src->dtype == PO_I32) {
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)dst)[i] = ((const int32_t *)src->data)[i];
    } else if (input->dtype == PO_I32 && src->dtype == PO_I64) {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = ((const int64_t *)src->data)[i];
            if (v < INT32_MIN || v > INT32_MAX) {
                po_tensor_free(src);
                return po_fail(PO_ERR_RANGE, "input \"%s\": value %lld does not fit in I32", input->name, (long long)v);
            }
            ((int32_t *)dst)[i] = (int32_t)v;
        }
    } else {
        st = po_fail(PO_ERR_DTYPE, "input \"%s\" expects %s data, got %s", input->name, po_dtype_name(input->dtype),
                     po_dtype_name(src->dtype));
    }
    po_tensor_free(src);
    return st;
}

/* Emulated slowness: idle (F - 1) times each kernel's duration, so the device looks F times
 * slower to anything that measures it while its core is really free. The idling is owed and
 * paid in sleeps of at least IDLE_QUANTUM_S (a sleep per small kernel would cost the timer's
 * wake-up latency, tens of microseconds on a VM, and make the device look much slower than F);
 * what a sleep overshoots is credited against the next debt, so the average holds. */
#define IDLE_QUANTUM_S 5e-4
static void pay_idle(po_exec *ex, bool all) {
    if (ex->idle_debt_s <= 0.0 || (!all && ex->idle_debt_s < IDLE_QUANTUM_S)) return;
    double t0 = now_s(), idle = ex->idle_debt_s;
    struct timespec ts = {(time_t)idle, (long)((idle - (double)(time_t)idle) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    ex->idle_debt_s -= now_s() - t0;
}

/* shared: the node runs from one of several threads sharing the executor (po_exec_run_nodes),
 * so it touches no per-executor state: no trace, no emulated slowness (the caller emulates its
 * own device's). */
static po_status run_node(po_exec *ex, int i, bool shared) {
    const po_op_def *def = po__op_def(ex->g->nodes[i]->op);
    if (!po__op_has_work(def)) return PO_OK;
    bool traced = !shared && po_trace_recording(ex->trace);
    bool slowed = !shared && ex->slowdown > 1.0f;
    bool timed = ex->profiling || slowed || traced;
    double t0 = timed ? now_s() : 0.0;
    po_status st = po__op_run(def, &ex->args[i]);
    if (st) return st; /* the kernel recorded the detail */
    if (timed) {
        double dt = now_s() - t0;
        if (slowed) {
            ex->idle_debt_s += dt * (double)(ex->slowdown - 1.0f);
            pay_idle(ex, false);
        }
        double t1 = now_s();
        /* An emulated slow device's node takes F times its kernel: what it owes, not when the
         * owed idling happens to be paid (in lumps, at whichever node the debt passes the
         * quantum). Counting the lumps where they fell made per-node medians miss most of
         * them: calibration read a device slowed 3x as 1.6-1.8x on a step of many small
         * kernels (mnist_mlp:d_in=256,hidden=512, batch 64), and operator split gave it 0.36-0.46
         * of the work. */
        if (ex->profiling) ex->node_seconds[i] += slowed ? dt * (double)ex->slowdown : t1 - t0;
        if (traced) {
            static const char *const phase[] = {"forward", "backward", "optimizer"};
            po_phase ph = ex->g->nodes[i]->phase;
            po_trace_slice(ex->trace, ex->trace_track, po_op_name(ex->g->nodes[i]->op),
                           ph <= PO_PHASE_OPTIMIZER ? phase[ph] : "other", t0, t1);
        }
    }
    return PO_OK;
}

po_status po_exec_run(po_exec *ex) {
    omp_set_num_threads(1);
    for (int i = 0; i < ex->g->n_nodes; i++) {
        po_status st = run_node(ex, i, false);
        if (st) return st;
    }
    pay_idle(ex, true);
    if (ex->profiling) ex->profiled_runs++;
    if (ex->has_optimizer) po_exec_set_steps(ex, ex->steps_done + 1);
    return PO_OK;
}

po_status po_exec_run_phases(po_exec *ex, unsigned phases) {
    omp_set_num_threads(1);
    for (int i = 0; i < ex->g->n_nodes; i++) {
        if (!(phases & (1u << ex->g->nodes[i]->phase))) continue;
        po_status st = run_node(ex, i, false);
        if (st) return st;
    }
    pay_idle(ex, true);
    if (ex->profiling && (phases & (1u << PO_PHASE_FORWARD))) ex->profiled_runs++; /* one step's worth */
    return PO_OK;
}

po_status po_exec_run_nodes(po_exec *ex, const int *ids, int n) {
    omp_set_num_threads(1);
    for (int k = 0; k < n; k++) {
        if (ids[k] < 0 || ids[k] >= ex->g->n_nodes) return po_fail(PO_ERR_INVALID_ARG, "run_nodes: no node %d", ids[k]);
        po_status st = run_node(ex, ids[k], true);
        if (st) return st;
    }
    return PO_OK;
}

po_status po__exec_run_list(po_exec *ex, const int *ids, int n) {
    omp_set_num_threads(1);
    for (int k = 0; k < n; k++) {
        if (ids[k] < 0 || ids[k] >= ex->g->n_nodes) return po_fail(PO_ERR_INVALID_ARG, "run_list: no node %d", ids[k]);
        po_status st = run_node(ex, ids[k], false);
        if (st) return st;
    }
    return PO_OK;
}

void po__exec_pay_idle(po_exec *ex) { pay_idle(ex, true); }

bool po__exec_has_range(const po_exec *ex, int node_id) {
    return node_id >= 0 && node_id < ex->g->n_nodes && po__op_def(ex->g->nodes[node_id]->op)->cpu_run_range;
}

po_status po__exec_run_range(po_exec *ex, int node_id, int64_t begin, int64_t end) {
    if (node_id < 0 || node_id >= ex->g->n_nodes) return po_fail(PO_ERR_INVALID_ARG, "run_range: no node %d", node_id);
    const po_node *n = ex->g->nodes[node_id];
    const po_op_def *def = po__op_def(n->op);
    if (!def->cpu_run_range) return po_fail(PO_ERR_UNSUPPORTED, "run_range: %s has no range kernel", po_op_name(n->op));
    if (begin < 0 || end < begin || end > po_shape_numel(&n->shape))
        return po_fail(PO_ERR_INVALID_ARG, "run_range: elements %lld-%lld of %lld", (long long)begin, (long long)end,
                       (long long)po_shape_numel(&n->shape));
    return begin < end ? def->cpu_run_range(&ex->args[node_id], begin, end) : PO_OK;
}

int64_t po__exec_units(const po_exec *ex, int node_id) {
    if (node_id < 0 || node_id >= ex->g->n_nodes) return 0;
    const po_node *n = ex->g->nodes[node_id];
    const po_op_def *def = po__op_def(n->op);
    return def->cpu_units && def->cpu_run_units ? def->cpu_units(n) : 0;
}

size_t po__exec_scratch_bytes(const po_exec *ex, int node_id) {
    return node_id >= 0 && node_id < ex->g->n_nodes ? ex->g->nodes[node_id]->scratch_bytes : 0;
}

bool po__exec_units_sum(const po_exec *ex, int node_id) {
    return po__exec_units(ex, node_id) > 0 && po__op_def(ex->g->nodes[node_id]->op)->units_sum;
}

size_t po__exec_output_bytes(const po_exec *ex, int node_id) {
    return node_id >= 0 && node_id < ex->g->n_nodes ? po__nbytes(ex->g->nodes[node_id]) : 0;
}

po_status po__exec_run_units(po_exec *ex, int node_id, int64_t begin, int64_t end, void *scratch, void *out) {
    if (node_id < 0 || node_id >= ex->g->n_nodes) return po_fail(PO_ERR_INVALID_ARG, "run_units: no node %d", node_id);
    const po_node *n = ex->g->nodes[node_id];
    const po_op_def *def = po__op_def(n->op);
    if (!def->cpu_units || !def->cpu_run_units)
        return po_fail(PO_ERR_UNSUPPORTED, "run_units: %s does not divide into units", po_op_name(n->op));
    int64_t units = def->cpu_units(n);
    if (begin < 0 || end < begin || end > units)
        return po_fail(PO_ERR_INVALID_ARG, "run_units: units %lld-%lld of %lld", (long long)begin, (long long)end,
                       (long long)units);
    if (begin == end) return PO_OK;
    po_kargs a = ex->args[node_id];
    if (scratch) a.scratch = scratch;
    if (out) a.out = out;
    return def->cpu_run_units(&a, begin, end);
}

void *po__exec_node_buffer(po_exec *ex, int node_id) {
    return node_id >= 0 && node_id < ex->g->n_nodes ? ex->out[node_id] : NULL;
}

void *po__exec_node_aux(po_exec *ex, int node_id) {
    return node_id >= 0 && node_id < ex->g->n_nodes ? ex->aux[node_id] : NULL;
}

const void *po_exec_output(const po_exec *ex, const po_node *n) {
    if (!n || n->id >= ex->g->n_nodes || ex->g->nodes[n->id] != n) return NULL;
    const po_node *r = po__storage_root(n);
    if (r->store == PO_STORE_ARENA && ex->plan.last_use[r->id] < ex->g->n_nodes) return NULL;
    return ex->out[n->id];
}

const po_graph *po_exec_graph(const po_exec *ex) { return ex->g; }

int64_t po_exec_steps(const po_exec *ex) { return ex->steps_done; }
/* The kernels' step number always follows the counter, so runs of single nodes (from several
 * threads at once) read it without writing it. */
void po_exec_set_steps(po_exec *ex, int64_t steps) {
    ex->steps_done = steps;
    ex->step.t = steps + 1;
}
void po_exec_set_lr_scale(po_exec *ex, float scale) { ex->step.lr_scale = scale; }
void po_exec_set_profiling(po_exec *ex, bool on) { ex->profiling = on; }

void po_exec_set_trace(po_exec *ex, po_trace *tr, int track) {
    ex->trace = tr;
    ex->trace_track = track;
}

po_status po_exec_set_slowdown(po_exec *ex, float factor) {
    if (!(factor >= 1.0f) || factor > 1000.0f)
        return po_fail(PO_ERR_INVALID_ARG, "slowdown must be between 1 and 1000, got %g", factor);
    ex->slowdown = factor;
    return PO_OK;
}

double po_exec_node_seconds(const po_exec *ex, const po_node *n) {
    if (!n || n->id >= ex->g->n_nodes || ex->g->nodes[n->id] != n) return 0.0;
    return ex->node_seconds[n->id];
}

int64_t po_exec_profiled_runs(const po_exec *ex) { return ex->profiled_runs; }

void po_exec_reset_profile(po_exec *ex) {
    memset(ex->node_seconds, 0, sizeof *ex->node_seconds * (size_t)(ex->g->n_nodes ? ex->g->n_nodes : 1));
    ex->profiled_runs = 0;
}

size_t po_exec_arena_bytes(const po_exec *ex) { return ex->plan.arena_bytes; }
size_t po_exec_scratch_bytes(const po_exec *ex) { return ex->plan.scratch_bytes; }

size_t po_exec_allocated_bytes(const po_exec *ex) {
    size_t total = ex->plan.arena_bytes + ex->plan.scratch_bytes;
    for (int i = 0; i < ex->g->n_nodes; i++)
        if (ex->input_bufs[i]) total += po__nbytes(ex->g->nodes[i]);
    return total;
}

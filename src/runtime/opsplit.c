#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "runtime/opsplit.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/memplan.h"
#include "graph/node.h"
#include "paropt/analyze.h"
#include "paropt/trace.h"
#include "runtime/exec_internal.h"
#include "runtime/balance.h"
#include "runtime/gemm_team.h"
#include "runtime/optim_split.h"
#include "ops/op_def.h"

bool po__opsplit_by_units(po_op op) {
    const po_op_def *def = po__op_def(op);
    return def->cpu_units && def->cpu_run_units;
}

double po__product_calls(const po_node *n) {
    po_shape s = po_node_shape(n);
    double c = 1.0;
    if (po_node_op(n) == PO_OP_MATMUL)
        for (int d = 0; d + 2 < s.ndim; d++)
            c *= (double)s.dim[d];
    if ((po_node_op(n) == PO_OP_CAUSAL_ATTENTION || po_node_op(n) == PO_OP_CAUSAL_ATTENTION_GRAD) && s.ndim > 0)
        c = (double)s.dim[0];
    return c > 0.0 ? c : 1.0;
}

double po__opsplit_call_flops(const po_node *n) { return po_node_cost(n).flops / po__product_calls(n); }

const po_node *po__opsplit_gathers(const po_node *n) {
    return po_node_op(n) == PO_OP_SUM_TO && po_node_n_inputs(n) == 1 ? po_node_input(n, 0) : NULL;
}

bool po__opsplit_node_splits(const po_node *n) {
    if (po__opsplit_rule(po_node_op(n), po__opsplit_call_flops(n))) return true;
    const po_node *in = po__opsplit_gathers(n);
    return in && (po__opsplit_node_splits(in) || po__opsplit_rides(in));
}

const po_node *po__opsplit_follows(const po_node *n) {
    po_op op = po_node_op(n);
    if ((op != PO_OP_RELU && op != PO_OP_RELU_GRAD) || po_node_n_inputs(n) < 1) return NULL;
    const po_node *p = po_node_input(n, 0);
    po_op pop = po_node_op(p);
    po_shape ps = po_node_shape(p), ns = po_node_shape(n);
    bool product = (pop == PO_OP_LINEAR || pop == PO_OP_MATMUL) && po__product_calls(p) == 1.0;
    return product && po_shape_numel(&ps) == po_shape_numel(&ns) ? p : NULL;
}

struct po_os {
    po_exec *ex;
    const po_graph *g;
    po__team *team;
    bool *split;     /* per node */
    int64_t *units;  /* per node: its units when it is split by units, else 0 */
    bool *sums;      /* per node: whether those units add up to its output (op_def units_sum) */
    int *ids;        /* 0 .. n_nodes - 1, for runs of consecutive nodes */
    void **scratch;  /* per member (member 0: NULL, the executor's own): for nodes split by units */
    float **partial; /* per member but the first: its contribution to a units_sum node's output */
    bool *wrote;     /* per member: whether its stretch of the current node had any units */
    int n_members;
    int unit_node; /* the node being split by units (a po__team_run task's argument) */
    int n_split;   /* nodes split as products or by units */
    int n_follow;  /* nodes run on a product's parts (follows[i] >= 0) */
    bool has_optimizer;
    int first_opt;         /* the optimizer's nodes are first_opt .. the last node, shared out; -1: none */
    po__opt_piece *opt;    /* the optimizer's updates shared out by element (runtime/optim_split.h) */
    int *opt_first;        /* member k applies opt[opt_first[k] .. opt_first[k + 1]) */
    int n_shared;          /* members opt_first describes (0: none) */
    int *fused_opt;        /* per node: the optimizer node applied right after it, by each member on
                              its rows of the weight gradient the node computed; -1: none */
    int fused_node;        /* the one being applied (a po__team_run task's argument) */
    int *follows;          /* per node: the split product it runs on the parts of, member by member
                              (po__opsplit_rides); -1: none */
    int64_t *parts;        /* per node: each member's part of its output in the product's last cut
                              (po__team_last_part: 4 per member), kept where a node follows it */
    bool *parts_ok;        /* per node: parts holds this step's cut */
    bool *followed;        /* per node: some node follows it */
    int follow_node;       /* the follower being run (a po__team_run task's argument) */
    int64_t follower_runs; /* followers run on their product's parts so far (not whole) */
    bool rebalance;        /* re-share by measured speed */
    po__balance bal;
    int64_t rebalances;
    po_trace *trace;
    double *compute_s; /* per member, last step */
    int first_core, n_cores;
    /* The main thread and its hand-off. */
    pthread_t thread;
    bool started, quit;
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    uint64_t generation, finished;
    po_status status;
    char error[512];
};

static double now_s(void) { return po_trace_now(); }

static const char *phase_name(po_phase p) {
    static const char *const names[] = {"forward", "backward", "optimizer"};
    return p <= PO_PHASE_OPTIMIZER ? names[p] : "other";
}

static po_status share_optimizer(po_os *os);

/* Member k's stretch of a node split by units: [cum_k, cum_(k+1)) of its units, cum being the
 * running sum of the shares, summed in one order so that neighbouring stretches meet. */
static po_status run_units(int k, void *arg) {
    po_os *os = arg;
    int n = po__team_size(os->team);
    int64_t units = os->units[os->unit_node];
    double before = 0.0;
    for (int i = 0; i < k; i++)
        before += po__team_share(os->team, i);
    double upto = before + po__team_share(os->team, k);
    int64_t lo = k == 0 ? 0 : llround(before * (double)units);
    int64_t hi = k == n - 1 ? units : llround(upto * (double)units);
    lo = lo > units ? units : lo;
    hi = hi < lo ? lo : hi > units ? units : hi;
    os->wrote[k] = hi > lo;
    bool sum = os->sums[os->unit_node];
    return po__exec_run_units(os->ex, os->unit_node, lo, hi, os->scratch[k], sum && k > 0 ? os->partial[k] : NULL);
}

/* A units_sum node's output: member 0's contribution (in place; zero when it had no units)
 * plus the others', added in member order so that a step's result does not vary. */
static void sum_partials(po_os *os, int node) {
    float *out = po__exec_node_buffer(os->ex, node);
    size_t n = po__exec_output_bytes(os->ex, node) / sizeof(float);
    if (!os->wrote[0]) memset(out, 0, n * sizeof(float));
    for (int k = 1; k < os->n_members; k++) {
        if (!os->wrote[k]) continue;
        const float *p = os->partial[k];
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] += p[i];
    }
}

/* Re-shares when the members' busy times on their parts drift apart (po__os_set_rebalance). */
static po_status maybe_reshare(po_os *os) {
    int n = po__team_size(os->team);
    double busy[PO__BALANCE_MAX_WORKERS], median[PO__BALANCE_MAX_WORKERS];
    for (int k = 0; k < n; k++)
        busy[k] = po__team_busy_s(os->team, k);
    if (!po__balance_step(&os->bal, busy, median)) return PO_OK;
    double speed[PO__BALANCE_MAX_WORKERS], total = 0.0, share[PO__BALANCE_MAX_WORKERS], moved = 0.0;
    double fastest = INFINITY, slowest = 0.0;
    for (int k = 0; k < n; k++) {
        if (!(median[k] > 0.0)) return PO_OK; /* a member with no part: nothing measured */
        speed[k] = po__team_share(os->team, k) / median[k];
        total += speed[k];
        fastest = fmin(fastest, median[k]);
        slowest = fmax(slowest, median[k]);
    }
    /* A member's part scales with its share (blocks of products, its stretch of the optimizer updates): the
     * target is the balance itself, up to noise and the lumps of the optimizer's deal. */
    double step = slowest > PO__BALANCE_FAR_APART * fastest ? 1.0 : 0.5;
    for (int k = 0; k < n; k++) {
        double old = po__team_share(os->team, k);
        share[k] = old + step * (speed[k] / total - old);
        moved = fmax(moved, fabs(share[k] - old));
    }
    if (moved < 0.01) return PO_OK; /* within the noise */
    int direction = share[0] > po__team_share(os->team, 0) ? 1 : -1;
    po_status st = po__team_set_shares(os->team, share);
    if (!st) st = share_optimizer(os);
    if (st) return st;
    po__balance_moved(&os->bal, direction);
    os->rebalances++;
    return PO_OK;
}

/* Member k's part of the optimizer: its stretch of the updates (runtime/optim_split.h). */
static po_status apply_optimizer(int k, void *arg) {
    po_os *os = arg;
    return po__optim_apply(os->ex, os->opt, os->opt_first, k);
}

/* Member k's elements [*lo, *hi) of fused update o: its rows of the weight gradient, cut by
 * the shares as the team cut the product's rows (the update is right whichever rows it takes;
 * the same cut keeps them in the cache of the member that computed them). */
static void fused_range(const po_os *os, int o, int k, int64_t *lo, int64_t *hi) {
    po_shape sh = po_node_shape(po_graph_node(os->g, o));
    int64_t rows = sh.dim[0], cols = rows ? po_shape_numel(&sh) / rows : 0, a, b;
    po__team_range(os->team, k, rows, 1, &a, &b);
    *lo = a * cols;
    *hi = b * cols;
}

/* Member k's part of the follower os->follow_node: the elements of its product's output that
 * member k computed, row by row (one run when the part is whole rows). */
static po_status run_follower(int k, void *arg) {
    po_os *os = arg;
    int j = os->follow_node, n = po__team_size(os->team);
    const int64_t *part = &os->parts[((size_t)os->follows[j] * (size_t)n + (size_t)k) * 4];
    po_shape sh = po_node_shape(po_graph_node(os->g, os->follows[j]));
    int64_t cols = sh.dim[sh.ndim - 1];
    if (part[2] == 0 && part[3] == cols) return po__exec_run_range(os->ex, j, part[0] * cols, part[1] * cols);
    po_status st = PO_OK;
    for (int64_t r = part[0]; r < part[1] && !st; r++)
        st = po__exec_run_range(os->ex, j, r * cols + part[2], r * cols + part[3]);
    return st;
}

/* Keeps the team's cut of product node p's output for its followers, when the cut is of that
 * output as a [rows, cols] matrix (its last dimension the columns); else marks it missing, and
 * the followers run whole on the main thread. */
static void keep_parts(po_os *os, int p) {
    int n = po__team_size(os->team);
    po_shape sh = po_node_shape(po_graph_node(os->g, p));
    int64_t cols = sh.ndim > 0 ? sh.dim[sh.ndim - 1] : 0, rows = cols > 0 ? po_shape_numel(&sh) / cols : 0, ldc,
            area = 0;
    bool ok = true;
    for (int k = 0; k < n && ok; k++) {
        int64_t *part = &os->parts[((size_t)p * (size_t)n + (size_t)k) * 4];
        ok = po__team_last_part(os->team, k, &ldc, part) == po__exec_node_buffer(os->ex, p) && ldc == cols &&
             part[0] >= 0 && part[0] <= part[1] && part[1] <= rows && part[2] >= 0 && part[2] <= part[3] &&
             part[3] <= cols;
        area += (part[1] - part[0]) * (part[3] - part[2]);
    }
    os->parts_ok[p] = ok && area == rows * cols;
}

static po_status apply_fused(int k, void *arg) {
    po_os *os = arg;
    int64_t lo, hi;
    fused_range(os, os->fused_node, k, &lo, &hi);
    return po__exec_run_range(os->ex, os->fused_node, lo, hi);
}

/* po_exec_run's work, node by node: runs of unsplit nodes as the executor runs them (traced,
 * slowed by member 0's factor), each split node with the team joined (its blocks slowed by
 * each member's factor, so the wait for helpers is not counted as member 0's work). */
static po_status run_step(po_os *os) {
    po__team_reset_stats(os->team);
    double t0 = now_s();
    int n = os->first_opt >= 0 ? os->first_opt : po_graph_size(os->g);
    po_status st = PO_OK;
    for (int i = 0; i < n && !st;) {
        if (!os->split[i]) {
            int j = i;
            while (j < n && !os->split[j])
                j++;
            st = po__exec_run_list(os->ex, os->ids + i, j - i);
            i = j;
            continue;
        }
        const po_node *nd = po_graph_node(os->g, i);
        const char *name = po_op_name(po_node_op(nd)), *cat = phase_name(po_node_phase(nd));
        double a = now_s();
        if (os->follows[i] >= 0) {
            os->follow_node = i;
            bool parts = os->parts_ok[os->follows[i]];
            st =
                parts ? po__team_run(os->team, run_follower, os, name, cat) : po_exec_run_nodes(os->ex, &os->ids[i], 1);
            os->follower_runs += parts;
        } else if (os->units[i] > 0) {
            os->unit_node = i;
            st = po__team_run(os->team, run_units, os, name, cat);
            if (!st && os->sums[i]) sum_partials(os, i);
        } else {
            po__team_join(os->team, name, cat);
            st = po_exec_run_nodes(os->ex, &os->ids[i], 1);
            po__team_leave();
            if (!st && os->followed[i]) keep_parts(os, i);
            if (!st && os->fused_opt && os->fused_opt[i] >= 0) {
                os->fused_node = os->fused_opt[i];
                st = po__team_run(os->team, apply_fused, os, "optimizer", "optimizer");
            }
        }
        if (po_trace_recording(os->trace)) po_trace_slice(os->trace, 0, name, cat, a, now_s());
        i++;
    }
    if (!st && os->first_opt >= 0) {
        double a = now_s();
        st = po__team_run(os->team, apply_optimizer, os, "optimizer", "optimizer");
        if (po_trace_recording(os->trace)) po_trace_slice(os->trace, 0, "optimizer", "optimizer", a, now_s());
    }
    if (!st) {
        po__exec_pay_idle(os->ex);
        if (os->has_optimizer) po_exec_set_steps(os->ex, po_exec_steps(os->ex) + 1);
    }
    os->compute_s[0] = now_s() - t0 - po__team_wait_s(os->team);
    for (int k = 1; k < po__team_size(os->team); k++)
        os->compute_s[k] = po__team_busy_s(os->team, k);
    if (!st && os->rebalance) st = maybe_reshare(os);
    return st;
}

static void *main_thread(void *arg) {
    po_os *os = arg;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&os->lock);
        while (!os->quit && os->generation == seen)
            pthread_cond_wait(&os->go, &os->lock);
        if (os->quit) {
            pthread_mutex_unlock(&os->lock);
            return NULL;
        }
        seen = os->generation;
        pthread_mutex_unlock(&os->lock);
        po_status st = run_step(os);
        pthread_mutex_lock(&os->lock);
        os->status = st;
        if (st) snprintf(os->error, sizeof os->error, "%s", po_last_error());
        os->finished = seen;
        pthread_cond_signal(&os->done);
        pthread_mutex_unlock(&os->lock);
    }
}

static void free_optimizer_share(po_os *os) {
    free(os->opt);
    free(os->opt_first);
    os->opt = NULL;
    os->opt_first = NULL;
    os->n_shared = 0;
}

/* The optimizer's updates shared out by the members' shares when there are several members and
 * the optimizer's nodes are the step's last (as po_graph_optimizer makes them); else
 * first_opt = -1 and the main thread runs them with the rest. */
static po_status share_optimizer(po_os *os) {
    int nodes = po_graph_size(os->g), n = po__team_size(os->team), first = nodes;
    free_optimizer_share(os);
    os->first_opt = -1;
    for (int i = 0; i < nodes; i++)
        os->fused_opt[i] = -1;
    while (first > 0 && po_node_phase(po_graph_node(os->g, first - 1)) == PO_PHASE_OPTIMIZER)
        first--;
    for (int i = 0; i < first; i++)
        if (po_node_phase(po_graph_node(os->g, i)) == PO_PHASE_OPTIMIZER) return PO_OK; /* not a tail */
    if (n < 2 || first == nodes || n > PO__BALANCE_MAX_WORKERS) return PO_OK;
    double shares[PO__BALANCE_MAX_WORKERS];
    for (int k = 0; k < n; k++)
        shares[k] = po__team_share(os->team, k);
    /* An update whose gradient is a split product's output, final once that product has run
     * and with no later node reading its parameter, runs right after the product: each member
     * updates the rows of the gradient it has just computed (po__exec_run_range on them), while
     * they are still in its caches. The others are shared out after the backward pass. */
    int *late = malloc(sizeof *late * (size_t)(nodes - first)), n_late = 0;
    if (!late) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int o = first; o < nodes; o++) {
        const po_node *opt = po_graph_node(os->g, o), *param = po__storage_root(opt->in[0]);
        const po_node *grad = opt->in[1];
        int gid = grad->id;
        bool ok = gid < first && os->split[gid] && os->units[gid] == 0 && po_node_op(grad) == PO_OP_MATMUL &&
                  grad->shape.ndim == 2 && po__exec_has_range(os->ex, o) && os->fused_opt[gid] < 0;
        for (int j = gid + 1; ok && j < first; j++) {
            const po_node *nd = po_graph_node(os->g, j);
            if (po__storage_root(nd) == po__storage_root(grad)) ok = false;
            for (int a = 0; ok && a < nd->n_in; a++)
                if (po__storage_root(nd->in[a]) == param) ok = false;
        }
        if (ok)
            os->fused_opt[gid] = o;
        else
            late[n_late++] = o;
    }
    po_status st = po__optim_split_exec(os->ex, late, n_late, shares, n, &os->opt, &os->opt_first);
    free(late);
    if (st) return st;
    os->n_shared = n;
    os->first_opt = first;
    return PO_OK;
}

po_status po__os_new(po_exec *ex, const po_worker_spec *members, int n, po_os **out) {
    *out = NULL;
    if (n < 1) return po_fail(PO_ERR_INVALID_ARG, "operator split needs at least one device");
    po_os *os = calloc(1, sizeof *os);
    if (!os) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    os->ex = ex;
    os->g = po_exec_graph(ex);
    os->first_core = members[0].first_core;
    os->n_cores = members[0].n_cores > 0 ? members[0].n_cores : 1;
    pthread_mutex_init(&os->lock, NULL);
    pthread_cond_init(&os->go, NULL);
    pthread_cond_init(&os->done, NULL);
    int nodes = po_graph_size(os->g);
    os->split = calloc((size_t)nodes + 1, sizeof *os->split);
    os->units = calloc((size_t)nodes + 1, sizeof *os->units);
    os->sums = calloc((size_t)nodes + 1, sizeof *os->sums);
    os->ids = calloc((size_t)nodes + 1, sizeof *os->ids);
    os->compute_s = calloc((size_t)n, sizeof *os->compute_s);
    os->fused_opt = calloc((size_t)nodes + 1, sizeof *os->fused_opt);
    os->follows = calloc((size_t)nodes + 1, sizeof *os->follows);
    os->followed = calloc((size_t)nodes + 1, sizeof *os->followed);
    os->parts_ok = calloc((size_t)nodes + 1, sizeof *os->parts_ok);
    os->parts = calloc(((size_t)nodes + 1) * (size_t)n * 4, sizeof *os->parts);
    po_status st = os->split && os->units && os->sums && os->ids && os->compute_s && os->fused_opt && os->follows &&
                           os->followed && os->parts_ok && os->parts
                       ? PO_OK
                       : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; !st && i < nodes; i++) {
        const po_node *nd = po_graph_node(os->g, i);
        os->ids[i] = i;
        /* One member has no one to share with: it runs every node as the executor would. */
        os->split[i] = n > 1 && po__opsplit_node_splits(nd);
        os->follows[i] = n > 1 && po__opsplit_rides(nd) ? po_node_id(po__opsplit_follows(nd)) : -1;
        if (os->follows[i] >= 0) {
            os->split[i] = true;
            os->followed[os->follows[i]] = true;
        }
        os->units[i] = os->split[i] && os->follows[i] < 0 ? po__exec_units(ex, i) : 0;
        os->sums[i] = os->units[i] > 0 && po__exec_units_sum(ex, i);
        os->n_split += os->split[i] && os->follows[i] < 0;
        os->n_follow += os->follows[i] >= 0;
        if (po_node_phase(nd) == PO_PHASE_OPTIMIZER) os->has_optimizer = true;
    }
    /* Scratch of its own for every member but the first, as large as any unit-split node's, and
     * room for its contribution to the largest units_sum node's output. */
    size_t scratch = 0, partial = 0;
    for (int i = 0; !st && i < nodes; i++) {
        if (os->units[i] == 0) continue;
        if (po__exec_scratch_bytes(ex, i) > scratch) scratch = po__exec_scratch_bytes(ex, i);
        if (os->sums[i] && po__exec_output_bytes(ex, i) > partial) partial = po__exec_output_bytes(ex, i);
    }
    os->scratch = st ? NULL : calloc((size_t)n, sizeof *os->scratch);
    os->partial = st ? NULL : calloc((size_t)n, sizeof *os->partial);
    os->wrote = st ? NULL : calloc((size_t)n, sizeof *os->wrote);
    os->n_members = os->scratch && os->partial && os->wrote ? n : 0;
    if (!st && !os->n_members) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int k = 1; !st && k < n; k++) {
        if (scratch > 0 && !(os->scratch[k] = aligned_alloc(64, (scratch + 63) / 64 * 64)))
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory for operator split's scratch");
        if (!st && partial > 0 && !(os->partial[k] = aligned_alloc(64, (partial + 63) / 64 * 64)))
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory for operator split's partial sums");
    }
    if (!st) st = po__team_new(members, n, &os->team);
    if (!st) st = share_optimizer(os);
    if (!st) {
        if (pthread_create(&os->thread, NULL, main_thread, os) != 0)
            st = po_fail(PO_ERR_NO_MEMORY, "cannot start the operator-split main thread");
        else
            os->started = true;
    }
    if (!st) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int c = os->first_core; c < os->first_core + os->n_cores; c++)
            CPU_SET(c, &set);
        if (pthread_setaffinity_np(os->thread, sizeof set, &set) != 0)
            st = po_fail(PO_ERR_INVALID_ARG, "cannot pin the operator-split main thread to cores %d-%d", os->first_core,
                         os->first_core + os->n_cores - 1);
    }
    if (st) {
        po__os_free(os);
        return st;
    }
    *out = os;
    return PO_OK;
}

void po__os_free(po_os *os) {
    if (!os) return;
    pthread_mutex_lock(&os->lock);
    os->quit = true;
    pthread_cond_broadcast(&os->go);
    pthread_mutex_unlock(&os->lock);
    if (os->started) pthread_join(os->thread, NULL);
    po__team_free(os->team);
    pthread_cond_destroy(&os->go);
    pthread_cond_destroy(&os->done);
    pthread_mutex_destroy(&os->lock);
    free_optimizer_share(os);
    for (int k = 0; k < os->n_members; k++) {
        free(os->scratch[k]);
        free(os->partial[k]);
    }
    free(os->scratch);
    free(os->partial);
    free(os->wrote);
    free(os->split);
    free(os->units);
    free(os->sums);
    free(os->ids);
    free(os->compute_s);
    free(os->fused_opt);
    free(os->follows);
    free(os->followed);
    free(os->parts_ok);
    free(os->parts);
    free(os);
}

po_status po__os_step(po_os *os) {
    pthread_mutex_lock(&os->lock);
    uint64_t gen = ++os->generation;
    pthread_cond_signal(&os->go);
    while (os->finished != gen)
        pthread_cond_wait(&os->done, &os->lock);
    po_status st = os->status;
    pthread_mutex_unlock(&os->lock);
    return st ? po_fail(st, "%s", os->error) : PO_OK;
}

int po__os_members(const po_os *os) { return po__team_size(os->team); }

po_status po__os_set_slowdown(po_os *os, int k, float factor) {
    po_status st = po__team_set_slowdown(os->team, k, factor);
    if (!st && k == 0) st = po_exec_set_slowdown(os->ex, factor);
    return st;
}

void po__os_stats(const po_os *os, int k, po_worker_stats *out) {
    *out = (po_worker_stats){0, os->compute_s[k], po__team_share(os->team, k)};
}

int64_t po__os_splits(const po_os *os) { return po__team_splits(os->team); }
int64_t po__os_k_splits(const po_os *os) { return po__team_k_splits(os->team); }
int64_t po__os_follower_runs(const po_os *os) { return os->follower_runs; }
int po__os_split_nodes(const po_os *os) { return os->n_split; }
int po__os_follower_nodes(const po_os *os) { return os->n_follow; }
void po__os_set_rebalance(po_os *os, bool on) {
    os->rebalance = on && po__team_size(os->team) > 1 && po__team_size(os->team) <= PO__BALANCE_MAX_WORKERS;
    po__balance_init(&os->bal, po__team_size(os->team));
}
int64_t po__os_rebalances(const po_os *os) { return os->rebalances; }
int po__os_fused_updates(const po_os *os) {
    int n = 0;
    for (int i = 0; i < po_graph_size(os->g); i++)
        n += os->fused_opt[i] >= 0;
    return n;
}

int64_t po__os_optimizer_elements(const po_os *os, int k) {
    int64_t e = 0, lo, hi;
    for (int i = 0; k >= 0 && k < po__team_size(os->team) && i < po_graph_size(os->g); i++)
        if (os->fused_opt[i] >= 0) {
            fused_range(os, os->fused_opt[i], k, &lo, &hi);
            e += hi - lo;
        }
    for (int p = k >= 0 && k < os->n_shared ? os->opt_first[k] : 0;
         k >= 0 && k < os->n_shared && p < os->opt_first[k + 1]; p++)
        e += os->opt[p].end - os->opt[p].begin;
    return e;
}

void po__os_set_trace(po_os *os, po_trace *tr) {
    os->trace = tr;
    po_exec_set_trace(os->ex, tr, 0);
    po__team_set_trace(os->team, tr);
}

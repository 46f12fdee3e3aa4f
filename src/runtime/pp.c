#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "runtime/pp.h"

#include "paropt/trace.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph/memplan.h"
#include "graph/node.h"
#include "ops/op_def.h"
#include "runtime/exec_internal.h"

enum { FWD = 0, BWD = 1 };

/* A tensor computed on one stage and read on another. */
typedef struct boundary {
    int node;                    /* its storage root */
    int producer;                /* stage that computes it */
    int phase;                   /* FWD or BWD: the phase it is computed in */
    size_t out_bytes, aux_bytes; /* its output and, when it has one in the arena, its saved state */
    char *staged;                /* m copies of output + aux, one per micro-batch */
} boundary;

/* One micro-batch in flight: an executor with gradients of its own. */
typedef struct slot {
    po_params *params;
    po_exec *exec;
} slot;

typedef struct stage {
    struct po_pp *pp;
    int index;
    int first_core, n_cores;
    int first_layer, last_layer;
    int n_slots;
    slot *slots;
    /* Per phase, what to do in order: a node id >= 0 to run, or -(b + 1) to copy boundary b in. */
    int *prog[2], n_prog[2];
    int *runs;                     /* consecutive run entries, handed to the executor at once */
    int *publish[2], n_publish[2]; /* boundaries it computes in each phase */
    int *grad_params, n_grad;      /* parameters whose gradient it computes */
    int *opt_ids, n_opt;           /* optimizer nodes of its layers (master executor) */
    bool *bdone;                   /* per micro-batch: backward done this step */
    /* Transfers received in the last step, drawn as flows by the controlling thread afterwards
     * (a flow is recorded on its sender's track, which this thread must not write). */
    bool *seen; /* [producer][phase][micro-batch] */
    struct flow {
        int from, phase;
        double t0, t1;
    } * flows;
    int n_flows;
    float slowdown;
    double compute_s; /* busy time in the last step */
    int in_flight, max_in_flight;
    pthread_t thread;
    bool started;
    po_status status;
    char error[512];
} stage;

struct po_pp {
    int k, m; /* stages, micro-batches */
    bool one_f_one_b;
    int64_t batch, rows;
    float weight;      /* rows / batch */
    po_model *model;   /* the graph every executor runs, at micro-batch rows */
    po_params *params; /* master storage */
    po_exec *exec;     /* master executor: the optimizer nodes, the step count */
    int *owner;        /* per node: stage */
    int *layer;        /* per node: the layer it is counted in (assign_owners) */
    boundary *b;
    int n_b;
    stage *s;
    int loss_stage;
    float *losses; /* per micro-batch */
    pthread_mutex_t lock;
    pthread_cond_t go, done, progress;
    uint64_t generation;
    int finished;
    bool quit, abort;
    uint64_t *done_gen; /* [stage][phase][micro-batch]: generation in which it was published */
    double *sent_t;     /* [stage][phase][micro-batch]: when */
    pthread_barrier_t barrier;
    bool barrier_made;
    const po_tensor *x, *y;
    po_trace *trace;
    int track_base, track_stride; /* stage s records on track track_base + s * track_stride */
    po__pp_update_fn update;      /* set: each stage's thread calls it in place of its optimizer */
    void *update_ctx;
};

static int track_of(const po_pp *pp, int stage) { return pp->track_base + stage * pp->track_stride; }

static size_t flag_index(const po_pp *pp, int stage, int phase, int j) {
    return ((size_t)stage * 2 + (size_t)phase) * (size_t)pp->m + (size_t)j;
}

static void fail_stage(stage *s, po_status st) {
    po_pp *pp = s->pp;
    pthread_mutex_lock(&pp->lock);
    if (!s->status) {
        s->status = st;
        snprintf(s->error, sizeof s->error, "stage %d: %s", s->index, po_last_error());
    }
    pp->abort = true;
    pthread_cond_broadcast(&pp->progress);
    pthread_mutex_unlock(&pp->lock);
}

/* Waits until `stage` has published `phase` of micro-batch j in step gen; false when the step
 * was aborted (another stage failed). */
static bool wait_for(po_pp *pp, int stage, int phase, int j, uint64_t gen) {
    size_t f = flag_index(pp, stage, phase, j);
    pthread_mutex_lock(&pp->lock);
    while (pp->done_gen[f] != gen && !pp->abort)
        pthread_cond_wait(&pp->progress, &pp->lock);
    bool ok = pp->done_gen[f] == gen;
    pthread_mutex_unlock(&pp->lock);
    return ok;
}

static void publish(stage *s, int phase, int j, po_exec *ex, uint64_t gen) {
    po_pp *pp = s->pp;
    for (int i = 0; i < s->n_publish[phase]; i++) {
        const boundary *b = &pp->b[s->publish[phase][i]];
        char *dst = b->staged + (size_t)j * (b->out_bytes + b->aux_bytes);
        memcpy(dst, po__exec_node_buffer(ex, b->node), b->out_bytes);
        if (b->aux_bytes) memcpy(dst + b->out_bytes, po__exec_node_aux(ex, b->node), b->aux_bytes);
    }
    pthread_mutex_lock(&pp->lock);
    size_t f = flag_index(pp, s->index, phase, j);
    pp->done_gen[f] = gen;
    pp->sent_t[f] = po_trace_now();
    pthread_cond_broadcast(&pp->progress);
    pthread_mutex_unlock(&pp->lock);
}

static po_status run_runs(stage *s, po_exec *ex, int *n) {
    if (!*n) return PO_OK;
    double t0 = po_trace_now();
    po_status st = po__exec_run_list(ex, s->runs, *n);
    s->compute_s += po_trace_now() - t0;
    *n = 0;
    return st;
}

/* Runs phase `phase` of micro-batch j on executor ex; false when it failed or was aborted. */
static bool run_phase(stage *s, int phase, int j, po_exec *ex, uint64_t gen) {
    po_pp *pp = s->pp;
    int n = 0;
    po_status st = PO_OK;
    for (int k = 0; k < s->n_prog[phase] && !st; k++) {
        int e = s->prog[phase][k];
        if (e >= 0) {
            s->runs[n++] = e;
            continue;
        }
        if ((st = run_runs(s, ex, &n))) break;
        const boundary *b = &pp->b[-e - 1];
        if (!wait_for(pp, b->producer, b->phase, j, gen)) return false;
        const char *src = b->staged + (size_t)j * (b->out_bytes + b->aux_bytes);
        memcpy(po__exec_node_buffer(ex, b->node), src, b->out_bytes);
        if (b->aux_bytes) memcpy(po__exec_node_aux(ex, b->node), src + b->out_bytes, b->aux_bytes);
        size_t f = flag_index(pp, b->producer, b->phase, j);
        if (po_trace_recording(pp->trace) && !s->seen[f]) {
            s->seen[f] = true;
            s->flows[s->n_flows++] = (struct flow){b->producer, b->phase, pp->sent_t[f], po_trace_now()};
        }
    }
    if (!st) st = run_runs(s, ex, &n);
    double t0 = po_trace_now();
    po__exec_pay_idle(ex);
    s->compute_s += po_trace_now() - t0;
    if (st) fail_stage(s, st);
    return !st;
}

static void copy_rows(const po_tensor *src, int64_t first, int64_t rows, po_node *input, po_exec *ex) {
    size_t row = (size_t)(po_tensor_numel(src) / src->shape.dim[0]) * po_dtype_size(src->dtype);
    memcpy(po_exec_input_data(ex, input), (const char *)src->data + (size_t)first * row, (size_t)rows * row);
}

static bool forward(stage *s, int j, uint64_t gen) {
    po_pp *pp = s->pp;
    if (s->in_flight >= s->n_slots) {
        fail_stage(s, po_fail(PO_ERR_INVALID_ARG, "internal: micro-batch %d has no free executor", j));
        return false;
    }
    if (++s->in_flight > s->max_in_flight) s->max_in_flight = s->in_flight;
    po_exec *ex = s->slots[j % s->n_slots].exec;
    copy_rows(pp->x, (int64_t)j * pp->rows, pp->rows, pp->model->x, ex);
    copy_rows(pp->y, (int64_t)j * pp->rows, pp->rows, pp->model->y, ex);
    if (!run_phase(s, FWD, j, ex, gen)) return false;
    if (s->index == pp->loss_stage) pp->losses[j] = *(const float *)po__exec_node_buffer(ex, pp->model->loss->id);
    publish(s, FWD, j, ex, gen);
    return true;
}

/* Master gradient += (rows / batch) * micro-batch j's, for the parameters this stage computes
 * the gradient of; micro-batch 0 sets it. Always in micro-batch order, whatever the schedule. */
static void accumulate(stage *s, int j) {
    po_pp *pp = s->pp;
    float *g = po_params_grads(pp->params);
    const float *gj = po_params_grads(s->slots[j % s->n_slots].params);
    float w = pp->weight;
    for (int i = 0; i < s->n_grad; i++) {
        const po_param_info *pi = po_params_info(pp->params, s->grad_params[i]);
        size_t a = pi->offset, e = pi->offset + (size_t)pi->numel;
        if (j == 0) {
#pragma omp simd
            for (size_t x = a; x < e; x++)
                g[x] = w * gj[x];
        } else {
#pragma omp simd
            for (size_t x = a; x < e; x++)
                g[x] += w * gj[x];
        }
    }
}

static bool backward(stage *s, int j, int *next, uint64_t gen) {
    po_pp *pp = s->pp;
    po_exec *ex = s->slots[j % s->n_slots].exec;
    if (!run_phase(s, BWD, j, ex, gen)) return false;
    publish(s, BWD, j, ex, gen);
    s->bdone[j] = true;
    double t0 = po_trace_now();
    bool acc = false;
    while (*next < pp->m && s->bdone[*next]) {
        accumulate(s, *next);
        s->in_flight--;
        ++*next;
        acc = true;
    }
    double t1 = po_trace_now();
    s->compute_s += t1 - t0;
    if (acc && po_trace_recording(pp->trace))
        po_trace_slice(pp->trace, track_of(pp, s->index), "accumulate", "communication", t0, t1);
    return true;
}

/* An emulated slow device idles (F - 1) times the work it did since `since`. */
static void emulate_slowness(const stage *s, double since) {
    if (s->slowdown <= 1.0f) return;
    double idle = (po_trace_now() - since) * (double)(s->slowdown - 1.0f);
    struct timespec ts = {(time_t)idle, (long)((idle - (double)(time_t)idle) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void step_stage(stage *s, uint64_t gen) {
    po_pp *pp = s->pp;
    int m = pp->m, next = 0;
    s->compute_s = 0.0;
    s->in_flight = 0;
    memset(s->bdone, 0, (size_t)m * sizeof *s->bdone);
    memset(s->seen, 0, (size_t)pp->k * 2 * (size_t)m * sizeof *s->seen);
    s->n_flows = 0;
    bool ok = true;
    if (!pp->one_f_one_b) {
        for (int j = 0; j < m && ok; j++)
            ok = forward(s, j, gen);
        for (int j = m - 1; j >= 0 && ok; j--)
            ok = backward(s, j, &next, gen);
    } else {
        int warm = pp->k - s->index - 1 < m ? pp->k - s->index - 1 : m;
        for (int j = 0; j < warm && ok; j++)
            ok = forward(s, j, gen);
        for (int j = 0; j < m - warm && ok; j++) {
            ok = forward(s, j + warm, gen);
            if (ok) ok = backward(s, j, &next, gen);
        }
        for (int j = m - warm; j < m && ok; j++)
            ok = backward(s, j, &next, gen);
    }
    /* Every stage reaches the barrier, failed or not: none is left waiting. */
    pthread_barrier_wait(&pp->barrier);
    pthread_mutex_lock(&pp->lock);
    ok = ok && !pp->abort;
    pthread_mutex_unlock(&pp->lock);
    if (pp->update) {
        double u0 = po_trace_now();
        po_status st = pp->update(pp->update_ctx, s->index, ok);
        if (ok && st) fail_stage(s, st);
        if (ok) emulate_slowness(s, u0);
        return;
    }
    if (!ok) return;
    double o0 = po_trace_now();
    po_status st = po_exec_run_nodes(pp->exec, s->opt_ids, s->n_opt);
    if (st) fail_stage(s, st);
    emulate_slowness(s, o0);
    if (po_trace_recording(pp->trace))
        po_trace_slice(pp->trace, track_of(pp, s->index), "optimizer", "optimizer", o0, po_trace_now());
}

static void *stage_main(void *arg) {
    stage *s = arg;
    po_pp *pp = s->pp;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&pp->lock);
        while (!pp->quit && pp->generation == seen)
            pthread_cond_wait(&pp->go, &pp->lock);
        if (pp->quit) {
            pthread_mutex_unlock(&pp->lock);
            return NULL;
        }
        seen = pp->generation;
        pthread_mutex_unlock(&pp->lock);
        step_stage(s, seen);
        pthread_mutex_lock(&pp->lock);
        if (++pp->finished == pp->k) pthread_cond_signal(&pp->done);
        pthread_mutex_unlock(&pp->lock);
    }
}

static po_status pin(stage *s) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = s->first_core; c < s->first_core + s->n_cores; c++)
        CPU_SET(c, &set);
    if (s->first_core < 0 || pthread_setaffinity_np(s->thread, sizeof set, &set) != 0)
        return po_fail(PO_ERR_INVALID_ARG, "cannot pin pipeline stage %d to cores %d-%d", s->index, s->first_core,
                       s->first_core + s->n_cores - 1);
    return PO_OK;
}

static po_status check_opts(const po_pipeline_opts *opts, int64_t batch, int n_layers) {
    if (!opts || opts->n_stages < 1 || !opts->stages)
        return po_fail(PO_ERR_INVALID_ARG, "pipeline: at least one stage is needed");
    if (opts->n_stages > PO__PP_MAX_STAGES)
        return po_fail(PO_ERR_INVALID_ARG, "pipeline: at most %d stages, got %d", PO__PP_MAX_STAGES, opts->n_stages);
    if (opts->micro_batches < 1 || batch % opts->micro_batches != 0)
        return po_fail(PO_ERR_INVALID_ARG, "pipeline: micro_batches %d must be positive and divide the batch %lld",
                       opts->micro_batches, (long long)batch);
    int expect = 0;
    for (int i = 0; i < opts->n_stages; i++) {
        const po_pipeline_stage *st = &opts->stages[i];
        if (st->first_layer != expect || st->last_layer < st->first_layer)
            return po_fail(PO_ERR_INVALID_ARG,
                           "pipeline: stage %d has layers %d-%d, expected a range starting at layer %d (stages must "
                           "cover layers 0-%d in order)",
                           i, st->first_layer, st->last_layer, expect, n_layers - 1);
        expect = st->last_layer + 1;
    }
    if (expect != n_layers)
        return po_fail(PO_ERR_INVALID_ARG, "pipeline: the stages cover layers 0-%d, the model has layers 0-%d",
                       expect - 1, n_layers - 1);
    return PO_OK;
}

/* Stage of every node: its layer's, or for nodes outside every layer the layer of the closest
 * earlier node that has one (layer 0 before the first). */
static void assign_owners(po_pp *pp, const po_pipeline_opts *opts) {
    const po_graph *g = pp->model->graph;
    int last = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        int l = g->nodes[i]->layer;
        if (l >= 0) last = l;
        int layer = l >= 0 ? l : last < 0 ? 0 : last;
        pp->layer[i] = layer;
        int s = 0;
        while (s < pp->k - 1 && layer > opts->stages[s].last_layer)
            s++;
        pp->owner[i] = s;
    }
}

static bool is_storage(const po_node *r) { return r->store == PO_STORE_ARENA || r->store == PO_STORE_GRAD; }

/* Finds the boundaries and the phase in which each stage first needs each (need[s * n_b + b],
 * -1: never); marks arena boundaries kept so no executor reuses their bytes. */
static po_status find_boundaries(po_pp *pp, int **need_out) {
    po_graph *g = pp->model->graph;
    int n = g->n_nodes;
    int *bidx = malloc((size_t)n * sizeof *bidx);
    if (!bidx) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < n; i++)
        bidx[i] = -1;
    po_status st = PO_OK;
    for (int pass = 0; pass < 2 && !st; pass++) {
        for (int i = 0; i < n && !st; i++) {
            const po_node *c = g->nodes[i];
            if (c->phase == PO_PHASE_OPTIMIZER || c->store == PO_STORE_VIEW) continue;
            int cs = pp->owner[i], cp = c->phase == PO_PHASE_FORWARD ? FWD : BWD;
            for (int k = 0; k < c->n_in && !st; k++) {
                const po_node *r = po__storage_root(c->in[k]);
                int ps = pp->owner[r->id];
                if (!is_storage(r) || ps == cs) continue;
                int pph = r->phase == PO_PHASE_FORWARD ? FWD : BWD;
                if (pass == 0) {
                    /* A stage may read forward work of earlier stages while going forward, and
                     * anything forward or later stages' backward work while going backward. */
                    bool fine = cp == FWD ? pph == FWD && ps < cs : pph == FWD || ps > cs;
                    if (!fine) {
                        st = po_fail(PO_ERR_UNSUPPORTED,
                                     "pipeline: this cut makes stage %d's %s pass read stage %d's %s work (node %d, "
                                     "%s); choose other layer ranges",
                                     cs, cp == FWD ? "forward" : "backward", ps, pph == FWD ? "forward" : "backward",
                                     r->id, po_op_name(r->op));
                        break;
                    }
                    if (bidx[r->id] < 0) {
                        bidx[r->id] = pp->n_b++;
                    }
                } else {
                    int *need = *need_out;
                    int *e = &need[(size_t)cs * (size_t)pp->n_b + (size_t)bidx[r->id]];
                    if (*e < 0 || cp < *e) *e = cp;
                }
            }
        }
        if (pass == 0 && !st) {
            pp->b = calloc((size_t)(pp->n_b ? pp->n_b : 1), sizeof *pp->b);
            *need_out = malloc((size_t)pp->k * (size_t)(pp->n_b ? pp->n_b : 1) * sizeof **need_out);
            if (!pp->b || !*need_out) {
                st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
                break;
            }
            for (size_t e = 0; e < (size_t)pp->k * (size_t)pp->n_b; e++)
                (*need_out)[e] = -1;
            for (int i = 0; i < n; i++) {
                if (bidx[i] < 0) continue;
                po_node *r = g->nodes[i];
                boundary *b = &pp->b[bidx[i]];
                b->node = i;
                b->producer = pp->owner[i];
                b->phase = r->phase == PO_PHASE_FORWARD ? FWD : BWD;
                b->out_bytes = po__nbytes(r);
                b->aux_bytes = r->aux_bytes && r->aux_store == PO_AUX_ARENA ? r->aux_bytes : 0;
                b->staged = malloc((b->out_bytes + b->aux_bytes) * (size_t)pp->m + 1);
                if (!b->staged) st = po_fail(PO_ERR_NO_MEMORY, "out of memory for pipeline staging buffers");
                if (r->store == PO_STORE_ARENA) po_graph_keep(g, r);
            }
        }
    }
    free(bidx);
    return st;
}

typedef struct {
    int key, code;
} entry;

static int by_key(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

/* Stage s's program for each phase, its published boundaries, gradients and optimizer nodes. */
static po_status plan_stage(po_pp *pp, stage *s, const int *need) {
    const po_graph *g = pp->model->graph;
    int n = g->n_nodes;
    entry *e = malloc((size_t)(n + pp->n_b + 1) * sizeof *e);
    s->runs = malloc((size_t)(n + 1) * sizeof *s->runs);
    s->opt_ids = malloc((size_t)(n + 1) * sizeof *s->opt_ids);
    s->grad_params = malloc((size_t)(g->n_params + 1) * sizeof *s->grad_params);
    s->bdone = calloc((size_t)pp->m, sizeof *s->bdone);
    s->seen = calloc((size_t)pp->k * 2 * (size_t)pp->m, sizeof *s->seen);
    s->flows = calloc((size_t)pp->k * 2 * (size_t)pp->m, sizeof *s->flows);
    for (int p = 0; p < 2; p++) {
        s->prog[p] = malloc((size_t)(n + pp->n_b + 1) * sizeof *s->prog[p]);
        s->publish[p] = malloc((size_t)(pp->n_b + 1) * sizeof *s->publish[p]);
    }
    if (!e || !s->runs || !s->opt_ids || !s->grad_params || !s->bdone || !s->seen || !s->flows || !s->prog[0] ||
        !s->prog[1] || !s->publish[0] || !s->publish[1]) {
        free(e);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int p = 0; p < 2; p++) {
        int ne = 0;
        for (int i = 0; i < n; i++) {
            const po_node *nd = g->nodes[i];
            int ph = nd->phase == PO_PHASE_FORWARD ? FWD : nd->phase == PO_PHASE_BACKWARD ? BWD : -1;
            if (ph == p && pp->owner[i] == s->index && po__op_has_work(po__op_def(nd->op))) e[ne++] = (entry){i, i};
        }
        for (int b = 0; b < pp->n_b; b++)
            if (need[(size_t)s->index * (size_t)pp->n_b + (size_t)b] == p) e[ne++] = (entry){pp->b[b].node, -(b + 1)};
        /* Each tensor arrives where its producer would have run: the memory plan stays valid. */
        qsort(e, (size_t)ne, sizeof *e, by_key);
        for (int i = 0; i < ne; i++)
            s->prog[p][i] = e[i].code;
        s->n_prog[p] = ne;
        s->n_publish[p] = 0;
        for (int b = 0; b < pp->n_b; b++)
            if (pp->b[b].producer == s->index && pp->b[b].phase == p) s->publish[p][s->n_publish[p]++] = b;
    }
    free(e);
    s->n_grad = 0;
    for (int p = 0; p < g->n_params; p++)
        if (pp->owner[g->params[p]->grad->id] == s->index) s->grad_params[s->n_grad++] = p;
    s->n_opt = 0;
    for (int i = 0; i < n; i++)
        if (g->nodes[i]->phase == PO_PHASE_OPTIMIZER && pp->owner[i] == s->index) s->opt_ids[s->n_opt++] = i;
    return PO_OK;
}

static po_status build_slots(po_pp *pp, stage *s) {
    s->n_slots = pp->one_f_one_b && pp->k - s->index < pp->m ? pp->k - s->index : pp->m;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    if (!s->slots) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_status st = PO_OK;
    for (int i = 0; i < s->n_slots && !st; i++) {
        st = po_params_new_replica(pp->params, &s->slots[i].params);
        if (!st) st = po_exec_new(pp->model->graph, s->slots[i].params, &s->slots[i].exec);
    }
    return st;
}

static po_status build(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                       const po_pipeline_opts *opts, po_params *share, po_params *own, po_pp **out);

po_status po__pp_new(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                     const po_pipeline_opts *opts, po_pp **out) {
    return build(spec, batch, o, seed, opts, NULL, NULL, out);
}

po_status po__pp_new_lane(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                          const po_pipeline_opts *opts, po_params *share, po_pp **out) {
    return build(spec, batch, o, seed, opts, share, NULL, out);
}

po_status po__pp_new_adopting(const char *spec, int64_t batch, const po_optim_opts *o, const po_pipeline_opts *opts,
                              po_params *own, po_pp **out) {
    return build(spec, batch, o, 0, opts, NULL, own, out);
}

/* share: values and state shared with another pipeline; own: adopted as the master storage
 * (left to the caller on failure); neither: storage of its own initialised from seed. */
static po_status build(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                       const po_pipeline_opts *opts, po_params *share, po_params *own, po_pp **out) {
    *out = NULL;
    po_status st = po_optim_opts_check(o);
    if (st) return st;
    if (!opts || opts->micro_batches < 1 || batch % opts->micro_batches != 0) return check_opts(opts, batch, 0);
    po_pp *pp = calloc(1, sizeof *pp);
    if (!pp) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    pp->k = opts->n_stages;
    pp->m = opts->micro_batches;
    pp->one_f_one_b = opts->one_f_one_b;
    pp->batch = batch;
    pp->rows = batch / pp->m;
    pp->weight = (float)((double)pp->rows / (double)batch);
    pp->track_stride = 1;
    pthread_mutex_init(&pp->lock, NULL);
    pthread_cond_init(&pp->go, NULL);
    pthread_cond_init(&pp->done, NULL);
    pthread_cond_init(&pp->progress, NULL);
    st = po_model_build(spec, pp->rows, &pp->model);
    if (!st) {
        po_graph *g = pp->model->graph;
        st = po_graph_backward(g, pp->model->loss);
        if (!st) st = po_graph_add_optimizer(g, o);
        if (st) st = po_fail(st, "%s", po_graph_error(g));
    }
    if (!st) {
        int n_layers = po_graph_n_layers(pp->model->graph);
        st = check_opts(opts, batch, n_layers > 0 ? n_layers : 1);
    }
    if (!st && pthread_barrier_init(&pp->barrier, NULL, (unsigned)pp->k) != 0)
        st = po_fail(PO_ERR_NO_MEMORY, "cannot create a barrier");
    else if (!st)
        pp->barrier_made = true;
    int n = st ? 0 : pp->model->graph->n_nodes;
    if (!st) {
        pp->owner = malloc((size_t)(n + 1) * sizeof *pp->owner);
        pp->layer = malloc((size_t)(n + 1) * sizeof *pp->layer);
        pp->s = calloc((size_t)pp->k, sizeof *pp->s);
        pp->losses = calloc((size_t)pp->m, sizeof *pp->losses);
        pp->done_gen = calloc((size_t)pp->k * 2 * (size_t)pp->m, sizeof *pp->done_gen);
        pp->sent_t = calloc((size_t)pp->k * 2 * (size_t)pp->m, sizeof *pp->sent_t);
        if (!pp->owner || !pp->layer || !pp->s || !pp->losses || !pp->done_gen || !pp->sent_t)
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    int *need = NULL;
    if (!st) {
        assign_owners(pp, opts);
        pp->loss_stage = pp->owner[pp->model->loss->id];
        st = find_boundaries(pp, &need);
    }
    /* Master storage from the graph with the optimizer: the values po_trainer_new draws (or,
     * for a lane, another pipeline's values and state with gradients of its own). */
    if (!st && own) {
        pp->params = own; /* po_exec_new checks that it belongs to this graph and optimizer */
    } else if (!st && share) {
        if (po_params_count(share) != pp->model->graph->n_params)
            st = po_fail(PO_ERR_INVALID_ARG, "pipeline: the shared parameters belong to another model");
        if (!st) st = po_params_new_replica(share, &pp->params);
    } else if (!st) {
        st = po_params_new(pp->model->graph, &pp->params);
        if (!st) po_params_init(pp->params, seed);
    }
    if (!st) st = po_exec_new(pp->model->graph, pp->params, &pp->exec);
    for (int i = 0; i < pp->k && !st; i++) {
        stage *s = &pp->s[i];
        s->pp = pp;
        s->index = i;
        s->first_core = opts->stages[i].worker.first_core;
        s->n_cores = opts->stages[i].worker.n_cores > 0 ? opts->stages[i].worker.n_cores : 1;
        s->first_layer = opts->stages[i].first_layer;
        s->last_layer = opts->stages[i].last_layer;
        s->slowdown = 1.0f;
        st = plan_stage(pp, s, need);
        if (!st) st = build_slots(pp, s);
    }
    free(need);
    for (int i = 0; i < pp->k && !st; i++) {
        if (pthread_create(&pp->s[i].thread, NULL, stage_main, &pp->s[i]) != 0) {
            st = po_fail(PO_ERR_NO_MEMORY, "cannot start pipeline stage thread %d", i);
            break;
        }
        pp->s[i].started = true;
        st = pin(&pp->s[i]);
    }
    if (st) {
        if (own && pp->params == own) pp->params = NULL; /* still the caller's */
        po__pp_free(pp);
        return st;
    }
    *out = pp;
    return PO_OK;
}

void po__pp_free(po_pp *pp) {
    if (!pp) return;
    pthread_mutex_lock(&pp->lock);
    pp->quit = true;
    pthread_cond_broadcast(&pp->go);
    pthread_mutex_unlock(&pp->lock);
    for (int i = 0; pp->s && i < pp->k; i++)
        if (pp->s[i].started) pthread_join(pp->s[i].thread, NULL);
    for (int i = 0; pp->s && i < pp->k; i++) {
        stage *s = &pp->s[i];
        for (int j = 0; s->slots && j < s->n_slots; j++) {
            po_exec_free(s->slots[j].exec);
            po_params_free(s->slots[j].params);
        }
        free(s->slots);
        for (int p = 0; p < 2; p++) {
            free(s->prog[p]);
            free(s->publish[p]);
        }
        free(s->runs);
        free(s->grad_params);
        free(s->opt_ids);
        free(s->bdone);
        free(s->seen);
        free(s->flows);
    }
    po_exec_free(pp->exec);
    po_params_free(pp->params);
    for (int i = 0; pp->b && i < pp->n_b; i++)
        free(pp->b[i].staged);
    free(pp->b);
    po_model_free(pp->model);
    free(pp->owner);
    free(pp->layer);
    free(pp->s);
    free(pp->losses);
    free(pp->done_gen);
    free(pp->sent_t);
    if (pp->barrier_made) pthread_barrier_destroy(&pp->barrier);
    pthread_cond_destroy(&pp->go);
    pthread_cond_destroy(&pp->done);
    pthread_cond_destroy(&pp->progress);
    pthread_mutex_destroy(&pp->lock);
    free(pp);
}

void po__pp_start(po_pp *pp, const po_tensor *x, const po_tensor *y) {
    pthread_mutex_lock(&pp->lock);
    pp->x = x;
    pp->y = y;
    pp->finished = 0;
    pp->abort = false;
    for (int i = 0; i < pp->k; i++)
        pp->s[i].status = PO_OK;
    pp->generation++;
    pthread_cond_broadcast(&pp->go);
    pthread_mutex_unlock(&pp->lock);
}

po_status po__pp_finish(po_pp *pp, float *loss) {
    pthread_mutex_lock(&pp->lock);
    while (pp->finished < pp->k)
        pthread_cond_wait(&pp->done, &pp->lock);
    pthread_mutex_unlock(&pp->lock);
    for (int i = 0; i < pp->k; i++)
        if (pp->s[i].status) return po_fail(pp->s[i].status, "%s", pp->s[i].error);
    for (int i = 0; i < pp->k; i++)
        for (int f = 0; f < pp->s[i].n_flows; f++) {
            const struct flow *fl = &pp->s[i].flows[f];
            po_trace_flow(pp->trace, track_of(pp, fl->from), track_of(pp, i),
                          fl->phase == FWD ? "activations" : "gradients", fl->t0, fl->t1);
        }
    double total = 0.0;
    for (int j = 0; j < pp->m; j++)
        total += (double)pp->weight * (double)pp->losses[j];
    if (!pp->update) po_exec_set_steps(pp->exec, po_exec_steps(pp->exec) + 1);
    if (loss) *loss = (float)total;
    return PO_OK;
}

po_status po__pp_step(po_pp *pp, const po_tensor *x, const po_tensor *y, float *loss) {
    po__pp_start(pp, x, y);
    return po__pp_finish(pp, loss);
}

void po__pp_set_update(po_pp *pp, po__pp_update_fn fn, void *ctx) {
    pp->update = fn;
    pp->update_ctx = fn ? ctx : NULL;
}

int po__pp_stage_params(const po_pp *pp, int s, const int **ids) {
    *ids = pp->s[s].grad_params;
    return pp->s[s].n_grad;
}

int po__pp_stage_optimizer(const po_pp *pp, int s, const int **ids) {
    *ids = pp->s[s].opt_ids;
    return pp->s[s].n_opt;
}

po_params *po__pp_params(po_pp *pp) { return pp->params; }
po_exec *po__pp_exec(po_pp *pp) { return pp->exec; }
int po__pp_stages(const po_pp *pp) { return pp->k; }
int64_t po__pp_rows(const po_pp *pp) { return pp->rows; }

po_status po__pp_set_slowdown(po_pp *pp, int i, float factor) {
    if (i < 0 || i >= pp->k) return po_fail(PO_ERR_INVALID_ARG, "no pipeline stage %d", i);
    po_status st = PO_OK;
    for (int j = 0; j < pp->s[i].n_slots && !st; j++)
        st = po_exec_set_slowdown(pp->s[i].slots[j].exec, factor);
    if (!st) pp->s[i].slowdown = factor;
    return st;
}

void po__pp_stats(const po_pp *pp, int i, po_worker_stats *out) {
    *out = (po_worker_stats){pp->rows, pp->s[i].compute_s, (double)pp->rows / (double)pp->batch};
}

void po__pp_set_trace(po_pp *pp, po_trace *tr) {
    pp->trace = tr;
    for (int i = 0; i < pp->k; i++)
        for (int j = 0; j < pp->s[i].n_slots; j++)
            po_exec_set_trace(pp->s[i].slots[j].exec, tr, track_of(pp, i));
}

void po__pp_set_tracks(po_pp *pp, int base, int stride) {
    pp->track_base = base;
    pp->track_stride = stride;
}

int po__pp_slots(const po_pp *pp, int i) { return i >= 0 && i < pp->k ? pp->s[i].n_slots : 0; }
int po__pp_max_in_flight(const po_pp *pp, int i) { return i >= 0 && i < pp->k ? pp->s[i].max_in_flight : 0; }

po_params *po__pp_release_params(po_pp *pp) {
    po_params *p = pp->params;
    pp->params = NULL;
    return p;
}

void po__pp_inherit(po_pp *to, const po_pp *from) {
    po_exec_set_steps(to->exec, po_exec_steps(from->exec));
    po__pp_set_update(to, from->update, from->update_ctx);
    po__pp_set_tracks(to, from->track_base, from->track_stride);
    po__pp_set_trace(to, from->trace);
    for (int i = 0; i < to->k && i < from->k; i++) {
        if (from->s[i].slowdown > 1.0f) po__pp_set_slowdown(to, i, from->s[i].slowdown);
        to->s[i].compute_s = from->s[i].compute_s;
    }
}

void po__pp_stage_layers(const po_pp *pp, int i, int *first, int *last) {
    *first = pp->s[i].first_layer;
    *last = pp->s[i].last_layer;
}

int po__pp_n_layers(const po_pp *pp) {
    int n = po_graph_n_layers(pp->model->graph);
    return n > 0 ? n : 1;
}

int po__pp_node_layer(const po_pp *pp, int node) { return pp->layer[node]; }

void po__pp_set_profiling(po_pp *pp, bool on) {
    for (int i = 0; i < pp->k; i++)
        for (int j = 0; j < pp->s[i].n_slots; j++)
            po_exec_set_profiling(pp->s[i].slots[j].exec, on);
}

void po__pp_take_layer_seconds(po_pp *pp, int i, double *secs) {
    const po_graph *g = pp->model->graph;
    stage *s = &pp->s[i];
    for (int j = 0; j < s->n_slots; j++) {
        po_exec *ex = s->slots[j].exec;
        for (int n = 0; n < g->n_nodes; n++)
            if (pp->owner[n] == i && g->nodes[n]->phase != PO_PHASE_OPTIMIZER)
                secs[pp->layer[n]] += po_exec_node_seconds(ex, g->nodes[n]);
        po_exec_reset_profile(ex);
    }
}

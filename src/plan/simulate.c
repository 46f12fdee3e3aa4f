/* Discrete-event simulation of one training step of a plan.
 *
 * Tasks (compute of one layer and phase for one micro-batch on one replica, a node's share under
 * operator split, a transfer, an all-reduce of one layer's gradients, an optimizer update) hold
 * resources (a device's compute, a directed link, a stage's collective channel), each resource
 * running its tasks one at a time in a fixed order (the schedule), and depend on other tasks.
 * A task starts when its dependencies and its resources' previous tasks have ended: one pass of
 * Kahn's algorithm over dependencies plus resource order gives every start and end time, which is
 * what an event queue would give for fixed per-resource orders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"
#include "ops/op_def.h"
#include "runtime/opsplit.h"

enum { TK_F, TK_B, TK_OPT, TK_AR, TK_XFER, TK_OP };

typedef struct {
    double dur, ready, end;
    int kind, slot; /* slot: plan device index for compute tasks, -1 otherwise */
    po__tparts parts;
    int layer; /* TK_F/TK_B: layer (for in-flight counting) */
} task;

typedef struct {
    int *v, n, cap;
} ivec;

static po_status ivec_push(ivec *a, int x) {
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 16;
        int *nv = realloc(a->v, (size_t)cap * sizeof(int));
        if (!nv) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return PO_OK;
}

typedef struct {
    int a, b, res;
} link_res;

typedef struct {
    po__eval *e;
    const po_plan *p;
    const po_cluster *c;
    task *t;
    int n_t, cap_t;
    ivec from, to; /* dependencies */
    ivec *seq;     /* per resource: tasks in order */
    int n_res, cap_res;
    link_res *links;
    int n_links, cap_links;
    po_status st;
    /* plan devices */
    int n_slots;
    int *dev;   /* cluster index per slot */
    int *stage; /* stage per slot */
    int *rep;   /* replica index within its stage */
    double *rows;
    int *slot_of; /* [stage][replica] flattened: first slot of each stage */
    double *link_busy;
} sim;

static int new_task(sim *s, int kind, int slot, double dur, const po__tparts *parts, int layer) {
    if (s->st) return -1;
    if (s->n_t == s->cap_t) {
        int cap = s->cap_t ? 2 * s->cap_t : 1024;
        task *nt = realloc(s->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            s->st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            return -1;
        }
        s->t = nt;
        s->cap_t = cap;
    }
    task *t = &s->t[s->n_t];
    memset(t, 0, sizeof *t);
    t->dur = dur > 0.0 ? dur : 0.0;
    t->kind = kind;
    t->slot = slot;
    t->layer = layer;
    if (parts) t->parts = *parts;
    return s->n_t++;
}

static void dep(sim *s, int from, int to) {
    if (s->st || from < 0 || to < 0) return;
    if ((s->st = ivec_push(&s->from, from))) return;
    s->st = ivec_push(&s->to, to);
}

static int new_resource(sim *s) {
    if (s->st) return -1;
    if (s->n_res == s->cap_res) {
        int cap = s->cap_res ? 2 * s->cap_res : 64;
        ivec *ns = realloc(s->seq, (size_t)cap * sizeof *ns);
        if (!ns) {
            s->st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            return -1;
        }
        s->seq = ns;
        s->cap_res = cap;
    }
    s->seq[s->n_res] = (ivec){NULL, 0, 0};
    return s->n_res++;
}

static void use(sim *s, int res, int task_id) {
    if (s->st || res < 0 || task_id < 0) return;
    s->st = ivec_push(&s->seq[res], task_id);
}

static int link_resource(sim *s, int a, int b) {
    for (int i = 0; i < s->n_links; i++)
        if (s->links[i].a == a && s->links[i].b == b) return s->links[i].res;
    if (s->n_links == s->cap_links) {
        int cap = s->cap_links ? 2 * s->cap_links : 16;
        link_res *nl = realloc(s->links, (size_t)cap * sizeof *nl);
        if (!nl) {
            s->st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            return -1;
        }
        s->links = nl;
        s->cap_links = cap;
    }
    int r = new_resource(s);
    s->links[s->n_links++] = (link_res){a, b, r};
    return r;
}

/* A transfer task on link a -> b after `after` (may be -1). */
static int transfer(sim *s, int a, int b, double bytes, int after) {
    double d = po_cost_model_transfer_s(s->e->cm, a, b, bytes);
    int t = new_task(s, TK_XFER, -1, d, NULL, -1);
    dep(s, after, t);
    if (a != b) use(s, link_resource(s, a, b), t);
    return t;
}

/* Kahn's algorithm over dependencies and resource order. */
static po_status run(sim *s) {
    if (s->st) return s->st;
    int n = s->n_t;
    int n_edges = s->from.n;
    for (int r = 0; r < s->n_res; r++)
        n_edges += s->seq[r].n > 0 ? s->seq[r].n - 1 : 0;
    int *head = malloc((size_t)(n + 1) * sizeof(int)), *adj = malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int));
    int *pending = calloc((size_t)(n ? n : 1), sizeof(int)), *queue = malloc((size_t)(n ? n : 1) * sizeof(int));
    int *src = malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int)),
        *dst = malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int));
    po_status st = PO_OK;
    if (!head || !adj || !pending || !queue || !src || !dst) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    if (!st) {
        int k = 0;
        for (int i = 0; i < s->from.n; i++, k++) {
            src[k] = s->from.v[i];
            dst[k] = s->to.v[i];
        }
        for (int r = 0; r < s->n_res; r++)
            for (int i = 1; i < s->seq[r].n; i++, k++) {
                src[k] = s->seq[r].v[i - 1];
                dst[k] = s->seq[r].v[i];
            }
        memset(head, 0, (size_t)(n + 1) * sizeof(int));
        for (int i = 0; i < n_edges; i++)
            head[src[i] + 1]++;
        for (int i = 0; i < n; i++)
            head[i + 1] += head[i];
        int *fill = calloc((size_t)(n ? n : 1), sizeof(int));
        if (!fill) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; !st && i < n_edges; i++) {
            adj[head[src[i]] + fill[src[i]]++] = dst[i];
            pending[dst[i]]++;
        }
        free(fill);
    }
    if (!st) {
        int qh = 0, qt = 0, done = 0;
        for (int i = 0; i < n; i++) {
            s->t[i].ready = 0.0;
            if (!pending[i]) queue[qt++] = i;
        }
        while (qh < qt) {
            int u = queue[qh++];
            done++;
            s->t[u].end = s->t[u].ready + s->t[u].dur;
            for (int k = head[u]; k < head[u + 1]; k++) {
                int v = adj[k];
                if (s->t[u].end > s->t[v].ready) s->t[v].ready = s->t[u].end;
                if (--pending[v] == 0) queue[qt++] = v;
            }
        }
        if (done != n)
            st = po_fail(PO_ERR_INVALID_ARG, "simulator: the schedule deadlocks (%d of %d tasks ran)", done, n);
    }
    free(head), free(adj), free(pending), free(queue), free(src), free(dst);
    return st;
}

static void sim_free(sim *s) {
    free(s->t);
    free(s->from.v);
    free(s->to.v);
    for (int r = 0; r < s->n_res; r++)
        free(s->seq[r].v);
    free(s->seq);
    free(s->links);
    free(s->dev);
    free(s->stage);
    free(s->rep);
    free(s->rows);
    free(s->slot_of);
}

static bool all_cpu(const sim *s, int stage) {
    const po_plan_stage *st = &s->p->stages[stage];
    for (int r = 0; r < st->n_replicas; r++)
        if (s->c->dev[s->dev[s->slot_of[stage] + r]].dev.kind != PO_DEVICE_CPU) return false;
    return true;
}

static bool shared_group(const sim *s, int stage) {
    const po_plan_stage *st = &s->p->stages[stage];
    int g = s->c->dev[s->dev[s->slot_of[stage]]].memory_group;
    if (g < 0) return false;
    for (int r = 1; r < st->n_replicas; r++)
        if (s->c->dev[s->dev[s->slot_of[stage] + r]].memory_group != g) return false;
    return true;
}

/* --- stage plans: single, dp, pp, hybrid ---------------------------------------------------- */

/* Whether the plan keeps another device of d's memory group busy (contention applies). */
static bool busy_neighbours(const sim *s, int d) {
    int g = s->c->dev[d].memory_group;
    if (g < 0) return false;
    for (int q = 0; q < s->n_slots; q++)
        if (s->dev[q] != d && s->c->dev[s->dev[q]].memory_group == g) return true;
    return false;
}

/* How much slower device d computes in this plan: its measured contention when other devices
 * of the plan share its memory and compute at once, else 1. */
static double sharing_slowdown(const sim *s, int d) {
    return busy_neighbours(s, d) ? po_cost_model_contention(s->e->cm, d) : 1.0;
}

static void scale(po__tparts *t, double k) { t->t *= k, t->flop_s *= k, t->byte_s *= k, t->over_s *= k; }

static po_status build_stages(sim *s, int **peak_inflight) {
    const po_plan *p = s->p;
    const po_workload *w = s->e->w;
    int S = p->n_stages, m = p->micro_batches;
    /* task ids: F and B per slot, micro-batch and layer of its stage */
    int **F = calloc((size_t)s->n_slots, sizeof(int *)), **Bk = calloc((size_t)s->n_slots, sizeof(int *));
    *peak_inflight = calloc((size_t)s->n_slots, sizeof(int));
    if (!F || !Bk || !*peak_inflight) {
        free(F), free(Bk);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    po_status st = PO_OK;
    for (int q = 0; !st && q < s->n_slots; q++) {
        const po_plan_stage *sg = &p->stages[s->stage[q]];
        int nl = sg->last_layer - sg->first_layer + 1;
        F[q] = malloc((size_t)m * (size_t)nl * sizeof(int));
        Bk[q] = malloc((size_t)m * (size_t)nl * sizeof(int));
        if (!F[q] || !Bk[q]) {
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            break;
        }
        int d = s->dev[q];
        double rows = s->rows[q];
        double refwd = 0.0;
        double slow = sharing_slowdown(s, d);
        if (sg->recompute)
            for (int l = sg->first_layer; l <= sg->last_layer; l++)
                refwd += po__layer_time(s->e, l, PO_PHASE_FORWARD, d, rows).t;
        for (int mb = 0; mb < m; mb++)
            for (int l = sg->first_layer; l <= sg->last_layer; l++) {
                po__tparts f = po__layer_time(s->e, l, PO_PHASE_FORWARD, d, rows);
                po__tparts b = po__layer_time(s->e, l, PO_PHASE_BACKWARD, d, rows);
                if (sg->recompute && l == sg->last_layer) {
                    double k = b.t > 0.0 ? (b.t + refwd) / b.t : 1.0;
                    b.t += refwd;
                    b.flop_s *= k, b.byte_s *= k, b.over_s *= k;
                }
                scale(&f, slow);
                scale(&b, slow);
                F[q][mb * nl + (l - sg->first_layer)] = new_task(s, TK_F, q, f.t, &f, l);
                Bk[q][mb * nl + (l - sg->first_layer)] = new_task(s, TK_B, q, b.t, &b, l);
            }
    }
    /* Boundary transfers between consecutive stages, replica to matching replica. */
    for (int sgi = 0; !st && sgi + 1 < S; sgi++) {
        const po_plan_stage *a = &p->stages[sgi], *b = &p->stages[sgi + 1];
        int nla = a->last_layer - a->first_layer + 1, nlb = b->last_layer - b->first_layer + 1;
        bool pair = a->n_replicas == b->n_replicas;
        for (int mb = 0; mb < m; mb++) {
            for (int k = 0; k < b->n_replicas; k++) { /* forward: activations to stage sgi + 1 */
                int qb = s->slot_of[sgi + 1] + k, qa = s->slot_of[sgi] + (pair ? k : k % a->n_replicas);
                int x = transfer(s, s->dev[qa], s->dev[qb], po__cut_bytes(w, a->last_layer, s->rows[qb]), -1);
                for (int r = 0; r < a->n_replicas; r++)
                    if (!pair || r == k) dep(s, F[s->slot_of[sgi] + r][mb * nla + nla - 1], x);
                dep(s, x, F[qb][mb * nlb]);
            }
            for (int k = 0; k < a->n_replicas; k++) { /* backward: gradients to stage sgi */
                int qa = s->slot_of[sgi] + k, qb = s->slot_of[sgi + 1] + (pair ? k : k % b->n_replicas);
                int x = transfer(s, s->dev[qb], s->dev[qa], po__cut_bytes(w, a->last_layer, s->rows[qa]), -1);
                for (int r = 0; r < b->n_replicas; r++)
                    if (!pair || r == k) dep(s, Bk[s->slot_of[sgi + 1] + r][mb * nlb], x);
                dep(s, x, Bk[qa][mb * nla + nla - 1]);
            }
        }
    }
    /* Each replica's compute order, then the all-reduce and the optimizer. */
    for (int sgi = 0; !st && sgi < S; sgi++) {
        const po_plan_stage *sg = &p->stages[sgi];
        int nl = sg->last_layer - sg->first_layer + 1, nr = sg->n_replicas;
        int warm = S - sgi - 1 < m ? S - sgi - 1 : m;
        for (int k = 0; k < nr; k++) {
            int q = s->slot_of[sgi] + k, res = q, inflight = 0, peak = 0;
            /* GPipe (and NONE): every forward, then every backward. 1F1B: `warm` forwards, then one
             * forward and one backward in turn, then the remaining backwards. */
            int *order = malloc((size_t)(2 * m) * sizeof(int)), n_order = 0; /* mb: forward; -(mb + 1): backward */
            if (!order) {
                st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
                break;
            }
            if (p->schedule != PO_SCHEDULE_1F1B) {
                for (int mb = 0; mb < m; mb++)
                    order[n_order++] = mb;
                for (int mb = 0; mb < m; mb++)
                    order[n_order++] = -(mb + 1);
            } else {
                int nf = 0;
                for (; nf < warm; nf++)
                    order[n_order++] = nf;
                for (int nb = 0; nb < m; nb++) {
                    if (nf < m) order[n_order++] = nf++;
                    order[n_order++] = -(nb + 1);
                }
            }
            for (int o = 0; o < n_order; o++) {
                if (order[o] >= 0) {
                    for (int l = 0; l < nl; l++)
                        use(s, res, F[q][order[o] * nl + l]);
                    if (++inflight > peak) peak = inflight;
                } else {
                    int mb = -order[o] - 1;
                    for (int l = nl - 1; l >= 0; l--)
                        use(s, res, Bk[q][mb * nl + l]);
                    inflight--;
                }
            }
            free(order);
            (*peak_inflight)[q] = peak;
        }
        bool cpu = all_cpu(s, sgi);
        /* Replicas over shared memory (data parallel's, and a hybrid plan's stage's: its lanes'
         * workers of the stage, runtime/hybrid.c) share the stage's optimizer updates out by
         * element in proportion to their shares (runtime/optim_split.h); else each applies all. */
        bool shared_opt = nr > 1 && shared_group(s, sgi);
        int *devs = malloc((size_t)nr * sizeof(int));
        if (!devs) {
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            break;
        }
        for (int k = 0; k < nr; k++)
            devs[k] = s->dev[s->slot_of[sgi] + k];
        int channel = nr > 1 && !cpu ? new_resource(s) : -1;
        int *ar = malloc((size_t)nl * sizeof(int));
        if (!ar) {
            free(devs);
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            break;
        }
        for (int l = nl - 1; l >= 0; l--) {
            ar[l] = -1;
            if (nr < 2) continue;
            double bytes = w->grad_bytes[sg->first_layer + l];
            ar[l] = new_task(s, TK_AR, -1, po_cost_model_allreduce_s(s->e->cm, devs, nr, bytes), NULL, -1);
            for (int k = 0; k < nr; k++)
                dep(s, Bk[s->slot_of[sgi] + k][(m - 1) * nl + l], ar[l]);
            if (cpu)
                for (int k = 0; k < nr; k++)
                    use(s, s->slot_of[sgi] + k, ar[l]);
            else
                use(s, channel, ar[l]);
        }
        for (int k = 0; k < nr; k++) {
            int q = s->slot_of[sgi] + k;
            for (int l = nl - 1; l >= 0; l--) {
                po__tparts o = po__layer_time(s->e, sg->first_layer + l, PO_PHASE_OPTIMIZER, s->dev[q], s->rows[q]);
                scale(&o, (shared_opt ? sg->replicas[k].share : 1.0) * sharing_slowdown(s, s->dev[q]));
                /* Every replica read all of the stage's parameters: updating its part, a replica
                 * first takes those lines back from the others' caches (the link's reclaim
                 * cost). Without it mnist_mlp's two-core data parallel was predicted 21% fast on
                 * the Zen 5 VM (4.53 ms against 5.47), its updates taking 0.9-1.2 ms a core
                 * against 0.36 predicted (0.84 with it); with it, 4 alternated runs of 200 steps
                 * were predicted 3-8% fast. */
                if (shared_opt) {
                    double r = po_cost_model_reclaim_s(s->e->cm, devs, nr, s->dev[q],
                                                       sg->replicas[k].share * w->param_bytes[sg->first_layer + l]);
                    o.t += r;
                    o.byte_s += r;
                }
                int t = new_task(s, TK_OPT, q, o.t, &o, sg->first_layer + l);
                dep(s, ar[l], t);
                use(s, q, t);
            }
        }
        free(ar);
        free(devs);
    }
    for (int q = 0; q < s->n_slots; q++) {
        free(F[q]);
        free(Bk[q]);
    }
    free(F);
    free(Bk);
    return st ? st : s->st;
}

/* --- operator split ------------------------------------------------------------------------ */

/* The first of the optimizer nodes when they are the step's last nodes (as the runtime deals
 * them out, runtime/opsplit.c), else -1. */
static int optimizer_tail(const po_workload *w) {
    int first = w->n_nodes;
    while (first > 0 && w->nodes[first - 1].phase == PO_PHASE_OPTIMIZER)
        first--;
    for (int i = 0; i < first; i++)
        if (w->nodes[i].phase == PO_PHASE_OPTIMIZER) return -1;
    return first < w->n_nodes ? first : -1;
}

/* Operator split's optimizer: its updates shared out by element in proportion to the shares,
 * as the runtime does (runtime/optim_split.h), every member applying its part at once after
 * the last of prev: member k takes share_k of every update's time on its device. */
static void deal_optimizer(sim *s, int first_opt, const int *prev, int n_prev) {
    const po_workload *w = s->e->w;
    const po_plan_stage *sg = &s->p->stages[0];
    int n = sg->n_replicas;
    for (int k = 0; k < n && !s->st; k++) {
        po__tparts sum = {0, 0, 0, 0};
        int layer = -1;
        for (int i = first_opt; i < w->n_nodes; i++) {
            const po__wnode *nd = &w->nodes[i];
            if (po__aff(nd->flops, (double)w->batch) == 0.0 && po__aff(nd->bytes, (double)w->batch) == 0.0) continue;
            po__tparts part;
            po__node_seconds(s->e->cm, w, nd, s->dev[k], (double)w->batch, &part);
            sum.t += part.t, sum.flop_s += part.flop_s, sum.byte_s += part.byte_s, sum.over_s += part.over_s;
            layer = nd->layer;
        }
        if (layer < 0) continue;
        scale(&sum, sg->replicas[k].share * sharing_slowdown(s, s->dev[k]));
        int t = new_task(s, TK_OPT, k, sum.t, &sum, layer);
        for (int j = 0; j < n_prev; j++)
            dep(s, prev[j], t);
        use(s, k, t);
    }
}

static po_status build_opsplit(sim *s, po__sim_out *out, double *moved_static, double *extra) {
    const po_workload *w = s->e->w;
    const po_plan_stage *sg = &s->p->stages[0];
    int n = sg->n_replicas, main = 0;
    double rows = (double)w->batch;
    double state_ratio = 0.0, pb = 0.0;
    for (int l = 0; l < w->n_layers; l++) {
        pb += w->param_bytes[l];
        state_ratio += w->state_bytes[l];
    }
    state_ratio = pb > 0.0 ? state_ratio / pb : 0.0;
    int *prev = malloc((size_t)(n + 1) * sizeof(int)), *next = malloc((size_t)(n + 1) * sizeof(int));
    if (!prev || !next) {
        free(prev), free(next);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    int n_prev = 0;
    int first_opt = n > 1 ? optimizer_tail(w) : -1;
    int nodes = first_opt >= 0 ? first_opt : w->n_nodes;
    for (int i = 0; i < nodes && !s->st; i++) {
        const po__wnode *nd = &w->nodes[i];
        if (po__aff(nd->flops, rows) == 0.0 && po__aff(nd->bytes, rows) == 0.0) continue;
        po__tparts whole;
        po__node_seconds(s->e->cm, w, nd, s->dev[main], rows, &whole);
        out->gemm_ops += nd->splittable;
        /* Exactly the nodes the runtime splits (runtime/opsplit.h), whether or not splitting one
         * is predicted to pay: the plan is scored as it will run, and loses to single where
         * splitting does not pay overall. */
        bool split = n > 1 && po__wnode_splits(w, i, rows);
        double in = po__aff(nd->in_bytes, rows), ob = po__aff(nd->out_bytes, rows);
        int n_next = 0;
        /* A node the runtime runs on a split product's parts (po__opsplit_rides): each member
         * its share of the elements, in place, once the product is done. */
        bool rides = n > 1 && po__wnode_rides(w, i, rows);
        if (rides) {
            out->ride_ops++;
            for (int k = 0; k < n; k++) {
                po__tparts part;
                po__node_seconds(s->e->cm, w, nd, s->dev[k], rows, &part);
                scale(&part, sg->replicas[k].share * sharing_slowdown(s, s->dev[k]));
                /* Its output feeds the next split product, which the other members read (all
                 * of it, for x W^T cut by W's rows): writing its part, a member first takes
                 * those lines back from their caches, as a replica does its parameters'. On
                 * mnist_mlp over two cores a member's part of a ReLU took 52-57 us against 11
                 * at half the one-core speed; with the reclaim of 256 KiB, 37-48. */
                double r = po_cost_model_reclaim_s(s->e->cm, s->dev, n, s->dev[k], sg->replicas[k].share * ob);
                part.t += r;
                part.byte_s += r;
                int c = new_task(s, TK_OP, k, part.t, &part, nd->layer);
                for (int j = 0; j < n_prev; j++)
                    dep(s, prev[j], c);
                use(s, k, c);
                next[n_next++] = c;
            }
        } else if (!split) {
            int t = new_task(s, TK_OP, main, whole.t, &whole, nd->layer);
            for (int k = 0; k < n_prev; k++)
                dep(s, prev[k], t);
            use(s, main, t);
            next[n_next++] = t;
        } else {
            out->split_ops++;
            for (int k = 0; k < n; k++) {
                double sh = sg->replicas[k].share;
                /* A block is the whole product's measured time on this device scaled by the
                 * roofline from the whole to the block (the GEMM curve's loss of efficiency for
                 * smaller calls), slowed by contention when the others compute too. Not a
                 * smaller batch's measurement: a block of a weight gradient's rows keeps the
                 * whole batch as its inner dimension, and is as efficient as the whole (that
                 * rule predicted mnist_mlp's operator split 15% slow). */
                po__tparts part;
                po__node_seconds(s->e->cm, w, nd, s->dev[k], rows, &part);
                double r1 = po__node_roofline(s->e->cm, nd, s->dev[k], rows, 1.0);
                double rs = po__node_roofline(s->e->cm, nd, s->dev[k], rows, sh);
                scale(&part, (r1 > 0.0 ? rs / r1 : sh) * sharing_slowdown(s, s->dev[k]));
                int c = new_task(s, TK_OP, k, part.t, &part, nd->layer);
                if (k == main) {
                    for (int j = 0; j < n_prev; j++)
                        dep(s, prev[j], c);
                    next[n_next++] = c;
                } else {
                    /* A helper of a product's block gets its inputs first (its rows of one
                     * operand, all of the other). A node split by units reads its slice in place,
                     * as the node's measured work does (charging the slice as a transfer too
                     * predicted tiny_gpt's and cifar_cnn's operator splits 12-36% slow). A node
                     * split by units hands back its block of the output (a whole output to add up
                     * for a weight gradient summed over samples). A product's block is written in
                     * place in shared memory, where the next node reads it as it would the whole
                     * product's: charging it as a transfer too predicted mnist_mlp's operator split
                     * 4-13% slow in calm runs (-8 to +2% without); dropping the units' charge as
                     * well made cifar_cnn's 7% fast. */
                    bool units = po__opsplit_by_units(nd->op);
                    int x = transfer(s, s->dev[main], s->dev[k], units ? 0.0 : in, -1);
                    for (int j = 0; j < n_prev; j++)
                        dep(s, prev[j], x);
                    dep(s, x, c);
                    bool sums = units && po__op_def(nd->op)->units_sum;
                    next[n_next++] = transfer(s, s->dev[k], s->dev[main], sums ? ob : units ? ob * sh : 0.0, c);
                }
                use(s, k, c);
                double pm = nd->param_bytes * sh * (2.0 + state_ratio);
                if (k != main) {
                    moved_static[k] += pm;
                    moved_static[main] -= pm;
                    extra[k] = fmax(extra[k], in + ob * sh);
                }
            }
        }
        memcpy(prev, next, (size_t)n_next * sizeof(int));
        n_prev = n_next;
    }
    if (first_opt >= 0 && !s->st) deal_optimizer(s, first_opt, prev, n_prev);
    free(prev);
    free(next);
    return s->st;
}

/* --- results --------------------------------------------------------------------------------- */

void po__sim_out_free(po__sim_out *o) {
    if (!o) return;
    free(o->d);
    memset(o, 0, sizeof *o);
}

po_status po__simulate(po__eval *e, const po_plan *p, po__sim_out *out) {
    memset(out, 0, sizeof *out);
    const po_cluster *c = e->c;
    po_status st = po_plan_validate(p, e->w, c);
    if (st) return st;
    sim s;
    memset(&s, 0, sizeof s);
    s.e = e;
    s.p = p;
    s.c = c;
    st = po__plan_devices(p, c, &s.dev, &s.n_slots);
    if (st) return st;
    s.stage = malloc((size_t)s.n_slots * sizeof(int));
    s.rep = malloc((size_t)s.n_slots * sizeof(int));
    s.rows = malloc((size_t)s.n_slots * sizeof(double));
    s.slot_of = malloc((size_t)p->n_stages * sizeof(int));
    out->d = calloc((size_t)s.n_slots, sizeof *out->d);
    double *moved = calloc((size_t)s.n_slots, sizeof(double)), *extra = calloc((size_t)s.n_slots, sizeof(double));
    int *peak_inflight = NULL;
    if (!s.stage || !s.rep || !s.rows || !s.slot_of || !out->d || !moved || !extra)
        st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    int q = 0;
    for (int sg = 0; !st && sg < p->n_stages; sg++) {
        s.slot_of[sg] = q;
        for (int r = 0; r < p->stages[sg].n_replicas; r++, q++) {
            s.stage[q] = sg;
            s.rep[q] = r;
            s.rows[q] = p->stages[sg].replicas[r].share * (double)e->w->batch / p->micro_batches;
        }
    }
    for (int k = 0; !st && k < s.n_slots; k++)
        if (new_resource(&s) != k) st = s.st ? s.st : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    out->n_dev = s.n_slots;
    out->busiest_link_from = out->busiest_link_to = -1;
    if (!st)
        st = p->strategy == PO_STRATEGY_OPSPLIT ? build_opsplit(&s, out, moved, extra)
                                                : build_stages(&s, &peak_inflight);
    if (!st) st = run(&s);
    if (!st) {
        double T = 0.0;
        for (int i = 0; i < s.n_t; i++)
            T = fmax(T, s.t[i].end);
        /* Over several devices the step runs on threads of their own: the caller wakes them and
         * is woken at the end, a round trip of wake-ups the one-device plan, run on the caller's
         * thread, does not make. On the Zen 5 VM, 41 us each way (paropt devices); mnist_mlp's
         * operator split spent 42-66 us a step on the two hand-offs, and cifar_cnn's data-parallel
         * workers started 40-50 us apart (the caller's wake-up at the end not timed). Without it, a small
         * mnist_mlp (256 inputs, 512 hidden, batch 64) with one core 3x slower was planned as
         * an operator split predicted 0.85 ms, measured 0.94-1.04, against 0.89 on one core. */
        T += 2.0 * po_cost_model_wake_s(e->cm, s.dev, s.n_slots);
        out->step_s = T;
        for (int k = 0; k < s.n_slots; k++)
            out->d[k].dev = s.dev[k];
        for (int i = 0; i < s.n_t; i++) {
            const task *t = &s.t[i];
            if (t->slot >= 0) {
                po__sim_device *d = &out->d[t->slot];
                d->busy_s += t->dur;
                d->flop_s += t->parts.flop_s;
                d->byte_s += t->parts.byte_s;
                d->over_s += t->parts.over_s;
            }
        }
        /* CPU all-reduces take their workers' time; links and channels carry the rest. */
        for (int r = 0; r < s.n_res; r++) {
            double busy = 0.0;
            bool is_link = false;
            int la = -1, lb = -1;
            for (int li = 0; li < s.n_links; li++)
                if (s.links[li].res == r) is_link = true, la = s.links[li].a, lb = s.links[li].b;
            for (int i = 0; i < s.seq[r].n; i++) {
                const task *t = &s.t[s.seq[r].v[i]];
                busy += t->dur;
                if (t->kind == TK_AR && r < s.n_slots) {
                    out->d[r].busy_s += t->dur;
                    out->d[r].comm_s += t->dur;
                }
            }
            if (is_link && busy > out->busiest_link_s) {
                out->busiest_link_s = busy;
                out->busiest_link_from = la;
                out->busiest_link_to = lb;
            }
        }
        out->energy_known = true;
        out->fits = true;
        out->worst_mem = 0;
        for (int k = 0; k < s.n_slots; k++) {
            po__sim_device *d = &out->d[k];
            const po_cluster_device *cd = &c->dev[s.dev[k]];
            const po_plan_stage *sg = &p->stages[s.stage[k]];
            if (d->busy_s > T) d->busy_s = T;
            if (p->strategy == PO_STRATEGY_OPSPLIT) {
                if (k == 0)
                    d->peak_bytes =
                        po_workload_memory_bytes(e->w, 0, e->w->n_layers - 1, s.rows[k], 1, false) + moved[0];
                else
                    d->peak_bytes = moved[k] + extra[k];
            } else {
                d->peak_bytes = po_workload_memory_bytes(e->w, sg->first_layer, sg->last_layer, s.rows[k],
                                                         peak_inflight[k], sg->recompute);
            }
            d->energy_j = po_cost_model_energy_j(e->cm, s.dev[k], d->busy_s, T);
            if (!isfinite(d->energy_j)) out->energy_known = false;
            out->energy_j += d->energy_j;
            double ratio = d->peak_bytes / (double)cd->dev.memory_bytes;
            if (ratio > 1.0) out->fits = false;
            if (ratio > out->worst_mem_ratio) {
                out->worst_mem_ratio = ratio;
                out->worst_mem = k;
            }
            out->compute_max_s = fmax(out->compute_max_s, d->busy_s);
        }
        /* Devices sharing memory: their peaks together. */
        for (int k = 0; k < s.n_slots; k++) {
            int g = c->dev[s.dev[k]].memory_group;
            if (g < 0) continue;
            double sum = 0.0;
            for (int j = 0; j < s.n_slots; j++)
                if (c->dev[s.dev[j]].memory_group == g) sum += out->d[j].peak_bytes;
            if (sum > (double)c->dev[s.dev[k]].dev.memory_bytes) out->fits = false;
        }
        if (!out->energy_known) out->energy_j = NAN;
        /* All-reduce totals per stage: AR tasks carry no slot; recompute from the cost model. */
        for (int sg = 0; p->strategy != PO_STRATEGY_OPSPLIT && sg < p->n_stages; sg++) {
            const po_plan_stage *st2 = &p->stages[sg];
            if (st2->n_replicas < 2) continue;
            double t = 0.0;
            for (int l = st2->first_layer; l <= st2->last_layer; l++)
                t += po_cost_model_allreduce_s(e->cm, s.dev + s.slot_of[sg], st2->n_replicas, e->w->grad_bytes[l]);
            if (t > out->allreduce_s) {
                out->allreduce_s = t;
                out->allreduce_stage = sg;
            }
        }
    }
    free(peak_inflight);
    free(moved);
    free(extra);
    sim_free(&s);
    if (st) po__sim_out_free(out);
    return st;
}

po_status po__prediction_from_sim(const po__sim_out *s, const po_plan *p, const po_cluster *c, po_prediction *pred) {
    memset(pred, 0, sizeof *pred);
    pred->devices = calloc((size_t)(s->n_dev ? s->n_dev : 1), sizeof *pred->devices);
    if (!pred->devices) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    pred->n_devices = s->n_dev;
    double B = (double)(p->batch ? p->batch : 1);
    pred->step_ms = s->step_s * 1e3;
    pred->samples_per_s = s->step_s > 0.0 ? B / s->step_s : 0.0;
    pred->energy_j_per_sample = s->energy_known ? s->energy_j / B : NAN;
    snprintf(pred->energy_source, sizeof pred->energy_source, "%s", s->energy_known ? "estimated:model" : "unknown");
    pred->fits_memory = s->fits;
    for (int k = 0; k < s->n_dev; k++) {
        po_device_prediction *d = &pred->devices[k];
        const po_cluster_device *cd = &c->dev[s->d[k].dev];
        snprintf(d->device, sizeof d->device, "%s", cd->dev.id);
        d->peak_memory_bytes = (int64_t)llround(s->d[k].peak_bytes);
        d->memory_bytes = cd->dev.memory_bytes;
        d->busy = s->step_s > 0.0 ? s->d[k].busy_s / s->step_s : 0.0;
        d->energy_j = s->d[k].energy_j;
    }
    return PO_OK;
}

po_status po_plan_simulate(const po_plan *p, const po_workload *w, const po_cost_model *cm, po_prediction *out) {
    memset(out, 0, sizeof *out);
    po__eval e;
    po__eval_init(&e, w, cm);
    po__sim_out s;
    po_plan q = *p;
    if (!q.batch) q.batch = w->batch;
    po_status st = po__simulate(&e, &q, &s);
    if (!st) st = po__prediction_from_sim(&s, &q, e.c, out);
    po__sim_out_free(&s);
    po__eval_free(&e);
    return st;
}

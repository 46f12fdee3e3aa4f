/* The strategy search: candidates of every family over device subsets, each scored by the
 * simulator; the best by the objective, with the runners-up and the reasons. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

typedef struct {
    po_plan plan;
    double score;
    uint64_t fp;
    int n_devices;
} cand;

typedef struct {
    const po_workload *w;
    const po_cost_model *cm;
    const po_cluster *c;
    po_plan_opts o;
    po__eval e;
    cand *v;
    int n, cap;
    int n_dev;
    int *alias;
    int n_cls, *cls, *cls_size, *members; /* members: class c's devices at members[c * n_dev + k] */
    double *speed, *eff;
    int *by_speed, *by_eff;
    double min_over; /* smallest memory overcommitment seen (peak / capacity) */
    char over_dev[32];
    double over_peak, over_cap;
    /* the best candidate by the objective that memory ruled out */
    double mem_best_score, mem_best_step;
    char mem_best_summary[256], mem_best_dev[32];
    double mem_best_peak, mem_best_cap;
} search;

/* --- devices ------------------------------------------------------------------------------- */

static bool same_figures(const po_cluster_device *a, const po_cluster_device *b) {
    const po_device_perf *p = &a->perf, *q = &b->perf;
    if (a->dev.kind != b->dev.kind || a->dev.memory_bytes != b->dev.memory_bytes ||
        a->memory_group != b->memory_group || p->n_gemm != q->n_gemm)
        return false;
    for (int i = 0; i < p->n_gemm; i++)
        if (p->gemm[i].m != q->gemm[i].m || p->gemm[i].n != q->gemm[i].n || p->gemm[i].k != q->gemm[i].k ||
            p->gemm[i].gflops != q->gemm[i].gflops)
            return false;
    return p->gemm_gflops == q->gemm_gflops && p->mem_bandwidth_gbs == q->mem_bandwidth_gbs &&
           p->elementwise_gelems == q->elementwise_gelems && p->dispatch_us == q->dispatch_us &&
           p->gemm_call_us == q->gemm_call_us && a->cache_bytes == b->cache_bytes &&
           (a->active_w == b->active_w || (isnan(a->active_w) && isnan(b->active_w))) &&
           (a->idle_w == b->idle_w || (isnan(a->idle_w) && isnan(b->idle_w)));
}

static bool same_link(po_link a, po_link b) {
    return a.bandwidth_gbs == b.bandwidth_gbs && a.latency_us == b.latency_us &&
           a.reclaim_ns_per_byte == b.reclaim_ns_per_byte && a.wake_us == b.wake_us;
}

static bool interchangeable(const search *s, int a, int b, const bool *hist) {
    const po_cluster *c = s->c;
    if (hist[a] || hist[b] || !same_figures(&c->dev[a], &c->dev[b])) return false;
    if (!same_link(po_cluster_link(c, a, b), po_cluster_link(c, b, a))) return false;
    for (int x = 0; x < c->n; x++) {
        if (x == a || x == b) continue;
        if (!same_link(po_cluster_link(c, a, x), po_cluster_link(c, b, x)) ||
            !same_link(po_cluster_link(c, x, a), po_cluster_link(c, x, b)))
            return false;
    }
    return true;
}

static int cmp_desc(const double *key, int a, int b) { return (key[a] < key[b]) - (key[a] > key[b]); }

static void sort_by(int *idx, int n, const double *key) {
    for (int i = 1; i < n; i++) { /* stable insertion sort: ties keep id order */
        int x = idx[i], j = i - 1;
        while (j >= 0 && cmp_desc(key, idx[j], x) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = x;
    }
}

static po_status setup_devices(search *s) {
    int n = s->n_dev = s->c->n;
    s->alias = malloc((size_t)n * sizeof(int));
    s->cls = malloc((size_t)n * sizeof(int));
    s->cls_size = calloc((size_t)n, sizeof(int));
    s->members = malloc((size_t)n * (size_t)n * sizeof(int));
    s->speed = malloc((size_t)n * sizeof(double));
    s->eff = malloc((size_t)n * sizeof(double));
    s->by_speed = malloc((size_t)n * sizeof(int));
    s->by_eff = malloc((size_t)n * sizeof(int));
    bool *hist = malloc((size_t)n * sizeof(bool));
    if (!s->alias || !s->cls || !s->cls_size || !s->members || !s->speed || !s->eff || !s->by_speed || !s->by_eff ||
        !hist) {
        free(hist);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int d = 0; d < n; d++)
        hist[d] = po__cost_model_has_device(s->cm, d);
    /* Figure aliases for the memo: same figures and no history of their own. */
    for (int d = 0; d < n; d++) {
        s->alias[d] = d;
        for (int k = 0; k < d && !hist[d]; k++)
            if (s->alias[k] == k && !hist[k] && same_figures(&s->c->dev[d], &s->c->dev[k])) {
                s->alias[d] = k;
                break;
            }
    }
    s->e.alias = s->alias;
    s->n_cls = 0;
    for (int d = 0; d < n; d++) {
        int found = -1;
        for (int c = 0; c < s->n_cls && found < 0; c++)
            if (interchangeable(s, s->members[c * n], d, hist)) found = c;
        if (found < 0) found = s->n_cls++;
        s->members[found * n + s->cls_size[found]++] = d;
        s->cls[d] = found;
    }
    free(hist);
    const po_workload *w = s->w;
    for (int d = 0; d < n; d++) {
        double t = po__range_time(&s->e, 0, w->n_layers - 1, d, (double)w->batch, false);
        for (int l = 0; l < w->n_layers; l++)
            t += po__layer_time(&s->e, l, PO_PHASE_OPTIMIZER, d, (double)w->batch).t;
        s->speed[d] = t > 0.0 ? 1.0 / t : 0.0;
        double watts = s->c->dev[d].active_w;
        s->eff[d] = watts > 0.0 ? s->speed[d] / watts : s->speed[d];
        s->by_speed[d] = s->by_eff[d] = d;
    }
    sort_by(s->by_speed, n, s->speed);
    sort_by(s->by_eff, n, s->eff);
    return PO_OK;
}

/* --- candidates ------------------------------------------------------------------------------ */

static uint64_t plan_fp(const po_plan *p) {
    uint64_t h = po__fnv_u64(PO__FNV_OFFSET, (uint64_t)p->strategy);
    h = po__fnv_u64(po__fnv_u64(h, (uint64_t)p->micro_batches), (uint64_t)p->schedule);
    for (int s = 0; s < p->n_stages; s++) {
        const po_plan_stage *st = &p->stages[s];
        h = po__fnv_u64(h, (uint64_t)(st->first_layer * 7919 + st->last_layer * 31 + st->recompute));
        for (int r = 0; r < st->n_replicas; r++)
            h = po__fnv_f64(po__fnv_str(h, st->replicas[r].device), st->replicas[r].share);
    }
    return h;
}

static double score_of(const search *s, const po_prediction *p) {
    double e = isfinite(p->energy_j_per_sample) ? p->energy_j_per_sample : INFINITY;
    switch (s->o.objective) {
    case PO_OBJECTIVE_ENERGY: return e;
    case PO_OBJECTIVE_EDP: return e * p->step_ms;
    default: return p->step_ms;
    }
}

/* Simulates plan (taking ownership) and keeps it when it fits and its family is wanted. */
static po_status add(search *s, po_plan *plan) {
    po_status st = PO_OK;
    unsigned mask = s->o.strategies ? s->o.strategies : ~0u;
    uint64_t fp = plan_fp(plan);
    bool wanted = (mask >> plan->strategy) & 1u;
    for (int i = 0; wanted && i < s->n; i++)
        if (s->v[i].fp == fp) wanted = false;
    if (!wanted) {
        po_plan_free(plan);
        return PO_OK;
    }
    plan->objective = s->o.objective;
    plan->max_slowdown_pct = s->o.max_slowdown_pct;
    if (po_plan_validate(plan, s->w, s->c)) { /* e.g. a share smaller than one sample */
        po_clear_error();
        po_plan_free(plan);
        return PO_OK;
    }
    po__sim_out so;
    st = po__simulate(&s->e, plan, &so);
    if (st) {
        po_plan_free(plan);
        return st;
    }
    if (plan->strategy == PO_STRATEGY_OPSPLIT && so.split_ops == 0) { /* nothing pays to split: it is single */
        po__sim_out_free(&so);
        po_plan_free(plan);
        return PO_OK;
    }
    if (!so.fits) {
        const po__sim_device *d = &so.d[so.worst_mem];
        double cap = (double)s->c->dev[d->dev].dev.memory_bytes;
        po_prediction tmp;
        if (po__prediction_from_sim(&so, plan, s->c, &tmp) == PO_OK) {
            double sc = score_of(s, &tmp);
            if (sc < s->mem_best_score) {
                s->mem_best_score = sc;
                s->mem_best_step = tmp.step_ms;
                po_plan_summary(plan, s->w, s->mem_best_summary, sizeof s->mem_best_summary);
                snprintf(s->mem_best_dev, sizeof s->mem_best_dev, "%s", s->c->dev[d->dev].dev.id);
                s->mem_best_peak = d->peak_bytes;
                s->mem_best_cap = cap;
            }
            po_prediction_free(&tmp);
        }
        if (so.worst_mem_ratio < s->min_over || s->min_over == 0.0) {
            s->min_over = so.worst_mem_ratio;
            snprintf(s->over_dev, sizeof s->over_dev, "%s", s->c->dev[d->dev].dev.id);
            s->over_peak = d->peak_bytes;
            s->over_cap = cap;
        }
        po__sim_out_free(&so);
        po_plan_free(plan);
        return PO_OK;
    }
    st = po__prediction_from_sim(&so, plan, s->c, &plan->predicted);
    int n_dev = so.n_dev;
    po__sim_out_free(&so);
    if (st) {
        po_plan_free(plan);
        return st;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        cand *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            po_plan_free(plan);
            return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        }
        s->v = nv;
        s->cap = cap;
    }
    cand *c = &s->v[s->n++];
    c->plan = *plan;
    c->score = score_of(s, &plan->predicted);
    c->fp = fp;
    c->n_devices = n_dev;
    memset(plan, 0, sizeof *plan);
    return PO_OK;
}

static po_status add_single(search *s, int d) {
    po_plan p;
    po_status st = po__plan_init(&p, PO_STRATEGY_SINGLE, s->w, 1);
    if (!st) st = po__stage_set(&p.stages[0], 0, s->w->n_layers - 1, 1);
    if (st) {
        po_plan_free(&p);
        return st;
    }
    snprintf(p.stages[0].replicas[0].device, sizeof p.stages[0].replicas[0].device, "%s", s->c->dev[d].dev.id);
    p.stages[0].replicas[0].share = 1.0;
    return add(s, &p);
}

static po_status add_dp(search *s, const int *devs, int n) {
    double *shares = malloc((size_t)n * sizeof(double));
    if (!shares) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_status st = po__dp_shares(&s->e, devs, n, shares, NULL);
    if (st == PO_ERR_NOT_FOUND) {
        /* They cannot hold the batch together: even shares, simulated only so the explanation
         * can say what memory ruled out (add drops it). */
        po_clear_error();
        st = PO_OK;
        for (int i = 0; i < n; i++)
            shares[i] = 1.0 / n;
    }
    int used = 0;
    for (int i = 0; !st && i < n; i++)
        used += shares[i] > 0.0;
    unsigned mask = s->o.strategies ? s->o.strategies : ~0u;
    if (!st && used < 2 && n >= 2 && !((mask >> PO_STRATEGY_SINGLE) & 1u)) {
        /* Data parallel asked for without single: the solver dropped all but one device (its
         * per-step constant exceeds what sharing saves), which is single's plan. Keep a real
         * data-parallel plan instead, shares by each device's speed on the whole batch, as
         * min_stages does for pipelines (seen: figures measured under AddressSanitizer made
         * "--strategy dp" answer "no plan"). */
        double total = 0.0, one_row = 1.0 / (double)s->w->batch, floored = 0.0, rest = 0.0;
        for (int i = 0; i < n; i++) {
            double t = po__range_time(&s->e, 0, s->w->n_layers - 1, devs[i], (double)s->w->batch, false);
            shares[i] = t > 0.0 ? 1.0 / t : 1.0;
            total += shares[i];
        }
        for (int i = 0; i < n; i++) { /* every device at least one row (plan validation) */
            shares[i] /= total;
            if (shares[i] < one_row) shares[i] = one_row, floored += one_row;
            else rest += shares[i];
        }
        for (int i = 0; i < n && floored > 0.0 && rest > 0.0; i++)
            if (shares[i] > one_row) shares[i] *= (1.0 - floored) / rest;
        used = n;
    }
    if (!st && used >= 2) {
        po_plan p;
        st = po__plan_init(&p, PO_STRATEGY_DP, s->w, 1);
        if (!st) st = po__stage_set(&p.stages[0], 0, s->w->n_layers - 1, used);
        for (int i = 0, k = 0; !st && i < n; i++) {
            if (shares[i] <= 0.0) continue;
            snprintf(p.stages[0].replicas[k].device, sizeof p.stages[0].replicas[k].device, "%s",
                     s->c->dev[devs[i]].dev.id);
            p.stages[0].replicas[k++].share = shares[i];
        }
        if (st)
            po_plan_free(&p);
        else
            st = add(s, &p);
    }
    free(shares);
    return st;
}

static po_status family_dp(search *s) {
    int n = s->n_dev;
    int *sub = malloc((size_t)n * sizeof(int)), *count = calloc((size_t)s->n_cls, sizeof(int));
    if (!sub || !count) {
        free(sub), free(count);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    double combos = 1.0;
    for (int c = 0; c < s->n_cls; c++)
        combos *= s->cls_size[c] + 1;
    po_status st = PO_OK;
    if (combos <= 513.0) {
        /* every count vector over the classes (the first k members of a class stand for any k) */
        for (;;) {
            int k = 0;
            for (int c = 0; c < s->n_cls; c++)
                for (int j = 0; j < count[c]; j++)
                    sub[k++] = s->members[c * n + j];
            if (k >= 2 && (st = add_dp(s, sub, k))) break;
            int c = 0;
            while (c < s->n_cls && count[c] == s->cls_size[c])
                count[c++] = 0;
            if (c == s->n_cls) break;
            count[c]++;
        }
    } else {
        for (int pass = 0; pass < 2 && !st; pass++) {
            const int *order = pass ? s->by_eff : s->by_speed;
            if (pass && memcmp(s->by_eff, s->by_speed, (size_t)n * sizeof(int)) == 0) break;
            for (int k = 2; k <= n && !st; k++)
                st = add_dp(s, order, k);
        }
    }
    free(sub);
    free(count);
    return st;
}

static po_status family_single(search *s) {
    po_status st = PO_OK;
    for (int c = 0; c < s->n_cls && !st; c++)
        st = add_single(s, s->members[c * s->n_dev]);
    return st;
}

static po_status family_opsplit(search *s) {
    po_status st = PO_OK;
    int kmax = s->n_dev < 8 ? s->n_dev : 8;
    for (int k = 2; k <= kmax && !st; k++) {
        po_plan p;
        st = po__plan_init(&p, PO_STRATEGY_OPSPLIT, s->w, 1);
        if (!st) st = po__stage_set(&p.stages[0], 0, s->w->n_layers - 1, k);
        double sum = 0.0;
        for (int i = 0; i < k; i++)
            sum += s->speed[s->by_speed[i]];
        for (int i = 0; !st && i < k; i++) {
            int d = s->by_speed[i];
            snprintf(p.stages[0].replicas[i].device, sizeof p.stages[0].replicas[i].device, "%s", s->c->dev[d].dev.id);
            p.stages[0].replicas[i].share = s->speed[d] / sum;
        }
        if (st)
            po_plan_free(&p);
        else
            st = add(s, &p);
    }
    return st;
}

/* --- pipelines: pp (units are devices) and hybrid (units are groups of g alike devices) ------- */

typedef struct {
    int n_units, g;
    int *dev; /* [n_units][g] */
} units;

static po_status pp_build(search *s, const units *u, int m, po_schedule sched, int max_stages, po_pp_problem *p,
                          double **buf) {
    const po_workload *w = s->w;
    int L = w->n_layers, U = u->n_units, g = u->g;
    size_t t3 = (size_t)U * (size_t)L * (size_t)L;
    *buf = malloc((6 * t3 + (size_t)U * (size_t)U * (size_t)L + (size_t)U) * sizeof(double));
    if (!*buf) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    double *time = *buf, *stat = time + t3, *stash = stat + t3, *rtime = stash + t3, *rstat = rtime + t3,
           *rstash = rstat + t3, *comm = rstash + t3, *cap = comm + (size_t)U * (size_t)U * (size_t)L;
    double rows = (double)w->batch / m / g;
    for (int a = 0; a < U; a++) {
        int d = u->dev[a * g];
        cap[a] = INFINITY;
        for (int k = 0; k < g; k++)
            cap[a] = fmin(cap[a], (double)s->c->dev[u->dev[a * g + k]].dev.memory_bytes);
        for (int i = 0; i < L; i++)
            for (int j = i; j < L; j++) {
                size_t x = ((size_t)a * (size_t)L + (size_t)i) * (size_t)L + (size_t)j;
                double sh = 0.0;
                for (int l = i; l <= j; l++)
                    sh += po__aff(w->stash[l], rows);
                double cut_in = po__cut_bytes(w, i - 1, rows);
                time[x] = po__range_time(&s->e, i, j, d, rows, false);
                rtime[x] = po__range_time(&s->e, i, j, d, rows, true);
                stash[x] = sh;
                stat[x] = po_workload_memory_bytes(w, i, j, rows, 1, false) - sh;
                rstash[x] = cut_in;
                rstat[x] = po_workload_memory_bytes(w, i, j, rows, 1, true) - cut_in;
            }
    }
    for (int a = 0; a < U; a++)
        for (int b = 0; b < U; b++)
            for (int j = 0; j < L; j++) {
                double t = 0.0, bytes = po__cut_bytes(w, j, rows);
                for (int k = 0; a != b && k < g; k++) {
                    int da = u->dev[a * g + k], db = u->dev[b * g + k];
                    t = fmax(t, po_cost_model_transfer_s(s->cm, da, db, bytes) +
                                    po_cost_model_transfer_s(s->cm, db, da, bytes));
                }
                comm[((size_t)a * (size_t)U + (size_t)b) * (size_t)L + (size_t)j] = t;
            }
    memset(p, 0, sizeof *p);
    p->n_layers = L;
    p->n_units = U;
    p->micro_batches = m;
    p->schedule = sched;
    p->max_stages = max_stages;
    p->time = time;
    p->static_bytes = stat;
    p->stash_bytes = stash;
    if (s->o.recompute) {
        p->recompute_time = rtime;
        p->recompute_static_bytes = rstat;
        p->recompute_stash = rstash;
    }
    p->comm = comm;
    p->capacity = cap;
    return PO_OK;
}

static po_status plan_from_solution(search *s, const units *u, const po_pp_solution *sol, int m, po_schedule sched,
                                    po_plan *p) {
    int g = u->g;
    po_strategy strat = sol->n_stages == 1 ? (g == 1 ? PO_STRATEGY_SINGLE : PO_STRATEGY_DP)
                                           : (g == 1 ? PO_STRATEGY_PP : PO_STRATEGY_HYBRID);
    po_status st = po__plan_init(p, strat, s->w, sol->n_stages);
    for (int k = 0; !st && k < sol->n_stages; k++) {
        po_plan_stage *stg = &p->stages[k];
        st = po__stage_set(stg, sol->first[k], sol->last[k], g);
        stg->recompute = sol->recompute[k];
        for (int r = 0; !st && r < g; r++) {
            snprintf(stg->replicas[r].device, sizeof stg->replicas[r].device, "%s",
                     s->c->dev[u->dev[sol->unit[k] * g + r]].dev.id);
            stg->replicas[r].share = 1.0 / g;
        }
    }
    p->micro_batches = m;
    p->schedule = m == 1 && sol->n_stages == 1 ? PO_SCHEDULE_NONE : sched;
    if (st) po_plan_free(p);
    return st;
}

static po_status run_pipelines(search *s, const units *u) {
    const po_workload *w = s->w;
    po_status st = PO_OK;
    /* A one-stage solution is a single-device (or, over groups, data-parallel) plan: where that
     * family is not asked for, the DP must find the best real pipeline instead. */
    unsigned mask = s->o.strategies ? s->o.strategies : ~0u;
    int one_stage_family = u->g == 1 ? PO_STRATEGY_SINGLE : PO_STRATEGY_DP;
    int min_stages = (mask >> one_stage_family) & 1u ? 1 : 2;
    bool energy = s->o.objective != PO_OBJECTIVE_TIME;
    int smax = w->n_layers < u->n_units ? w->n_layers : u->n_units;
    for (int m = 1; m <= w->batch && m <= s->o.max_micro_batches && !st; m++) {
        if (w->batch % m || (w->batch / m) % u->g) continue;
        for (int sc = 0; sc < 2 && !st; sc++) {
            po_schedule sched = sc ? PO_SCHEDULE_1F1B : PO_SCHEDULE_GPIPE;
            if (m == 1 && sc) continue; /* one micro-batch: the schedules coincide */
            for (int limit = 0; limit <= (energy ? smax - 1 : 0) && !st; limit++) {
                po_pp_problem p;
                double *buf = NULL;
                st = pp_build(s, u, m, sched, limit, &p, &buf);
                p.min_stages = min_stages;
                po_pp_solution sol;
                po_status ss = st ? st : po_pp_solve(&p, &sol);
                if (!st && ss == PO_OK) {
                    bool trivial = sol.n_stages == 1 && m == 1 && !sol.recompute[0];
                    po_plan plan;
                    if (!trivial) {
                        st = plan_from_solution(s, u, &sol, m, sched, &plan);
                        if (!st) st = add(s, &plan);
                    }
                    po_pp_solution_free(&sol);
                } else if (!st && ss != PO_ERR_NOT_FOUND) {
                    st = ss;
                }
                free(buf);
            }
        }
    }
    return st;
}

/* Device types (figures only), fastest first: with more than 8, pipelines keep the 8 fastest. */
static po_status pipeline_devices(search *s, int **out, int *n_out) {
    int n = s->n_dev, types = 0;
    int *type = malloc((size_t)n * sizeof(int)), *list = malloc((size_t)n * sizeof(int));
    if (!type || !list) {
        free(type), free(list);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int k = 0; k < n; k++) {
        int d = s->by_speed[k];
        type[d] = -1;
        for (int j = 0; j < k && type[d] < 0; j++) {
            int e = s->by_speed[j];
            if (s->alias[e] == s->alias[d] && s->alias[d] == s->alias[e]) type[d] = type[e];
        }
        if (type[d] < 0) type[d] = types++;
    }
    int k = 0;
    for (int d = 0; d < n; d++)
        if (type[d] < 8) list[k++] = d;
    free(type);
    *out = list;
    *n_out = k;
    return PO_OK;
}

static po_status family_pipelines(search *s, bool pp, bool hybrid) {
    int *devs = NULL, n = 0;
    po_status st = pipeline_devices(s, &devs, &n);
    if (st) return st;
    units u = {n, 1, devs};
    if (pp) st = run_pipelines(s, &u);
    /* Hybrid: groups of g devices of one kind as units, formed in speed order (the fastest g
     * together, then the next g), each group's slowest member first. A stage's lanes share its
     * micro-batch evenly, so the slowest lane times the stage, and pp_build times a unit by its
     * first member. Real cores never measure exactly alike: groups of interchangeable devices
     * only (the search's classes) left hybrid out on every real machine. */
    int *order = malloc((size_t)(n ? n : 1) * sizeof(int)), *gdev = malloc((size_t)(n ? n : 1) * sizeof(int));
    if ((!order || !gdev) && !st) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    if (!st) {
        memcpy(order, devs, (size_t)n * sizeof(int));
        sort_by(order, n, s->speed);
    }
    for (int g = 2; hybrid && !st && 2 * g <= n; g *= 2) {
        units h = {0, g, gdev};
        for (int kind = 0; kind < 2; kind++) {
            po_device_kind want = kind ? PO_DEVICE_CUDA : PO_DEVICE_CPU;
            int in_group = 0;
            for (int i = 0; i < n; i++) {
                if (s->c->dev[order[i]].dev.kind != want) continue;
                gdev[h.n_units * g + in_group++] = order[i];
                if (in_group < g) continue;
                int *grp = &gdev[h.n_units * g], slowest = grp[g - 1];
                memmove(grp + 1, grp, (size_t)(g - 1) * sizeof(int));
                grp[0] = slowest;
                h.n_units++;
                in_group = 0;
            }
        }
        if (h.n_units >= 2) st = run_pipelines(s, &h);
    }
    free(order);
    free(gdev);
    free(devs);
    return st;
}

/* --- choosing ------------------------------------------------------------------------------- */

/* By the objective's score, then the other of time and energy, then fewer devices. */
static int cmp_cand(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    double ta = a->plan.predicted.step_ms, tb = b->plan.predicted.step_ms;
    double ea = a->plan.predicted.energy_j_per_sample, eb = b->plan.predicted.energy_j_per_sample;
    if (!isfinite(ea)) ea = INFINITY;
    if (!isfinite(eb)) eb = INFINITY;
    bool by_time = a->plan.objective == PO_OBJECTIVE_TIME;
    double x = by_time ? ea : ta, y = by_time ? eb : tb;
    if (x != y) return x < y ? -1 : 1;
    return a->n_devices - b->n_devices;
}

static void search_free(search *s) {
    for (int i = 0; i < s->n; i++)
        po_plan_free(&s->v[i].plan);
    free(s->v);
    free(s->alias);
    free(s->cls);
    free(s->cls_size);
    free(s->members);
    free(s->speed);
    free(s->eff);
    free(s->by_speed);
    free(s->by_eff);
    po__eval_free(&s->e);
}

po_status po_plan_search(const po_workload *w, const po_cost_model *cm, const po_plan_opts *o, po_plan *out) {
    memset(out, 0, sizeof *out);
    search s;
    memset(&s, 0, sizeof s);
    s.w = w;
    s.cm = cm;
    s.c = po_cost_model_cluster(cm);
    s.o = o ? *o : po_plan_opts_default();
    if (s.o.top_k < 1) s.o.top_k = 1;
    if (s.o.max_micro_batches < 1) s.o.max_micro_batches = 1;
    if (s.c->n < 1) return po_fail(PO_ERR_INVALID_ARG, "plan: the cluster has no devices");
    if (!isnan(s.o.max_slowdown_pct) && !(s.o.max_slowdown_pct >= 0.0))
        return po_fail(PO_ERR_INVALID_ARG, "plan: --max-slowdown must be a percentage >= 0");
    po__eval_init(&s.e, w, cm);
    s.mem_best_score = INFINITY;
    po_status st = setup_devices(&s);
    unsigned mask = s.o.strategies ? s.o.strategies : ~0u;
    bool want_pp = (mask >> PO_STRATEGY_PP) & 1u, want_hy = (mask >> PO_STRATEGY_HYBRID) & 1u;
    bool want_single = (mask >> PO_STRATEGY_SINGLE) & 1u, want_dp = (mask >> PO_STRATEGY_DP) & 1u;
    if (!st && want_single) st = family_single(&s);
    if (!st && want_dp) st = family_dp(&s);
    if (!st && (want_pp || want_single || want_hy || want_dp))
        st = family_pipelines(&s, want_pp || want_single, want_hy || want_dp);
    if (!st && ((mask >> PO_STRATEGY_OPSPLIT) & 1u)) st = family_opsplit(&s);
    if (!st && s.n == 0) {
        char a[32], b[32];
        po__fmt_bytes(s.over_peak, a, sizeof a);
        po__fmt_bytes(s.over_cap, b, sizeof b);
        st = s.over_dev[0]
                 ? po_fail(PO_ERR_NOT_FOUND, "no plan fits in memory: the closest needs %s on %s, which has %s", a,
                           s.over_dev, b)
                 : po_fail(PO_ERR_NOT_FOUND, "no plan of the requested strategies exists for these devices");
    }
    if (!st) {
        qsort(s.v, (size_t)s.n, sizeof *s.v, cmp_cand);
        /* energy within a slowdown limit: only plans at most P% slower than the fastest qualify */
        double fastest = INFINITY;
        for (int i = 0; i < s.n; i++)
            fastest = fmin(fastest, s.v[i].plan.predicted.step_ms);
        double limit = isnan(s.o.max_slowdown_pct) ? INFINITY : fastest * (1.0 + s.o.max_slowdown_pct / 100.0);
        int *elig = malloc((size_t)s.n * sizeof(int)), ne = 0, n_too_slow_better = 0;
        if (!elig) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; !st && i < s.n; i++) {
            if (s.v[i].plan.predicted.step_ms <= limit * (1.0 + 1e-12))
                elig[ne++] = i;
            else if (ne == 0)
                n_too_slow_better++;
        }
        if (!st && ne == 0) st = po_fail(PO_ERR_NOT_FOUND, "plan: no candidate within the slowdown limit");
        if (!st) {
            const cand *best = &s.v[elig[0]];
            const cand *runner = NULL;
            for (int k = 1; k < ne && !runner; k++)
                if (s.v[elig[k]].plan.strategy != best->plan.strategy) runner = &s.v[elig[k]];
            if (!runner && ne > 1) runner = &s.v[elig[1]];
            st = po_plan_copy(&best->plan, out);
            /* Alternatives: the next best, skipping near-twins (the same family predicted within
             * 0.05% in time and energy, e.g. GPipe and 1F1B on one micro-batch count). */
            if (!st && s.o.top_k > 1) {
                out->alternatives = calloc((size_t)s.o.top_k, sizeof *out->alternatives);
                if (!out->alternatives) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            }
            const po_plan *shown[64];
            int n_shown = 0;
            shown[n_shown++] = &best->plan;
            for (int k = 1; !st && k < ne && out->n_alternatives < s.o.top_k - 1; k++) {
                const po_plan *a = &s.v[elig[k]].plan;
                bool twin = false;
                for (int j = 0; j < n_shown && !twin; j++) {
                    const po_prediction *x = &a->predicted, *y = &shown[j]->predicted;
                    twin = a->strategy == shown[j]->strategy && fabs(x->step_ms - y->step_ms) <= 5e-4 * y->step_ms &&
                           (fabs(x->energy_j_per_sample - y->energy_j_per_sample) <= 5e-4 * y->energy_j_per_sample ||
                            !isfinite(x->energy_j_per_sample));
                }
                if (twin) continue;
                if (n_shown < 64) shown[n_shown++] = a;
                po_plan_alternative *al = &out->alternatives[out->n_alternatives];
                al->strategy = a->strategy;
                po_plan_summary(a, w, al->summary, sizeof al->summary);
                st = po_prediction_copy(&a->predicted, &al->predicted);
                out->n_alternatives++;
            }
            char note[512] = "";
            if (s.mem_best_score < best->score) {
                char a[32], b[32];
                po__fmt_bytes(s.mem_best_peak, a, sizeof a);
                po__fmt_bytes(s.mem_best_cap, b, sizeof b);
                snprintf(note, sizeof note, "the memory of %s: %s (%.4g ms per step) would need %s of its %s",
                         s.mem_best_dev, s.mem_best_summary, s.mem_best_step, a, b);
            } else if (!isnan(s.o.max_slowdown_pct) && n_too_slow_better > 0)
                snprintf(note, sizeof note,
                         "the %.4g%% slowdown limit: %d plan%s using less energy %s more than %.4g ms per step "
                         "(fastest %.4g ms)",
                         s.o.max_slowdown_pct, n_too_slow_better, n_too_slow_better == 1 ? "" : "s",
                         n_too_slow_better == 1 ? "takes" : "take", limit, fastest);
            else if (best->n_devices < s.n_dev && s.n_dev > 1)
                snprintf(note, sizeof note, "%s: the plan uses %d of %d devices; %s", "more devices do not pay",
                         best->n_devices, s.n_dev,
                         s.o.objective == PO_OBJECTIVE_TIME
                             ? "adding the others is predicted slower (their communication and per-step costs "
                               "outweigh their compute)"
                             : "the others would cost more energy (active and idle power) than they save");
            if (!st) st = po__plan_explain(out, w, cm, runner ? &runner->plan : NULL, note[0] ? note : NULL);
        }
        free(elig);
    }
    search_free(&s);
    if (st) po_plan_free(out);
    return st;
}

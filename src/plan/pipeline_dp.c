/* Exact pipeline partitioning over heterogeneous units (po_pp_solve in plan.h).
 *
 * The objective T = (m - 1) max_s t_s + sum_s t_s is not decomposable by itself (a partial
 * solution with the smaller bottleneck may end worse), but dominance on the pair (bottleneck,
 * sum) is: extending two partial solutions by the same stages keeps the order of both
 * coordinates. So each state keeps its Pareto set of pairs and the objective is taken at the
 * end; that is exact.
 *
 * Stages are placed from the last one backwards, so a stage's position from the end (what 1F1B's
 * in-flight count depends on) is known when it is placed without fixing the stage count first;
 * the boundary transfer after a stage is charged to that stage, whose successor is then known.
 * Units whose tables are identical and that are linked alike to every other unit are
 * interchangeable: the state counts the units used per such class instead of naming them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

typedef struct {
    double M, S;
    int parent;
    int first, cls;
    bool rc;
} entry;

typedef struct {
    uint64_t code;
    int i, front, r;
    int *ent, n_ent, cap_ent;
} state;

typedef struct {
    const po_pp_problem *p;
    int L, U, m, smax, n_cls;
    int *cls, *rep, *second, *cap, *size;
    bool *active; /* classes the search uses (twins beyond need are left out) */
    uint64_t *mult;
    entry *e;
    int n_e, cap_e;
    state *s;
    int n_s, cap_s;
    int *table; /* hash: state index + 1, 0 empty */
    size_t table_cap;
    int **level;
    int *n_level, *cap_level;
} dp;

#define T3(a, u, i, j) ((a)[((size_t)(u) * (size_t)d->L + (size_t)(i)) * (size_t)d->L + (size_t)(j)])

static bool same3(const dp *d, const double *a, int u, int v) {
    if (!a) return true;
    for (int i = 0; i < d->L; i++)
        for (int j = i; j < d->L; j++)
            if (T3(a, u, i, j) != T3(a, v, i, j)) return false;
    return true;
}

static double comm(const dp *d, int a, int b, int j) {
    return d->p->comm[((size_t)a * (size_t)d->U + (size_t)b) * (size_t)d->L + (size_t)j];
}

static bool equivalent_tables(const dp *d, int a, int b) {
    const po_pp_problem *p = d->p;
    return p->capacity[a] == p->capacity[b] && same3(d, p->time, a, b) && same3(d, p->static_bytes, a, b) &&
           same3(d, p->stash_bytes, a, b) && same3(d, p->recompute_time, a, b) &&
           same3(d, p->recompute_static_bytes, a, b) && same3(d, p->recompute_stash, a, b);
}

static bool equivalent(const dp *d, int a, int b) {
    if (!equivalent_tables(d, a, b)) return false;
    for (int j = 0; j < d->L; j++) {
        if (comm(d, a, b, j) != comm(d, b, a, j)) return false;
        for (int x = 0; x < d->U; x++) {
            if (x == a || x == b) continue;
            if (comm(d, a, x, j) != comm(d, b, x, j) || comm(d, x, a, j) != comm(d, x, b, j)) return false;
        }
    }
    return true;
}

/* Classes A and B are twins when their units are alike (tables), linked alike to every other
 * unit, alike among themselves, and linked to each other no better than within themselves. A
 * pipeline using units of several twins can move the units of one twin into another with room
 * without getting slower (links between them become links within one, others stay the same), so
 * of k twins of z units each, ceil(2 smax / z) + 1 suffice (any set of used twins can be merged
 * until no two fit in one, which leaves fewer than 2 smax / z + 1), and one when z >= smax. */
static bool twins(const dp *d, int A, int B) {
    int a = d->rep[A], b = d->rep[B];
    if (d->size[A] != d->size[B] || d->size[A] < 2 || !equivalent_tables(d, a, b)) return false;
    int a2 = d->second[A], b2 = d->second[B];
    for (int j = 0; j < d->L; j++) {
        double intra = comm(d, a, a2, j);
        if (comm(d, b, b2, j) != intra || comm(d, a, b, j) < intra || comm(d, b, a, j) < intra) return false;
        for (int x = 0; x < d->U; x++) {
            if (d->cls[x] == A || d->cls[x] == B) continue;
            if (comm(d, a, x, j) != comm(d, b, x, j) || comm(d, x, a, j) != comm(d, x, b, j)) return false;
        }
    }
    return true;
}

static void prune_twins(dp *d) {
    int n = d->n_cls;
    int *set = malloc((size_t)(n ? n : 1) * sizeof(int));
    for (int c = 0; c < n; c++)
        d->active[c] = true;
    if (!set) return; /* no pruning: still exact, only slower */
    for (int c = 0; c < n; c++)
        set[c] = -1;
    for (int c = 0; c < n; c++) {
        if (set[c] >= 0) continue;
        set[c] = c;
        int z = d->size[c], keep = z >= d->smax ? 1 : (2 * d->smax + z - 1) / z + 1, kept = 1;
        for (int c2 = c + 1; c2 < n; c2++) {
            if (set[c2] >= 0) continue;
            bool all = true; /* a twin of every class already in the set */
            for (int c3 = c; c3 < c2 && all; c3++)
                if (set[c3] == c) all = twins(d, c3, c2);
            if (!all) continue;
            set[c2] = c;
            if (kept < keep)
                kept++;
            else
                d->active[c2] = false;
        }
    }
    free(set);
}

static po_status classify(dp *d) {
    int U = d->U;
    d->cls = malloc((size_t)U * sizeof(int));
    d->rep = malloc((size_t)U * sizeof(int));
    d->second = malloc((size_t)U * sizeof(int));
    d->cap = calloc((size_t)U, sizeof(int));
    d->size = calloc((size_t)U, sizeof(int));
    d->mult = calloc((size_t)U, sizeof(uint64_t));
    int *members = malloc((size_t)U * (size_t)U * sizeof(int));
    if (!d->cls || !d->rep || !d->second || !d->cap || !d->size || !d->mult || !members) {
        free(members);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    d->n_cls = 0;
    for (int u = 0; u < U; u++) {
        int found = -1;
        for (int c = 0; c < d->n_cls && found < 0; c++) {
            bool all = true;
            for (int k = 0; k < d->size[c] && all; k++)
                all = equivalent(d, u, members[c * U + k]);
            if (all) found = c;
        }
        if (found < 0) {
            found = d->n_cls++;
            d->rep[found] = u;
            d->second[found] = -1;
        } else if (d->size[found] == 1) {
            d->second[found] = u;
        }
        members[found * U + d->size[found]++] = u;
        d->cls[u] = found;
    }
    free(members);
    d->active = malloc((size_t)(d->n_cls ? d->n_cls : 1) * sizeof(bool));
    if (!d->active) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    prune_twins(d);
    uint64_t mult = 1;
    for (int c = 0; c < d->n_cls; c++) {
        if (!d->active[c])
            d->cap[c] = 0;
        else
            d->cap[c] = d->size[c] < d->smax ? d->size[c] : d->smax;
        d->mult[c] = mult;
        if (mult > (UINT64_MAX >> 2) / (uint64_t)(d->cap[c] + 1))
            return po_fail(PO_ERR_UNSUPPORTED,
                           "pipeline partitioning: too many distinct units (%d classes) for the "
                           "exact search; give it fewer",
                           d->n_cls);
        mult *= (uint64_t)(d->cap[c] + 1);
    }
    return PO_OK;
}

static int count_of(const dp *d, uint64_t code, int c) {
    return (int)((code / d->mult[c]) % (uint64_t)(d->cap[c] + 1));
}

static uint64_t mix(uint64_t code, int i, int front) {
    uint64_t h = code * 0x9E3779B97F4A7C15ull ^ ((uint64_t)i << 40) ^ ((uint64_t)front << 20);
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ull;
}

static po_status table_grow(dp *d) {
    size_t cap = d->table_cap ? 2 * d->table_cap : 1024;
    int *t = calloc(cap, sizeof(int));
    if (!t) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int k = 0; k < d->n_s; k++) {
        size_t h = mix(d->s[k].code, d->s[k].i, d->s[k].front) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = k + 1;
    }
    free(d->table);
    d->table = t;
    d->table_cap = cap;
    return PO_OK;
}

/* The state (i, code, front) at level r, created when new; its index or -1 when out of memory. */
static int state_get(dp *d, int i, uint64_t code, int front, int r) {
    if (2 * ((size_t)d->n_s + 1) > d->table_cap && table_grow(d)) return -1;
    size_t h = mix(code, i, front) & (d->table_cap - 1);
    while (d->table[h]) {
        state *s = &d->s[d->table[h] - 1];
        if (s->code == code && s->i == i && s->front == front) return d->table[h] - 1;
        h = (h + 1) & (d->table_cap - 1);
    }
    if (d->n_s == d->cap_s) {
        int cap = d->cap_s ? 2 * d->cap_s : 256;
        state *ns = realloc(d->s, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        d->s = ns;
        d->cap_s = cap;
    }
    if (d->n_level[r] == d->cap_level[r]) {
        int cap = d->cap_level[r] ? 2 * d->cap_level[r] : 64;
        int *nl = realloc(d->level[r], (size_t)cap * sizeof(int));
        if (!nl) return -1;
        d->level[r] = nl;
        d->cap_level[r] = cap;
    }
    int k = d->n_s++;
    d->s[k] = (state){code, i, front, r, NULL, 0, 0};
    d->table[h] = k + 1;
    d->level[r][d->n_level[r]++] = k;
    return k;
}

/* Adds (M, S) to state k unless dominated; drops the pairs it dominates. */
static po_status offer(dp *d, int k, double M, double S, int parent, int first, int cls, bool rc) {
    state *s = &d->s[k];
    int keep = 0;
    for (int q = 0; q < s->n_ent; q++) {
        const entry *o = &d->e[s->ent[q]];
        if (o->M <= M && o->S <= S) return PO_OK;
    }
    for (int q = 0; q < s->n_ent; q++) {
        const entry *o = &d->e[s->ent[q]];
        if (!(M <= o->M && S <= o->S)) s->ent[keep++] = s->ent[q];
    }
    s->n_ent = keep;
    if (d->n_e == d->cap_e) {
        int cap = d->cap_e ? 2 * d->cap_e : 1024;
        entry *ne = realloc(d->e, (size_t)cap * sizeof *ne);
        if (!ne) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        d->e = ne;
        d->cap_e = cap;
    }
    if (s->n_ent == s->cap_ent) {
        int cap = s->cap_ent ? 2 * s->cap_ent : 4;
        int *ni = realloc(s->ent, (size_t)cap * sizeof(int));
        if (!ni) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        s->ent = ni;
        s->cap_ent = cap;
    }
    d->e[d->n_e] = (entry){M, S, parent, first, cls, rc};
    s->ent[s->n_ent++] = d->n_e++;
    return PO_OK;
}

static int in_flight(const po_pp_problem *p, int from_end) {
    if (p->schedule == PO_SCHEDULE_1F1B) return from_end + 1 < p->micro_batches ? from_end + 1 : p->micro_batches;
    return p->micro_batches;
}

/* Stage time and whether it fits, for unit u on layers i..j at position from_end. */
static bool stage(const po_pp_problem *p, int L, int u, int i, int j, bool rc, int from_end, double *t) {
    size_t k = ((size_t)u * (size_t)L + (size_t)i) * (size_t)L + (size_t)j;
    double st = rc ? p->recompute_static_bytes[k] : p->static_bytes[k];
    double sh = rc ? p->recompute_stash[k] : p->stash_bytes[k];
    if (st + in_flight(p, from_end) * sh > p->capacity[u]) return false;
    *t = rc ? p->recompute_time[k] : p->time[k];
    return true;
}

static void dp_free(dp *d) {
    for (int k = 0; k < d->n_s; k++)
        free(d->s[k].ent);
    free(d->s);
    free(d->e);
    free(d->table);
    for (int r = 0; d->level && r <= d->smax; r++)
        free(d->level[r]);
    free(d->level);
    free(d->n_level);
    free(d->cap_level);
    free(d->cls);
    free(d->rep);
    free(d->second);
    free(d->cap);
    free(d->size);
    free(d->mult);
    free(d->active);
}

static po_status check_problem(const po_pp_problem *p) {
    if (p->n_layers < 1 || p->n_units < 1 || p->micro_batches < 1 || !p->time || !p->static_bytes || !p->stash_bytes ||
        !p->comm || !p->capacity)
        return po_fail(PO_ERR_INVALID_ARG, "pipeline partitioning: a problem needs layers, units, micro-batches >= 1 "
                                           "and every table");
    if (p->recompute_time && (!p->recompute_static_bytes || !p->recompute_stash))
        return po_fail(PO_ERR_INVALID_ARG, "pipeline partitioning: recomputation needs all three recompute tables");
    return PO_OK;
}

void po_pp_solution_free(po_pp_solution *s) {
    if (!s) return;
    free(s->first);
    free(s->last);
    free(s->unit);
    free(s->recompute);
    memset(s, 0, sizeof *s);
}

po_status po_pp_solve(const po_pp_problem *p, po_pp_solution *out) {
    memset(out, 0, sizeof *out);
    po_status st = check_problem(p);
    if (st) return st;
    dp D;
    memset(&D, 0, sizeof D);
    dp *d = &D;
    d->p = p;
    d->L = p->n_layers;
    d->U = p->n_units;
    d->m = p->micro_batches;
    d->smax = d->L < d->U ? d->L : d->U;
    if (p->max_stages > 0 && p->max_stages < d->smax) d->smax = p->max_stages;
    d->level = calloc((size_t)d->smax + 1, sizeof(int *));
    d->n_level = calloc((size_t)d->smax + 1, sizeof(int));
    d->cap_level = calloc((size_t)d->smax + 1, sizeof(int));
    if (!d->level || !d->n_level || !d->cap_level) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
    if (!st) st = classify(d);
    int L = d->L;
    int variants = p->recompute_time ? 2 : 1;
    /* The last stage: layers i..L-1. */
    for (int i = 0; !st && i < L; i++)
        for (int c = 0; !st && c < d->n_cls; c++)
            for (int v = 0; !st && v < variants && d->cap[c] > 0; v++) {
                double t;
                if (!stage(p, L, d->rep[c], i, L - 1, v, 0, &t)) continue;
                int k = state_get(d, i, d->mult[c], c, 1);
                st = k < 0 ? po_fail(PO_ERR_NO_MEMORY, "out of memory") : offer(d, k, t, t, -1, i, c, v);
            }
    /* Earlier stages, one level (stage count) at a time. */
    for (int r = 1; !st && r < d->smax; r++)
        for (int q = 0; !st && q < d->n_level[r]; q++) {
            int sk = d->level[r][q];
            int i = d->s[sk].i, front = d->s[sk].front;
            uint64_t code = d->s[sk].code;
            if (i == 0) continue;
            for (int c = 0; !st && c < d->n_cls; c++) {
                if (count_of(d, code, c) >= d->cap[c]) continue;
                int u = d->rep[c];
                int other = c == front ? d->second[c] : d->rep[front]; /* the front stage's unit, seen from u */
                if (other < 0) continue;
                for (int i2 = 0; !st && i2 < i; i2++)
                    for (int v = 0; !st && v < variants; v++) {
                        double t;
                        if (!stage(p, L, u, i2, i - 1, v, r, &t)) continue;
                        t += comm(d, u, other, i - 1);
                        int nk = state_get(d, i2, code + d->mult[c], c, r + 1);
                        if (nk < 0) {
                            st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
                            break;
                        }
                        /* entries of sk may move when d->e grows: read them by index each time */
                        for (int x = 0; !st && x < d->s[sk].n_ent; x++) {
                            int ei = d->s[sk].ent[x];
                            double M = d->e[ei].M > t ? d->e[ei].M : t, S = d->e[ei].S + t;
                            st = offer(d, nk, M, S, ei, i2, c, v);
                        }
                    }
            }
        }
    /* The best complete partition. */
    int best = -1, best_r = 0;
    double best_obj = INFINITY;
    for (int k = 0; !st && k < d->n_s; k++) {
        if (d->s[k].i != 0 || d->s[k].r < p->min_stages) continue;
        for (int x = 0; x < d->s[k].n_ent; x++) {
            const entry *e = &d->e[d->s[k].ent[x]];
            double obj = (d->m - 1) * e->M + e->S;
            bool better = obj < best_obj - 1e-12 * fabs(best_obj) ||
                          (fabs(obj - best_obj) <= 1e-12 * fabs(best_obj) && d->s[k].r < best_r);
            if (best < 0 || better) {
                best = d->s[k].ent[x];
                best_obj = obj;
                best_r = d->s[k].r;
            }
        }
    }
    if (!st && best < 0)
        st = po_fail(PO_ERR_NOT_FOUND,
                     "pipeline partitioning: no partition of %d layers over %d units into at least %d stages fits in memory",
                     L, d->U, p->min_stages > 1 ? p->min_stages : 1);
    if (!st) {
        out->n_stages = best_r;
        out->first = malloc((size_t)best_r * sizeof(int));
        out->last = malloc((size_t)best_r * sizeof(int));
        out->unit = malloc((size_t)best_r * sizeof(int));
        out->recompute = malloc((size_t)best_r * sizeof(bool));
        int *used = calloc((size_t)d->n_cls, sizeof(int));
        if (!out->first || !out->last || !out->unit || !out->recompute || !used) {
            st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        } else {
            out->objective = best_obj;
            out->bottleneck_s = d->e[best].M;
            out->sum_s = d->e[best].S;
            int s = 0;
            for (int ei = best; ei >= 0; ei = d->e[ei].parent, s++) {
                const entry *e = &d->e[ei];
                out->first[s] = e->first;
                out->last[s] = e->parent >= 0 ? d->e[e->parent].first - 1 : L - 1;
                out->recompute[s] = e->rc;
                /* the used-th member of its class */
                int seen = 0;
                for (int u = 0; u < d->U; u++)
                    if (d->cls[u] == e->cls && seen++ == used[e->cls]) {
                        out->unit[s] = u;
                        break;
                    }
                used[e->cls]++;
            }
        }
        free(used);
    }
    dp_free(d);
    if (st) po_pp_solution_free(out);
    return st;
}

double po_pp_evaluate(const po_pp_problem *p, int n_stages, const int *first, const int *last, const int *unit,
                      const bool *recompute) {
    if (check_problem(p) || n_stages < 1 || n_stages > p->n_units) return INFINITY;
    int L = p->n_layers;
    if (first[0] != 0 || last[n_stages - 1] != L - 1) return INFINITY;
    double M = 0.0, S = 0.0;
    for (int s = 0; s < n_stages; s++) {
        if (last[s] < first[s] || (s && first[s] != last[s - 1] + 1)) return INFINITY;
        if (unit[s] < 0 || unit[s] >= p->n_units) return INFINITY;
        for (int q = 0; q < s; q++)
            if (unit[q] == unit[s]) return INFINITY;
        bool rc = recompute && recompute[s];
        if (rc && !p->recompute_time) return INFINITY;
        double t;
        if (!stage(p, L, unit[s], first[s], last[s], rc, n_stages - 1 - s, &t)) return INFINITY;
        if (s + 1 < n_stages)
            t += p->comm[((size_t)unit[s] * (size_t)p->n_units + (size_t)unit[s + 1]) * (size_t)L + (size_t)last[s]];
        M = t > M ? t : M;
        S += t;
    }
    return (p->micro_batches - 1) * M + S;
}

/* Pipeline partitioning (po_pp_solve) against brute-force enumeration: randomized small cases
 * (up to 8 layers, up to 4 units, heterogeneous speeds, links and memory limits, both schedules,
 * with and without recomputation), interchangeable units, twin groups of units (the pruning), and
 * infeasible cases. The brute force evaluates T = (m - 1) max_s t_s + sum_s t_s itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/plan.h"
#include "po_test.h"

#define MAXL 8
#define MAXU 8

typedef struct {
    int L, U, m, min_stages;
    po_schedule sched;
    bool rc;
    double time[MAXU * MAXL * MAXL], stat[MAXU * MAXL * MAXL], stash[MAXU * MAXL * MAXL];
    double rtime[MAXU * MAXL * MAXL], rstat[MAXU * MAXL * MAXL], rstash[MAXU * MAXL * MAXL];
    double comm[MAXU * MAXU * MAXL], cap[MAXU];
    po_pp_problem p;
} pcase;

static uint64_t rng;
static double urand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static int irand(int n) { return (int)(urand() * n) % n; }

static size_t I3(const pcase *c, int u, int i, int j) { return ((size_t)u * c->L + i) * c->L + j; }

/* Tables from per-layer work and per-unit speed, memory and links, so they are consistent. */
static void fill(pcase *c, const double *speed, double link[MAXU][MAXU]) {
    double work[MAXL], fwd[MAXL], st[MAXL], sh[MAXL], cut[MAXL];
    for (int l = 0; l < c->L; l++) {
        work[l] = 1.0 + 9.0 * urand();
        fwd[l] = work[l] / 3.0;
        st[l] = 1.0 + 4.0 * urand();
        sh[l] = 0.5 + 3.0 * urand();
        cut[l] = 0.2 + 2.0 * urand();
    }
    for (int u = 0; u < c->U; u++)
        for (int i = 0; i < c->L; i++)
            for (int j = i; j < c->L; j++) {
                double w = 0, f = 0, s = 0, h = 0;
                for (int l = i; l <= j; l++)
                    w += work[l], f += fwd[l], s += st[l], h += sh[l];
                size_t k = I3(c, u, i, j);
                c->time[k] = w / speed[u] + 0.1;
                c->stat[k] = s;
                c->stash[k] = h;
                c->rtime[k] = (w + f) / speed[u] + 0.1;
                c->rstat[k] = s + h;
                c->rstash[k] = i ? cut[i - 1] : 0.1;
            }
    for (int a = 0; a < c->U; a++)
        for (int b = 0; b < c->U; b++)
            for (int j = 0; j < c->L; j++)
                c->comm[((size_t)a * c->U + b) * c->L + j] = a == b ? 0.0 : cut[j] / link[a][b] + 0.01;
    memset(&c->p, 0, sizeof c->p);
    c->p.n_layers = c->L;
    c->p.n_units = c->U;
    c->p.micro_batches = c->m;
    c->p.schedule = c->sched;
    c->p.min_stages = c->min_stages;
    c->p.time = c->time;
    c->p.static_bytes = c->stat;
    c->p.stash_bytes = c->stash;
    if (c->rc) {
        c->p.recompute_time = c->rtime;
        c->p.recompute_static_bytes = c->rstat;
        c->p.recompute_stash = c->rstash;
    }
    c->p.comm = c->comm;
    c->p.capacity = c->cap;
}

/* The brute force's own evaluation of one assignment. */
static double eval(const pcase *c, int S, const int *first, const int *last, const int *unit, const bool *rc) {
    double M = 0, sum = 0;
    for (int s = 0; s < S; s++) {
        size_t k = I3(c, unit[s], first[s], last[s]);
        int inflight = c->sched == PO_SCHEDULE_1F1B ? (S - s < c->m ? S - s : c->m) : c->m;
        double mem = rc[s] ? c->rstat[k] + inflight * c->rstash[k] : c->stat[k] + inflight * c->stash[k];
        if (mem > c->cap[unit[s]]) return INFINITY;
        double t = rc[s] ? c->rtime[k] : c->time[k];
        if (s + 1 < S) t += c->comm[((size_t)unit[s] * c->U + unit[s + 1]) * c->L + last[s]];
        M = fmax(M, t);
        sum += t;
    }
    return (c->m - 1) * M + sum;
}

static double best_units(const pcase *c, int S, int s, int *first, int *last, int *unit, bool *rc, bool *used) {
    if (s == S) {
        double best = INFINITY;
        int nv = c->rc ? 1 << S : 1;
        for (int v = 0; v < nv; v++) {
            for (int k = 0; k < S; k++)
                rc[k] = (v >> k) & 1;
            best = fmin(best, eval(c, S, first, last, unit, rc));
        }
        return best;
    }
    double best = INFINITY;
    for (int u = 0; u < c->U; u++) {
        if (used[u]) continue;
        used[u] = true;
        unit[s] = u;
        best = fmin(best, best_units(c, S, s + 1, first, last, unit, rc, used));
        used[u] = false;
    }
    return best;
}

static double brute(const pcase *c) {
    double best = INFINITY;
    int first[MAXL], last[MAXL], unit[MAXL];
    bool rc[MAXL], used[MAXU] = {false};
    for (int mask = 0; mask < 1 << (c->L - 1); mask++) { /* bit j: a stage ends after layer j */
        int S = 0, start = 0;
        for (int j = 0; j < c->L; j++)
            if (j == c->L - 1 || ((mask >> j) & 1)) {
                first[S] = start;
                last[S++] = j;
                start = j + 1;
            }
        if (S > c->U || S < c->min_stages) continue;
        best = fmin(best, best_units(c, S, 0, first, last, unit, rc, used));
    }
    return best;
}

static void check(pcase *c, int *feasible, int *total) {
    double want = brute(c);
    po_pp_solution sol;
    po_status st = po_pp_solve(&c->p, &sol);
    (*total)++;
    if (!isfinite(want)) {
        if (st != PO_ERR_NOT_FOUND)
            fail_msg("L=%d U=%d m=%d: brute force finds nothing feasible, po_pp_solve returned %d", c->L, c->U, c->m,
                     st);
        return;
    }
    (*feasible)++;
    if (st)
        fail_msg("L=%d U=%d m=%d: po_pp_solve failed: %s (brute force %.9g)", c->L, c->U, c->m, po_last_error(), want);
    if (fabs(sol.objective - want) > 1e-9 * want)
        fail_msg("L=%d U=%d m=%d sched=%d rc=%d: DP %.12g, brute force %.12g", c->L, c->U, c->m, c->sched, c->rc,
                 sol.objective, want);
    /* the returned assignment is valid and really scores its objective */
    double self = eval(c, sol.n_stages, sol.first, sol.last, sol.unit, sol.recompute);
    if (fabs(self - sol.objective) > 1e-9 * want)
        fail_msg("solution scores %.12g, reported %.12g", self, sol.objective);
    double lib = po_pp_evaluate(&c->p, sol.n_stages, sol.first, sol.last, sol.unit, sol.recompute);
    assert_true(fabs(lib - sol.objective) <= 1e-9 * want);
    assert_true(sol.bottleneck_s * (c->m - 1) + sol.sum_s - sol.objective <= 1e-9 * want);
    po_pp_solution_free(&sol);
}

static void random_cases(void **state) {
    (void)state;
    rng = 12345;
    int feasible = 0, total = 0;
    static const int ms[] = {1, 2, 3, 4, 8};
    for (int it = 0; it < 400; it++) {
        pcase c;
        c.min_stages = it % 3; /* 0 and 1: any partition; 2: at least two stages */
        c.L = 1 + irand(MAXL);
        c.U = 1 + irand(4);
        c.m = ms[irand(5)];
        c.sched = irand(2) ? PO_SCHEDULE_1F1B : PO_SCHEDULE_GPIPE;
        c.rc = irand(2);
        double speed[MAXU], link[MAXU][MAXU];
        for (int u = 0; u < c.U; u++) {
            speed[u] = 0.5 + 3.5 * urand();
            for (int v = 0; v < c.U; v++)
                link[u][v] = 0.5 + 20.0 * urand();
        }
        fill(&c, speed, link);
        /* memory: from "everything fits anywhere" down to "nothing fits" */
        double all = c.stat[I3(&c, 0, 0, c.L - 1)] + c.m * c.stash[I3(&c, 0, 0, c.L - 1)];
        for (int u = 0; u < c.U; u++)
            c.cap[u] = all * (0.15 + 1.0 * urand());
        check(&c, &feasible, &total);
    }
    printf("%d random cases, %d feasible\n", total, feasible);
    assert_true(feasible > 100 && total - feasible > 20);
}

/* Interchangeable units (identical figures and links) become one class in the DP. */
static void interchangeable_units(void **state) {
    (void)state;
    rng = 777;
    int feasible = 0, total = 0;
    for (int it = 0; it < 150; it++) {
        pcase c;
        c.min_stages = 0;
        c.L = 2 + irand(MAXL - 1);
        c.U = 4;
        c.m = 1 + irand(4);
        c.sched = irand(2) ? PO_SCHEDULE_1F1B : PO_SCHEDULE_GPIPE;
        c.rc = irand(2);
        double speed[MAXU] = {2.0, 2.0, 1.0, 1.0}, link[MAXU][MAXU];
        for (int u = 0; u < 4; u++)
            for (int v = 0; v < 4; v++)
                link[u][v] = 5.0;                    /* uniform, so units 0-1 and 2-3 are interchangeable */
        if (irand(2)) link[0][2] = link[2][0] = 1.0; /* ...or not */
        fill(&c, speed, link);
        double all = c.stat[I3(&c, 0, 0, c.L - 1)] + c.m * c.stash[I3(&c, 0, 0, c.L - 1)];
        c.cap[0] = c.cap[1] = all * (0.3 + urand());
        c.cap[2] = c.cap[3] = all * (0.3 + urand());
        check(&c, &feasible, &total);
    }
    assert_true(feasible > 50);
}

/* "Nodes" of two or three alike units each: fast links inside a node, slow between: twin classes
 * the DP prunes to as many as a pipeline can need. */
static void twin_groups(void **state) {
    (void)state;
    rng = 99;
    int feasible = 0, total = 0;
    for (int it = 0; it < 60; it++) {
        pcase c;
        c.min_stages = 0;
        int z = 2 + irand(2);
        c.U = z == 2 ? 8 : 6;
        c.L = 2 + irand(3);
        c.m = 1 + irand(4);
        c.sched = irand(2) ? PO_SCHEDULE_1F1B : PO_SCHEDULE_GPIPE;
        c.rc = false;
        double speed[MAXU], link[MAXU][MAXU];
        for (int u = 0; u < c.U; u++) {
            speed[u] = 1.0;
            for (int v = 0; v < c.U; v++)
                link[u][v] = u / z == v / z ? 20.0 : 1.0;
        }
        fill(&c, speed, link);
        double all = c.stat[I3(&c, 0, 0, c.L - 1)] + c.m * c.stash[I3(&c, 0, 0, c.L - 1)];
        for (int u = 0; u < c.U; u++)
            c.cap[u] = all * (it % 3 == 0 ? 0.4 : 2.0);
        check(&c, &feasible, &total);
    }
    assert_true(feasible > 10);
}

static void bad_problems(void **state) {
    (void)state;
    po_pp_problem p;
    memset(&p, 0, sizeof p);
    po_pp_solution sol;
    assert_int_equal(po_pp_solve(&p, &sol), PO_ERR_INVALID_ARG);
    /* one layer, one unit, no memory: nothing fits */
    double t = 1, z = 0, big = 10, comm = 0, cap = 1;
    p.n_layers = p.n_units = p.micro_batches = 1;
    p.time = &t;
    p.static_bytes = &big;
    p.stash_bytes = &z;
    p.comm = &comm;
    p.capacity = &cap;
    assert_int_equal(po_pp_solve(&p, &sol), PO_ERR_NOT_FOUND);
    cap = 100;
    PO_CHECK(po_pp_solve(&p, &sol));
    assert_int_equal(sol.n_stages, 1);
    assert_true(sol.objective == 1.0);
    po_pp_solution_free(&sol);
    int f = 0, l = 0, u = 0;
    assert_true(po_pp_evaluate(&p, 1, &f, &l, &u, NULL) == 1.0);
    u = 1;
    assert_true(isinf(po_pp_evaluate(&p, 1, &f, &l, &u, NULL)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_cases),
        cmocka_unit_test(interchangeable_units),
        cmocka_unit_test(twin_groups),
        cmocka_unit_test(bad_problems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

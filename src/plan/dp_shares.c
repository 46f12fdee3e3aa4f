/* Data-parallel shares in closed form: with each replica's forward and backward time linear in
 * its rows, t_i(b) = a_i + c_i b, equal finish times T and sum b_i = B give
 *     T = (B + sum a_i / c_i) / sum 1 / c_i,    b_i = (T - a_i) / c_i,
 * i.e. shares proportional to speed when the per-step constant a_i (dispatch, weight reads) is
 * small. The all-reduce that follows is one collective: it starts when the last replica is done
 * and ends at the same time for every replica, so equal compute finish times are what minimises
 * the step; the optimizer update after it does not depend on the shares. Memory caps rows: a
 * device that cannot hold one row is dropped, one whose cap binds keeps it and the rest is solved
 * again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

/* Forward and backward time of a replica of the whole model with `rows` rows on dev. */
static double replica_time(po__eval *e, int dev, double rows) {
    return po__range_time(e, 0, e->w->n_layers - 1, dev, rows, false);
}

/* Rows a device can hold: memory(rows) = m0 + m1 rows <= capacity. */
static double row_cap(const po__eval *e, int dev) {
    const po_workload *w = e->w;
    double cap = (double)e->c->dev[dev].dev.memory_bytes;
    double m1 = po_workload_memory_bytes(w, 0, w->n_layers - 1, 2.0, 1, false) -
                po_workload_memory_bytes(w, 0, w->n_layers - 1, 1.0, 1, false);
    double m0 = po_workload_memory_bytes(w, 0, w->n_layers - 1, 1.0, 1, false) - m1;
    if (m1 <= 0.0) return cap >= m0 ? INFINITY : 0.0;
    return floor((cap - m0) / m1);
}

po_status po__dp_shares(po__eval *e, const int *devices, int n, double *shares, int *binding) {
    const double B = (double)e->w->batch;
    if (binding) *binding = -1;
    if (n < 1) return po_fail(PO_ERR_INVALID_ARG, "dp shares: no devices");
    double *b = calloc((size_t)n, sizeof(double)), *cap = calloc((size_t)n, sizeof(double));
    double *a = calloc((size_t)n, sizeof(double)), *c = calloc((size_t)n, sizeof(double));
    int *state = calloc((size_t)n, sizeof(int)); /* 0 free, 1 fixed at its cap, 2 dropped */
    if (!b || !cap || !a || !c || !state) {
        free(b), free(cap), free(a), free(c), free(state);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    int n_free = 0;
    for (int i = 0; i < n; i++) {
        cap[i] = row_cap(e, devices[i]);
        state[i] = cap[i] < 1.0 ? 2 : 0;
        n_free += state[i] == 0;
    }
    po_status st = PO_OK;
    for (int i = 0; i < n; i++)
        b[i] = state[i] == 0 ? B / n_free : 0.0;
    for (int round = 0; round < 64 && !st; round++) {
        double fixed = 0.0;
        n_free = 0;
        for (int i = 0; i < n; i++) {
            if (state[i] == 1) fixed += cap[i];
            n_free += state[i] == 0;
        }
        if (n_free == 0) {
            st = po_fail(PO_ERR_NOT_FOUND, "dp shares: the devices cannot hold a batch of %g together", B);
            break;
        }
        double free_rows = B - fixed;
        bool changed = false;
        for (int iter = 0; iter < 3; iter++) {
            double s_inv = 0.0, s_ac = 0.0;
            for (int i = 0; i < n; i++) {
                if (state[i]) continue;
                double b1 = b[i] > 1.0 ? b[i] : 1.0, b2 = b1 * 0.5;
                double t1 = replica_time(e, devices[i], b1), t2 = replica_time(e, devices[i], b2);
                c[i] = (t1 - t2) / (b1 - b2);
                if (!(c[i] > 1e-15)) c[i] = 1e-15;
                a[i] = t1 - c[i] * b1;
                s_inv += 1.0 / c[i];
                s_ac += a[i] / c[i];
            }
            double T = (free_rows + s_ac) / s_inv;
            for (int i = 0; i < n; i++)
                if (!state[i]) b[i] = (T - a[i]) / c[i];
        }
        /* Drop the least useful device when one would get under half a row; cap the most
         * over-committed one at its memory. */
        int worst = -1, over = -1;
        for (int i = 0; i < n; i++) {
            if (state[i]) continue;
            if (b[i] < 0.5 && (worst < 0 || b[i] < b[worst])) worst = i;
            if (b[i] > cap[i] && (over < 0 || b[i] / cap[i] > b[over] / cap[over])) over = i;
        }
        if (worst >= 0) {
            state[worst] = 2;
            b[worst] = 0.0;
            changed = true;
        } else if (over >= 0) {
            state[over] = 1;
            b[over] = cap[over];
            if (binding) *binding = over;
            changed = true;
        }
        if (!changed) break;
        n_free = 0;
        for (int i = 0; i < n; i++)
            n_free += state[i] == 0;
        for (int i = 0; i < n; i++)
            if (state[i] == 0) b[i] = b[i] > 1.0 ? b[i] : (B - fixed) / (n_free ? n_free : 1);
    }
    if (!st) {
        for (int i = 0; i < n; i++)
            if (state[i] == 1) b[i] = cap[i];
        /* Whole rows: floors, then the largest remainders, each used device at least one. */
        int64_t total = 0, Bi = e->w->batch;
        int64_t *rows = calloc((size_t)n, sizeof(int64_t));
        if (!rows) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; !st && i < n; i++) {
            rows[i] = state[i] == 2 ? 0 : (int64_t)floor(b[i]);
            if (state[i] != 2 && rows[i] < 1) rows[i] = 1;
            total += rows[i];
        }
        while (!st && total < Bi) {
            int k = -1;
            for (int i = 0; i < n; i++)
                if (state[i] != 2 && rows[i] < cap[i] && (k < 0 || b[i] - rows[i] > b[k] - rows[k])) k = i;
            if (k < 0) {
                st = po_fail(PO_ERR_NOT_FOUND, "dp shares: the devices cannot hold a batch of %lld together",
                             (long long)Bi);
                break;
            }
            rows[k]++;
            total++;
        }
        while (!st && total > Bi) {
            int k = -1;
            for (int i = 0; i < n; i++)
                if (rows[i] > 1 && (k < 0 || b[i] - rows[i] < b[k] - rows[k])) k = i;
            if (k < 0) {
                st = po_fail(PO_ERR_NOT_FOUND, "dp shares: a batch of %lld is too small for %d devices", (long long)Bi,
                             n);
                break;
            }
            rows[k]--;
            total--;
        }
        for (int i = 0; !st && i < n; i++)
            shares[i] = (double)rows[i] / (double)Bi;
        free(rows);
    }
    free(b), free(cap), free(a), free(c), free(state);
    return st;
}

po_status po_dp_shares(const po_workload *w, const po_cost_model *cm, const int *devices, int n, double *shares,
                       int *binding) {
    for (int i = 0; i < n; i++)
        if (!po_cluster_device_at(po_cost_model_cluster(cm), devices[i]))
            return po_fail(PO_ERR_RANGE, "dp shares: device index %d out of range", devices[i]);
    po__eval e;
    po__eval_init(&e, w, cm);
    po_status st = po__dp_shares(&e, devices, n, shares, binding);
    po__eval_free(&e);
    return st;
}

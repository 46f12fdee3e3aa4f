#include "runtime/pp_rebalance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/analyze.h"
#include "runtime/balance.h"

/* The stages' median compute times more than 10% apart over a window (runtime/balance.h) trigger
 * a re-solve; the new ranges must be predicted more than 5% faster to be worth a rebuild. */
#define IMBALANCE PO__BALANCE_IMBALANCE
#define MIN_GAIN  0.95

/* A device-independent cost of a node in seconds of a nominal core: 100 GFLOP/s, 10 GB/s and a
 * microsecond per kernel. Only ratios between devices are taken from it (po__ppr_estimate). */
static double ref_seconds(const po_node *n) {
    po_cost c = po_node_cost(n);
    double bytes = c.bytes_read + c.bytes_written;
    if (c.flops == 0.0 && bytes == 0.0) return 0.0;
    return c.flops / 100e9 + bytes / 10e9 + 1e-6;
}

struct po_ppr {
    char *spec;
    int64_t batch;
    po_optim_opts optim;
    int k, n_layers, micro_batches;
    bool one_f_one_b;
    po_pipeline_stage *stages; /* [k]: devices as given, ranges as they are now */
    int *last, *prev_last;     /* [k]: the ranges' last layers now, and before the last move */
    bool moved;                /* prev_last holds something */
    double *ref;               /* [n_layers] ref_seconds of each layer's forward and backward nodes */
    double *stage_sum;         /* [k] compute seconds: each stage's median over the window */
    double *layer_sum;         /* [n_layers] profiled seconds summed over the window */
    double *scratch;           /* [n_layers] */
    double *known;             /* [k * n_layers] po__ppr_remember's table */
    po__balance bal; /* the window, its patience and the settle step (runtime/balance.h) */
    int64_t rebalances;
    bool off; /* a rebuild failed: no more moves */
};

double po__ppr_solve(int k, int n, const double *cost, int *last) {
    /* pre[s][j]: stage s's device running layers 0..j-1. best[s][j]: the least largest cost of
     * layers 0..j-1 on stages 0..s, stage s ending at layer j-1; from[s][j]: where it begins. */
    size_t w = (size_t)n + 1;
    double *pre = malloc((size_t)k * w * sizeof *pre), *best = calloc((size_t)k * w, sizeof *best);
    int *from = calloc((size_t)k * w, sizeof *from);
    if (!pre || !best || !from) {
        free(pre), free(best), free(from);
        return NAN;
    }
    for (int s = 0; s < k; s++) {
        pre[s * w] = 0.0;
        for (int l = 0; l < n; l++)
            pre[s * w + (size_t)l + 1] = pre[s * w + (size_t)l] + cost[(size_t)s * (size_t)n + (size_t)l];
    }
    for (int j = 1; j <= n; j++) {
        best[j] = pre[j];
        from[j] = 0;
    }
    for (int s = 1; s < k; s++)
        for (int j = s + 1; j <= n; j++) {
            double b = INFINITY;
            int f = s;
            for (int i = s; i < j; i++) { /* stage s runs layers i..j-1 */
                double c = fmax(best[(size_t)(s - 1) * w + (size_t)i], pre[s * w + (size_t)j] - pre[s * w + (size_t)i]);
                if (c < b) b = c, f = i;
            }
            best[s * w + (size_t)j] = b;
            from[s * w + (size_t)j] = f;
        }
    double result = best[(size_t)(k - 1) * w + (size_t)n];
    for (int s = k - 1, j = n; s >= 0; s--) {
        last[s] = j - 1;
        j = from[s * w + (size_t)j];
    }
    free(pre), free(best), free(from);
    return result;
}

/* Each layer's time on its own stage now (the stage's time shared out by profiled time, by
 * ref_cost where nothing was profiled: what a stage spends between kernels goes with the kernels
 * that cause it), the stage of each layer, and each device's seconds per ref-second. */
static void own_times(const po_ppr_measure *m, double *own_s, int *stage_of, double *speed) {
    for (int s = 0, first = 0; s < m->k; s++) {
        double prof = 0.0, ref = 0.0;
        for (int l = first; l <= m->last[s]; l++) {
            stage_of[l] = s;
            prof += m->layer_s[l];
            ref += m->ref_cost[l];
        }
        for (int l = first; l <= m->last[s]; l++)
            own_s[l] = m->stage_s[s] * (prof > 0.0 ? m->layer_s[l] / prof : m->ref_cost[l] / ref);
        speed[s] = m->stage_s[s] / ref;
        first = m->last[s] + 1;
    }
}

void po__ppr_remember(const po_ppr_measure *m, double *known) {
    int k = m->k, n = m->n_layers;
    double speed[PO__PP_MAX_STAGES];
    double *own_s = malloc((size_t)n * sizeof *own_s);
    int *stage_of = malloc((size_t)n * sizeof *stage_of);
    if (!own_s || !stage_of) {
        free(own_s), free(stage_of);
        memset(known, 0, (size_t)k * (size_t)n * sizeof *known); /* forget rather than mislead */
        return;
    }
    own_times(m, own_s, stage_of, speed);
    for (int d = 0; d < k; d++) {
        double *kd = known + (size_t)d * (size_t)n, now = 0.0, then = 0.0;
        for (int l = 0; l < n; l++)
            if (stage_of[l] == d && kd[l] > 0.0) now += own_s[l], then += kd[l];
        for (int l = 0; l < n; l++) {
            if (stage_of[l] == d)
                kd[l] = own_s[l];
            else
                kd[l] = then > 0.0 ? kd[l] * (now / then) : 0.0;
        }
    }
    free(own_s);
    free(stage_of);
}

void po__ppr_estimate(const po_ppr_measure *m, double *cost) {
    int k = m->k, n = m->n_layers;
    double speed[PO__PP_MAX_STAGES];
    int *stage_of = malloc((size_t)n * sizeof *stage_of);
    double *own_s = malloc((size_t)n * sizeof *own_s);
    if (!stage_of || !own_s) {
        free(stage_of), free(own_s);
        for (size_t e = 0; e < (size_t)k * (size_t)n; e++)
            cost[e] = NAN;
        return;
    }
    own_times(m, own_s, stage_of, speed);
    const double *kn = m->known;
    for (int d = 0; d < k; d++)
        for (int l = 0; l < n; l++) {
            int s = stage_of[l];
            double *c = &cost[(size_t)d * (size_t)n + (size_t)l];
            if (s == d) {
                *c = own_s[l];
                continue;
            }
            if (kn && kn[(size_t)d * (size_t)n + (size_t)l] > 0.0) { /* measured there, carried to now */
                *c = kn[(size_t)d * (size_t)n + (size_t)l];
                continue;
            }
            /* Device d against device s on the layers both have measurements of, else on ref_cost. */
            double on_d = 0.0, on_s = 0.0;
            for (int x = 0; kn && x < n; x++) {
                double a = kn[(size_t)d * (size_t)n + (size_t)x], b = kn[(size_t)s * (size_t)n + (size_t)x];
                if (a > 0.0 && b > 0.0) on_d += a, on_s += b;
            }
            *c = own_s[l] * (on_s > 0.0 ? on_d / on_s : speed[d] / speed[s]);
        }
    free(stage_of);
    free(own_s);
}

bool po__ppr_propose(const po_ppr_measure *m, int *last_out, double *predicted_s) {
    double fastest = INFINITY, slowest = 0.0;
    for (int s = 0; s < m->k; s++) {
        fastest = fmin(fastest, m->stage_s[s]);
        slowest = fmax(slowest, m->stage_s[s]);
    }
    if (!(fastest > 0.0) || !(slowest > IMBALANCE * fastest)) return false;
    double *cost = malloc((size_t)m->k * (size_t)m->n_layers * sizeof *cost);
    if (!cost) return false;
    po__ppr_estimate(m, cost);
    double pred = po__ppr_solve(m->k, m->n_layers, cost, last_out);
    free(cost);
    if (predicted_s) *predicted_s = pred;
    if (!(pred < MIN_GAIN * slowest)) return false;
    return memcmp(last_out, m->last, (size_t)m->k * sizeof *last_out) != 0;
}

void po__ppr_free(po_ppr *r) {
    if (!r) return;
    free(r->spec);
    free(r->stages);
    free(r->last);
    free(r->prev_last);
    free(r->ref);
    free(r->stage_sum);
    free(r->layer_sum);
    free(r->scratch);
    free(r->known);
    free(r);
}

po_status po__ppr_new(const char *spec, int64_t batch, const po_optim_opts *o, const po_pipeline_opts *opts, po_pp *pp,
                      po_ppr **out) {
    *out = NULL;
    po_ppr *r = calloc(1, sizeof *r);
    if (!r) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    r->spec = strdup(spec);
    r->batch = batch;
    r->optim = *o;
    r->k = opts->n_stages;
    r->n_layers = po__pp_n_layers(pp);
    r->micro_batches = opts->micro_batches;
    r->one_f_one_b = opts->one_f_one_b;
    po__balance_init(&r->bal, r->k);
    r->bal.settle = 1;
    r->stages = malloc((size_t)r->k * sizeof *r->stages);
    r->last = malloc((size_t)r->k * sizeof *r->last);
    r->prev_last = malloc((size_t)r->k * sizeof *r->prev_last);
    r->stage_sum = calloc((size_t)r->k, sizeof *r->stage_sum);
    r->ref = calloc((size_t)r->n_layers, sizeof *r->ref);
    r->layer_sum = calloc((size_t)r->n_layers, sizeof *r->layer_sum);
    r->scratch = calloc((size_t)r->n_layers, sizeof *r->scratch);
    r->known = calloc((size_t)r->k * (size_t)r->n_layers, sizeof *r->known);
    if (!r->known || !r->spec || !r->stages || !r->last || !r->prev_last || !r->stage_sum || !r->ref || !r->layer_sum ||
        !r->scratch) {
        po__ppr_free(r);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int s = 0; s < r->k; s++) {
        r->stages[s] = opts->stages[s];
        r->last[s] = opts->stages[s].last_layer;
    }
    const po_graph *g = po_exec_graph(po__pp_exec(pp));
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *n = po_graph_node(g, i);
        if (po_node_phase(n) != PO_PHASE_OPTIMIZER) r->ref[po__pp_node_layer(pp, i)] += ref_seconds(n);
    }
    for (int l = 0; l < r->n_layers; l++)
        if (!(r->ref[l] > 0.0)) r->ref[l] = 1e-9; /* a layer of views only */
    po__pp_set_profiling(pp, true);
    *out = r;
    return PO_OK;
}

int64_t po__ppr_rebalances(const po_ppr *r) { return r->rebalances; }

/* A pipeline with the ranges in last[] that takes over *pp's parameters and settings. */
static po_status rebuild(po_ppr *r, po_pp **pp, const int *last) {
    for (int s = 0, first = 0; s < r->k; s++) {
        r->stages[s].first_layer = first;
        r->stages[s].last_layer = last[s];
        first = last[s] + 1;
    }
    po_pipeline_opts opts = {r->k, r->stages, r->micro_batches, r->one_f_one_b, true};
    po_pp *old = *pp, *fresh = NULL;
    po_status st = po__pp_new_adopting(r->spec, r->batch, &r->optim, &opts, po__pp_params(old), &fresh);
    if (st) {
        for (int s = 0, first = 0; s < r->k; s++) { /* the old ranges stay */
            r->stages[s].first_layer = first;
            r->stages[s].last_layer = r->last[s];
            first = r->last[s] + 1;
        }
        return st;
    }
    po__pp_inherit(fresh, old);
    po__pp_set_profiling(fresh, true);
    po__pp_release_params(old);
    po__pp_free(old);
    *pp = fresh;
    return PO_OK;
}

po_status po__ppr_after_step(po_ppr *r, po_pp **pp) {
    if (r->off) return PO_OK;
    if (r->bal.settle > 0) { /* the first step on new executors pays for page faults */
        po__balance_window(&r->bal, NULL, NULL);
        for (int s = 0; s < r->k; s++)
            po__pp_take_layer_seconds(*pp, s, r->scratch);
        return PO_OK;
    }
    double busy[PO__PP_MAX_STAGES];
    for (int s = 0; s < r->k; s++) {
        po_worker_stats ws;
        po__pp_stats(*pp, s, &ws);
        busy[s] = ws.compute_s;
    }
    int steps = r->bal.patience; /* a window that closes now holds this many steps */
    if (!po__balance_window(&r->bal, busy, r->stage_sum)) return PO_OK;
    for (int s = 0; s < r->k; s++) /* the executors summed the window's per-node times */
        po__pp_take_layer_seconds(*pp, s, r->layer_sum);
    for (int l = 0; l < r->n_layers; l++)
        r->layer_sum[l] /= steps;
    po_ppr_measure m = {r->k, r->n_layers, r->last, r->stage_sum, r->layer_sum, r->ref, r->known};
    po__ppr_remember(&m, r->known);
    int last[PO__PP_MAX_STAGES];
    bool move = po__ppr_propose(&m, last, NULL);
    memset(r->layer_sum, 0, (size_t)r->n_layers * sizeof *r->layer_sum);
    if (!move) return PO_OK;
    if (rebuild(r, pp, last)) {
        r->off = true; /* the old pipeline carries on as it was */
        po_clear_error();
        return PO_OK;
    }
    bool back = r->moved && memcmp(last, r->prev_last, (size_t)r->k * sizeof *last) == 0;
    po__balance_moved_back(&r->bal, back);
    memcpy(r->prev_last, r->last, (size_t)r->k * sizeof *last);
    memcpy(r->last, last, (size_t)r->k * sizeof *last);
    r->moved = true;
    r->rebalances++;
    return PO_OK;
}

/* po_parallel_new: a trainer that runs the planner's choice of plan (paropt/train.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/train.h"
#include "runtime/opsplit.h"
#include "runtime/dp.h"

po_parallel_opts po_parallel_opts_default(void) {
    return (po_parallel_opts){NULL, PO_OBJECTIVE_TIME, NAN, 2, true, NULL, NULL};
}

/* Families the runtime executes. */
#define RUNNABLE                                                                                                       \
    ((1u << PO_STRATEGY_SINGLE) | (1u << PO_STRATEGY_DP) | (1u << PO_STRATEGY_PP) | (1u << PO_STRATEGY_HYBRID) |       \
     (1u << PO_STRATEGY_OPSPLIT))

/* A hybrid plan runs as lanes (runtime/hybrid.h): every stage needs the same replica count and
 * replica r the same share in every stage. */
static po_status check_hybrid(const po_plan *p) {
    const po_plan_stage *s0 = &p->stages[0];
    for (int s = 1; s < p->n_stages; s++) {
        const po_plan_stage *st = &p->stages[s];
        if (st->n_replicas != s0->n_replicas)
            return po_fail(PO_ERR_UNSUPPORTED,
                           "hybrid stage %d has %d devices and stage 0 has %d; the runtime runs hybrid plans whose "
                           "stages have as many devices each",
                           s, st->n_replicas, s0->n_replicas);
        for (int r = 0; r < st->n_replicas; r++)
            if (fabs(st->replicas[r].share - s0->replicas[r].share) > 1e-6)
                return po_fail(PO_ERR_UNSUPPORTED,
                               "hybrid stage %d gives its device %d a share of %g, stage 0 %g; the runtime runs "
                               "hybrid plans whose stages split the batch alike",
                               s, r, st->replicas[r].share, s0->replicas[r].share);
    }
    return PO_OK;
}

po_status po_plan_workers(const po_plan *p, const po_device_list *devs, po_worker_spec *workers, int *dev_index,
                          int max_workers, int *n_workers) {
    *n_workers = 0;
    bool pp = p->strategy == PO_STRATEGY_PP, hybrid = p->strategy == PO_STRATEGY_HYBRID;
    if (!((1u << p->strategy) & RUNNABLE) || (!pp && !hybrid && p->n_stages != 1))
        return po_fail(PO_ERR_UNSUPPORTED,
                       "a %s plan; the runtime trains single-device, data-parallel, pipeline, hybrid and "
                       "operator-split plans so far",
                       po_strategy_name(p->strategy));
    if (p->n_stages < 1) return po_fail(PO_ERR_INVALID_ARG, "a plan without stages");
    if (hybrid) {
        po_status st = check_hybrid(p);
        if (st) return st;
    }
    /* Plan order, stage-major: stage s replica r. */
    int n = 0;
    for (int s = 0; s < p->n_stages; s++)
        n += p->stages[s].n_replicas;
    if (n > max_workers) return po_fail(PO_ERR_UNSUPPORTED, "at most %d devices", max_workers);
    for (int k = 0; k < n; k++) {
        int s = 0, i = k;
        while (i >= p->stages[s].n_replicas)
            i -= p->stages[s++].n_replicas;
        const po_plan_stage *st = &p->stages[s];
        if (pp && st->n_replicas != 1)
            return po_fail(PO_ERR_UNSUPPORTED, "pipeline stage %d has %d devices (that is a hybrid plan)", s,
                           st->n_replicas);
        const po_plan_replica *r = &st->replicas[i];
        int d = -1;
        for (int j = 0; j < devs->n && d < 0; j++)
            if (strcmp(devs->dev[j].id, r->device) == 0) d = j;
        if (d < 0) return po_fail(PO_ERR_NOT_FOUND, "the plan's device %s is not among the devices", r->device);
        if (devs->dev[d].kind != PO_DEVICE_CPU)
            return po_fail(PO_ERR_UNSUPPORTED, "%s: the runtime trains on CPU devices only so far", devs->dev[d].id);
        workers[k] = (po_worker_spec){devs->dev[d].first_core, devs->dev[d].n_cores, pp ? 1.0 : r->share};
        if (dev_index) dev_index[k] = d;
    }
    *n_workers = n;
    return PO_OK;
}

po_status po_trainer_new_plan(po_model *m, const po_optim_opts *o, uint64_t seed, const po_plan *p,
                              const po_device_list *devs, bool rebalance, po_trainer **out) {
    *out = NULL;
    po_worker_spec workers[PO__DP_MAX_WORKERS];
    int index[PO__DP_MAX_WORKERS], n = 0;
    po_status st = po_plan_workers(p, devs, workers, index, PO__DP_MAX_WORKERS, &n);
    if (!st && p->strategy == PO_STRATEGY_PP) {
        po_pipeline_stage stages[PO__DP_MAX_WORKERS];
        for (int k = 0; k < n; k++)
            stages[k] = (po_pipeline_stage){p->stages[k].first_layer, p->stages[k].last_layer, workers[k]};
        po_pipeline_opts po = {n, stages, p->micro_batches, p->schedule == PO_SCHEDULE_1F1B, rebalance};
        st = po_trainer_new_pipeline(m, o, seed, &po, out);
    } else if (!st && p->strategy == PO_STRATEGY_HYBRID) {
        po_pipeline_stage stages[PO__DP_MAX_WORKERS];
        double shares[PO__DP_MAX_WORKERS];
        int g = p->stages[0].n_replicas;
        for (int k = 0; k < p->n_stages; k++)
            stages[k] = (po_pipeline_stage){p->stages[k].first_layer, p->stages[k].last_layer, workers[k * g]};
        for (int r = 0; r < g; r++)
            shares[r] = p->stages[0].replicas[r].share;
        po_hybrid_opts ho = {
            {p->n_stages, stages, p->micro_batches, p->schedule == PO_SCHEDULE_1F1B, false}, g, workers, shares};
        st = po_trainer_new_hybrid(m, o, seed, &ho, out);
    } else if (!st && p->strategy == PO_STRATEGY_OPSPLIT) {
        st = po_trainer_new_opsplit(m, o, seed, workers, n, out); /* replica 0 runs the graph */
        if (!st) po__os_set_rebalance(po__trainer_os(*out), rebalance);
    } else if (!st) {
        po_trainer_opts to = {n, workers, rebalance};
        st = po_trainer_new_ex(m, o, seed, &to, out);
    }
    for (int i = 0; !st && i < n; i++) {
        const char *f = po_device_opt_get(&devs->dev[index[i]], "slowdown");
        if (f) st = po_trainer_set_slowdown(*out, i, strtof(f, NULL));
    }
    if (st) {
        po_trainer_free(*out);
        *out = NULL;
    }
    return st;
}

po_status po_parallel_new(po_model *m, const po_optim_opts *o, uint64_t seed, const po_parallel_opts *opts,
                          po_plan *plan, po_trainer **out) {
    *out = NULL;
    if (plan) memset(plan, 0, sizeof *plan);
    po_parallel_opts d = po_parallel_opts_default();
    if (!opts) opts = &d;
    po_machine *mach = NULL;
    po_device_list devs = {0, NULL};
    po_planner *planner = NULL;
    po_plan chosen;
    memset(&chosen, 0, sizeof chosen);
    po_planner_opts po = po_planner_opts_default();
    po.calibrate = opts->calibrate;
    po.progress = opts->progress;
    po.progress_ctx = opts->progress_ctx;
    po_plan_opts so = po_plan_opts_default();
    so.objective = opts->objective;
    so.max_slowdown_pct = opts->max_slowdown_pct;
    /* Pipelines run, but their predictions on CPU cores are not yet trusted for automatic choice
     * (see tools/paropt/train_plan.c, AUTO_FAMILIES). */
    so.strategies = (1u << PO_STRATEGY_SINGLE) | (1u << PO_STRATEGY_DP);
    po_status st = po_device_register_option("slowdown", "emulate a device F times slower (F >= 1)");
    if (!st) st = po_machine_discover(NULL, &mach);
    if (!st) st = po_devices_parse_trainable(mach, opts->devices ? opts->devices : "auto", &devs);
    if (!st) st = po_planner_new(m->spec, m->batch, o, &devs, &po, &planner);
    if (!st) st = po_plan_search(po_planner_workload(planner), po_planner_cost_model(planner), &so, &chosen);
    if (!st) st = po_trainer_new_plan(m, o, seed, &chosen, &devs, opts->rebalance, out);
    if (!st && plan) {
        *plan = chosen;
        memset(&chosen, 0, sizeof chosen);
    }
    po_plan_free(&chosen);
    po_planner_free(planner);
    po_device_list_free(&devs);
    po_machine_free(mach);
    return st;
}

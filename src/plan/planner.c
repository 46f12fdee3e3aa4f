/* Planning on this machine: the workload, the measured devices and the calibrated cost model
 * in one object (paropt/plan.h, po_planner). */
#include <stdio.h>
#include <stdlib.h>

#include "paropt/plan.h"

#include "paropt/models.h"

struct po_planner {
    po_workload *w;
    po_machine *m;
    po_hw_profile *prof;
    po_cluster *cluster;
    po_cost_model *cm;
};

po_planner_opts po_planner_opts_default(void) { return (po_planner_opts){PO_BENCH_QUICK, 2, NULL, NULL}; }

void po_planner_free(po_planner *p) {
    if (!p) return;
    po_cost_model_free(p->cm);
    po_cluster_free(p->cluster);
    po_hw_profile_free(p->prof);
    po_machine_free(p->m);
    po_workload_free(p->w);
    free(p);
}

const po_workload *po_planner_workload(const po_planner *p) { return p->w; }
const po_cluster *po_planner_cluster(const po_planner *p) { return p->cluster; }
const po_cost_model *po_planner_cost_model(const po_planner *p) { return p->cm; }


/* Every op of a step timed on each device at the workload's two batch sizes (the cost model
 * interpolates between them for a device's share of the batch). */
static po_status calibrate(po_planner *p, const char *spec, const po_optim_opts *o, const po_device_list *devs,
                           const po_planner_opts *opts) {
    int64_t b = po_workload_batch(p->w);
    int64_t batches[2] = {b, b >= 2 ? b / 2 : 2};
    po_status st = PO_OK;
    for (int k = 0; k < 2 && !st; k++) {
        po_model *model = NULL;
        st = po_model_build_step(spec, batches[k], o, &model);
        for (int i = 0; i < devs->n && !st; i++) {
            if (opts->progress) {
                char what[128];
                snprintf(what, sizeof what, "%s: every op of a step at batch %lld", devs->dev[i].id,
                         (long long)batches[k]);
                opts->progress(what, opts->progress_ctx);
            }
            st = po_cost_model_calibrate(p->cm, p->m, &devs->dev[i], model->graph, opts->calibrate);
        }
        po_model_free(model);
    }
    return st;
}

po_status po_planner_new(const char *spec, int64_t batch, const po_optim_opts *o, const po_device_list *devs,
                         const po_planner_opts *opts, po_planner **out) {
    *out = NULL;
    po_planner_opts d = po_planner_opts_default();
    if (!opts) opts = &d;
    po_optim_opts adam = po_optim_opts_default(PO_OPTIM_ADAM);
    if (!o) o = &adam;
    if (!devs || devs->n < 1) return po_fail(PO_ERR_INVALID_ARG, "planner: no devices");
    if (opts->calibrate < 0) return po_fail(PO_ERR_INVALID_ARG, "planner: calibrate must be at least 0");
    po_planner *p = calloc(1, sizeof *p);
    if (!p) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_measure_opts mo = po_measure_opts_default();
    mo.level = opts->level;
    mo.progress = opts->progress;
    mo.progress_ctx = opts->progress_ctx;
    po_status st = po_workload_from_model(spec, batch, o, &p->w);
    if (!st) st = po_machine_discover(NULL, &p->m);
    if (!st) st = po_hw_profile_get(p->m, devs, &mo, &p->prof);
    if (!st) st = po_cluster_from_profile(p->m, p->prof, &p->cluster);
    if (!st) st = po_cost_model_new(p->cluster, &p->cm);
    if (!st && opts->calibrate > 0) st = calibrate(p, po_workload_name(p->w), o, devs, opts);
    if (st) {
        po_planner_free(p);
        return st;
    }
    *out = p;
    return PO_OK;
}

/* Why a plan: its prediction, its bottleneck (device or link; compute, memory or communication
 * bound), the constraint that binds, the runner-up and how much worse it is, and utilisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

static void fmt_energy(double j, char *buf, size_t size) {
    if (!isfinite(j))
        snprintf(buf, size, "unknown");
    else if (j < 1e-3)
        snprintf(buf, size, "%.3g mJ", j * 1e3);
    else
        snprintf(buf, size, "%.3g J", j);
}

static double pct(double a, double b) { return b > 0.0 ? 100.0 * (a / b - 1.0) : 0.0; }

static void fmt_rate(double v, char *buf, size_t size) {
    if (v >= 1000.0)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.3g", v);
}

static po_status bottleneck(po_plan *p, const po__sim_out *so, const po_cluster *c) {
    double T = so->step_s;
    /* the busiest device by its own compute (CPU all-reduces, which take the workers' time, apart) */
    int k = 0;
    for (int i = 1; i < so->n_dev; i++)
        if (so->d[i].busy_s - so->d[i].comm_s > so->d[k].busy_s - so->d[k].comm_s) k = i;
    const po__sim_device *d = &so->d[k];
    const char *id = c->dev[d->dev].dev.id;
    double compute = d->busy_s - d->comm_s;
    double busy = T > 0.0 ? 100.0 * compute / T : 0.0;
    double exposed = T - compute;
    if (exposed > 0.25 * T && so->allreduce_s > 0.0 && so->allreduce_s >= so->busiest_link_s) {
        const po_plan_stage *st = &p->stages[so->allreduce_stage];
        bool cpu = c->dev[so->d[0].dev].dev.kind == PO_DEVICE_CPU;
        return po__plan_add_sentence(
            p,
            "Bottleneck: communication. The all-reduce of the gradients over the %d replicas of %s takes %.3g ms per "
            "step (%.0f%% of it)%s; the busiest device, %s, computes %.0f%% of the step.",
            st->n_replicas, p->n_stages > 1 ? "the slowest stage" : "the model", so->allreduce_s * 1e3,
            100.0 * so->allreduce_s / T,
            cpu ? ", on the cores themselves (the CPU workers reduce)"
                : ", of which the backward pass hides what it can",
            id, busy);
    }
    if (exposed > 0.25 * T && so->busiest_link_from >= 0) {
        const char *a = c->dev[so->busiest_link_from].dev.id, *b = c->dev[so->busiest_link_to].dev.id;
        if (p->strategy == PO_STRATEGY_PP || p->strategy == PO_STRATEGY_HYBRID)
            return po__plan_add_sentence(
                p,
                "Bottleneck: the pipeline's fill and drain and its transfers. The busiest device, %s, computes %.0f%% "
                "of the step; the busiest link, %s -> %s, carries %.3g ms of activations and gradients per step.",
                id, busy, a, b, so->busiest_link_s * 1e3);
        return po__plan_add_sentence(p,
                                     "Bottleneck: the link %s -> %s, communication-bound: %.3g ms of transfers per "
                                     "step (%.0f%% of it); the busiest device, %s, computes %.0f%% of the step.",
                                     a, b, so->busiest_link_s * 1e3, 100.0 * so->busiest_link_s / T, id, busy);
    }
    double parts = d->flop_s + d->byte_s + d->over_s;
    const char *kind = "compute-bound";
    const char *detail = "in FLOP-limited ops (matrix products at its GEMM rate)";
    double share = parts > 0.0 ? d->flop_s / parts : 0.0;
    if (d->byte_s >= d->flop_s && d->byte_s >= d->over_s) {
        kind = "memory-bound";
        detail = "in ops limited by memory bandwidth (element-wise ops, optimizer updates)";
        share = parts > 0.0 ? d->byte_s / parts : 0.0;
    } else if (d->over_s > d->flop_s && d->over_s > d->byte_s) {
        kind = "overhead-bound";
        detail = "in per-op dispatch overhead (many small ops)";
        share = parts > 0.0 ? d->over_s / parts : 0.0;
    }
    return po__plan_add_sentence(
        p, "Bottleneck: device %s, computing %.0f%% of the step and %s: %.0f%% of its time %s%s.", id, busy, kind,
        100.0 * share, detail, d->comm_s > 0.1 * T ? "; the gradient all-reduce takes the rest" : "");
}

static po_status constraint(po_plan *p, const po__sim_out *so, const po_cluster *c, const char *note) {
    const po__sim_device *d = &so->d[so->worst_mem];
    const po_cluster_device *cd = &c->dev[d->dev];
    char a[32], b[32];
    po__fmt_bytes(d->peak_bytes, a, sizeof a);
    po__fmt_bytes((double)cd->dev.memory_bytes, b, sizeof b);
    bool rc = false;
    for (int s = 0; s < p->n_stages; s++)
        rc = rc || p->stages[s].recompute;
    if (note && strncmp(note, "the memory of", 13) == 0)
        return po__plan_add_sentence(p, "Binding constraint: %s; this plan's largest need is %s of %s on %s%s.", note,
                                     a, b, cd->dev.id,
                                     rc ? " (a stage recomputes its activations in the backward pass to fit)" : "");
    if (rc || so->worst_mem_ratio > 0.8)
        return po__plan_add_sentence(p, "Binding constraint: the memory of %s (peak %s of %s, %.0f%%)%s.", cd->dev.id,
                                     a, b, 100.0 * so->worst_mem_ratio,
                                     rc ? "; a stage recomputes its activations in the backward pass to fit" : "");
    if (note)
        return po__plan_add_sentence(p, "Binding constraint: %s; memory is not short (at most %.0f%%, on %s).", note,
                                     100.0 * so->worst_mem_ratio, cd->dev.id);
    return po__plan_add_sentence(p, "Binding constraint: none; memory is not short (at most %.0f%%: %s of %s on %s).",
                                 100.0 * so->worst_mem_ratio, a, b, cd->dev.id);
}

static po_status runner(po_plan *p, const po_workload *w, const po_plan *r) {
    if (!r) return po__plan_add_sentence(p, "Runner-up: none (no other candidate fits).");
    char sum[256], e1[32], e2[32];
    po_plan_summary(r, w, sum, sizeof sum);
    const po_prediction *a = &p->predicted, *b = &r->predicted;
    fmt_energy(b->energy_j_per_sample, e2, sizeof e2);
    fmt_energy(a->energy_j_per_sample, e1, sizeof e1);
    if (p->objective == PO_OBJECTIVE_TIME)
        return po__plan_add_sentence(p, "Runner-up: %s, predicted %.3g ms per step, %+.1f%% slower (%s per sample).",
                                     sum, b->step_ms, pct(b->step_ms, a->step_ms), e2);
    double ea = a->energy_j_per_sample, eb = b->energy_j_per_sample;
    if (p->objective == PO_OBJECTIVE_ENERGY)
        return po__plan_add_sentence(p, "Runner-up: %s, %s per sample (%+.1f%% energy), %.3g ms per step (%+.1f%%).",
                                     sum, e2, pct(eb, ea), b->step_ms, pct(b->step_ms, a->step_ms));
    return po__plan_add_sentence(p, "Runner-up: %s, energy x delay %+.1f%% (%s per sample, %.3g ms per step).", sum,
                                 pct(eb * b->step_ms, ea * a->step_ms), e2, b->step_ms);
}

static po_status utilisation(po_plan *p, const po__sim_out *so, const po_cluster *c) {
    char buf[900];
    size_t used = (size_t)snprintf(buf, sizeof buf, "Utilisation:");
    double mean = 0.0;
    for (int k = 0; k < so->n_dev; k++)
        mean += so->step_s > 0.0 ? so->d[k].busy_s / so->step_s : 0.0;
    mean /= so->n_dev ? so->n_dev : 1;
    int shown = so->n_dev <= 16 ? so->n_dev : 8;
    for (int k = 0; k < shown && used < sizeof buf; k++)
        used +=
            (size_t)snprintf(buf + used, sizeof buf - used, "%s %s %.0f%%", k ? "," : "", c->dev[so->d[k].dev].dev.id,
                             so->step_s > 0.0 ? 100.0 * so->d[k].busy_s / so->step_s : 0.0);
    if (shown < so->n_dev && used < sizeof buf)
        used +=
            (size_t)snprintf(buf + used, sizeof buf - used, ", ... (%d devices, mean %.0f%%)", so->n_dev, 100.0 * mean);
    return po__plan_add_sentence(p, "%s.", buf);
}

po_status po__plan_explain(po_plan *p, const po_workload *w, const po_cost_model *cm, const po_plan *runner_up,
                           const char *note) {
    for (int i = 0; i < p->n_explanation; i++)
        free(p->explanation[i]);
    free(p->explanation);
    p->explanation = NULL;
    p->n_explanation = 0;
    po__eval e;
    po__eval_init(&e, w, cm);
    po__sim_out so;
    po_status st = po__simulate(&e, p, &so);
    if (st) {
        po__eval_free(&e);
        return st;
    }
    char sum[256], en[32], rate[32];
    po_plan_summary(p, w, sum, sizeof sum);
    fmt_energy(p->predicted.energy_j_per_sample, en, sizeof en);
    fmt_rate(p->predicted.samples_per_s, rate, sizeof rate);
    st = po__plan_add_sentence(p, "Chosen for %s: %s. Predicted %.3g ms per step, %s samples/s, %s per sample (%s).",
                               p->objective == PO_OBJECTIVE_TIME     ? "time"
                               : p->objective == PO_OBJECTIVE_ENERGY ? "energy"
                                                                     : "energy x delay",
                               sum, so.step_s * 1e3, rate, en, p->predicted.energy_source);
    if (!st && so.split_ops) {
        char rides[96] = "";
        if (so.ride_ops)
            snprintf(rides, sizeof rides, "; %d element-wise op%s run%s on each device's part of the product before %s",
                     so.ride_ops, so.ride_ops == 1 ? "" : "s", so.ride_ops == 1 ? "s" : "",
                     so.ride_ops == 1 ? "it" : "them");
        st = po__plan_add_sentence(
            p,
            "Operator split shares %d of the %d ops it could divide%s%s; the optimizer's "
            "updates are shared out to the devices by share.",
            so.split_ops, so.gemm_ops,
            so.split_ops < so.gemm_ops ? " (the others are too small to pay for the hand-off)" : "", rides);
    }
    if (!st) st = bottleneck(p, &so, e.c);
    if (!st) st = constraint(p, &so, e.c, note);
    if (!st) st = runner(p, w, runner_up);
    if (!st) st = utilisation(p, &so, e.c);
    po__sim_out_free(&so);
    po__eval_free(&e);
    return st;
}

po_status po_plan_explain(po_plan *p, const po_workload *w, const po_cost_model *cm, const po_plan *runner_up) {
    return po__plan_explain(p, w, cm, runner_up, NULL);
}

/* paropt train --plan: which devices a run trains on and with what shares — from the planner
 * (auto), a named family (single, dp) or a plan file — and the prediction the run is then
 * measured against. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_cmd.h"

/* Families --plan auto chooses from: those whose predictions held on CPU cores. Pipelines run
 * (--plan pp, plan files), but their predictions were 25-75% optimistic here before per-op times
 * were fitted affinely in rows, and +16%, -3%, -20% after (one run each of the three workloads):
 * not yet trusted for automatic choice; hybrid plans are pipelines of data-parallel groups and
 * inherit that. Operator splits are chosen: one run each on the 2-core VM predicted
 * mnist_mlp's at -2.0% and tiny_gpt's at -7.9% (cifar_cnn's at -9.7%, before blocks were
 * predicted from the whole product's time), so they win only where they do win. */
#define AUTO_FAMILIES ((1u << PO_STRATEGY_SINGLE) | (1u << PO_STRATEGY_DP) | (1u << PO_STRATEGY_OPSPLIT))

static void progress(const char *what, void *ctx) {
    (void)ctx;
    fprintf(stderr, "paropt: measuring %s\n", what);
}

bool train_plan_is_file(const char *plan) {
    return plan && strcmp(plan, "auto") && strcmp(plan, "single") && strcmp(plan, "dp") && strcmp(plan, "pp") &&
           strcmp(plan, "hybrid") && strcmp(plan, "opsplit");
}

/* A plan of one named family over the devices: single on the first, or dp over all with the
 * --shares (even without). */
static po_status named_plan(const train_args *a, const train_setup *s, po_plan *p) {
    memset(p, 0, sizeof *p);
    bool dp = strcmp(a->plan, "dp") == 0 && s->devs.n > 1;
    int n = dp ? s->devs.n : 1;
    p->strategy = dp ? PO_STRATEGY_DP : PO_STRATEGY_SINGLE;
    p->objective = PO_OBJECTIVE_TIME;
    p->max_slowdown_pct = NAN;
    snprintf(p->model, sizeof p->model, "%s", po_workload_name(s->workload));
    p->batch = po_workload_batch(s->workload);
    p->micro_batches = 1;
    p->schedule = PO_SCHEDULE_NONE;
    p->n_stages = 1;
    p->stages = calloc(1, sizeof *p->stages);
    if (p->stages) p->stages->replicas = calloc((size_t)n, sizeof *p->stages->replicas);
    if (!p->stages || !p->stages->replicas) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    p->stages->first_layer = 0;
    p->stages->last_layer = po_workload_n_layers(s->workload) - 1;
    p->stages->n_replicas = n;
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += s->workers[i].share > 0.0 ? s->workers[i].share : 1.0;
    for (int i = 0; i < n; i++) {
        snprintf(p->stages->replicas[i].device, sizeof p->stages->replicas[i].device, "%s", s->devs.dev[i].id);
        p->stages->replicas[i].share = (s->workers[i].share > 0.0 ? s->workers[i].share : 1.0) / total;
    }
    return PO_OK;
}

/* Workers from the plan's devices (in plan order) and shares. */
static int workers_from_plan(const train_args *a, train_setup *s) {
    const po_plan *p = &s->plan;
    int index[64], n = 0;
    if (po_plan_workers(p, &s->devs, s->workers, index, 64, &n)) {
        cli_error("--plan %s: %s", a->plan, po_last_error());
        return CLI_USAGE;
    }
    for (int i = 0; i < n; i++)
        snprintf(s->device_id[i], sizeof s->device_id[i], "%s", s->devs.dev[index[i]].id);
    /* --slowdown-at events name devices by their position in --devices: follow them to their
     * worker. */
    for (int e = 0; e < s->n_slow_events; e++) {
        int w = -1;
        for (int i = 0; i < n; i++)
            if (index[i] == s->slow_events[e].worker) w = i;
        if (w < 0) {
            cli_error("--slowdown-at: %s does not train in the chosen plan", s->devs.dev[s->slow_events[e].worker].id);
            return CLI_USAGE;
        }
        s->slow_events[e].worker = w;
    }
    s->n_workers = n;
    train_plan_pin(s);
    return CLI_OK;
}

void train_plan_pin(const train_setup *s) {
    if (s->n_workers != 1) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = s->workers[0].first_core; c < s->workers[0].first_core + s->workers[0].n_cores; c++)
        CPU_SET(c, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fprintf(stderr, "paropt: warning: cannot pin the training thread to %s\n", s->device_id[0]);
}

/* With auto: the best plan of any family, when it is not one auto chooses from. */
static void note_unrunnable(const po_cost_model *cm, const po_plan_opts *o, train_setup *s) {
    po_plan_opts all = *o;
    all.strategies = 0;
    all.top_k = 1;
    po_plan best;
    memset(&best, 0, sizeof best);
    if (po_plan_search(s->workload, cm, &all, &best) == PO_OK && !((1u << best.strategy) & AUTO_FAMILIES)) {
        char sum[256], line[512];
        double d = 100.0 * (s->plan.predicted.step_ms / best.predicted.step_ms - 1.0);
        snprintf(line, sizeof line,
                 "Not chosen: the best plan of any family, %s, is predicted at %.4g ms per step (this plan %.1f%% "
                 "slower); %s",
                 po_plan_summary(&best, s->workload, sum, sizeof sum), best.predicted.step_ms, d,
                 "pipelines (pp and hybrid) run with --plan pp or --plan hybrid, but their predictions are "
                 "not yet trusted for automatic choice on CPU cores.");
        char **e = realloc(s->plan.explanation, (size_t)(s->plan.n_explanation + 1) * sizeof *e);
        if (e) {
            s->plan.explanation = e;
            e[s->plan.n_explanation] = strdup(line);
            if (e[s->plan.n_explanation]) s->plan.n_explanation++;
        }
    }
    po_clear_error();
    po_plan_free(&best);
}

static void print_plan(const train_setup *s) {
    char sum[256];
    const po_prediction *pr = &s->plan.predicted;
    fprintf(stderr, "plan       %s\n", po_plan_summary(&s->plan, s->workload, sum, sizeof sum));
    fprintf(stderr, "predicted  %.4g ms per step, %.0f samples/s, %.4g J per sample (%s)\n", pr->step_ms,
            pr->samples_per_s, pr->energy_j_per_sample, pr->energy_source);
    for (int i = 0; i < s->plan.n_explanation; i++)
        fprintf(stderr, "%-10s %s\n", i ? "" : "why", s->plan.explanation[i]);
    const po_cost_model *cm = po_planner_cost_model(s->planner);
    const po_cluster *c = po_planner_cluster(s->planner);
    if (po_cluster_size(c) > 1 && po_cost_model_contention(cm, 0) != 1.0) {
        fprintf(stderr, "measured   sharing memory when all compute at once:");
        for (int d = 0; d < po_cluster_size(c); d++)
            fprintf(stderr, "%s %s %.2fx slower", d ? "," : "", po_cluster_device_at(c, d)->dev.id,
                    po_cost_model_contention(cm, d));
        fprintf(stderr, "\n");
    }
}

int train_plan_resolve(const train_args *a, train_setup *s) {
    if (!a->devices) return CLI_OK;
    bool named = strcmp(a->plan, "single") == 0 || strcmp(a->plan, "dp") == 0;
    /* pp, hybrid, opsplit: the best plan of that family over the devices. */
    po_strategy family = PO_STRATEGY_SINGLE;
    bool searched = !named && !train_plan_is_file(a->plan) && strcmp(a->plan, "auto") != 0 &&
                    po_strategy_parse(a->plan, &family) == PO_OK;
    po_planner_opts po = po_planner_opts_default();
    po.calibrate = (int)a->calibrate;
    po.progress = progress;
    po_planner *planner = NULL;
    if (po_planner_new(s->model->spec, s->model->batch, &a->optim, &s->devs, &po, &planner)) {
        cli_error("--plan: %s", po_last_error());
        return CLI_FAIL;
    }
    const po_cost_model *cm = po_planner_cost_model(planner);
    const po_cluster *cluster = po_planner_cluster(planner);
    s->planner = planner; /* teardown frees it: the summary names the plan's layers with it */
    s->workload = po_planner_workload(planner);
    po_plan_opts o = po_plan_opts_default();
    o.objective = a->objective;
    o.max_slowdown_pct = a->max_slowdown;
    o.top_k = 3;
    po_status st = PO_OK;
    bool hit = false;
    if (strcmp(a->plan, "auto") == 0 || searched) {
        o.strategies = searched ? 1u << family : AUTO_FAMILIES;
        /* Through the plan cache when there is one: keyed by the graph, the devices' figures, the
         * measurements and the options, so a graph met again (--seq-lens) is searched once. */
        uint64_t key = po_plan_cache_key(s->workload, cm, &o);
        hit = s->plan_cache && po_plan_cache_get(s->plan_cache, key, &s->plan) == PO_OK;
        if (!hit) {
            po_clear_error();
            st = po_plan_search(s->workload, cm, &o, &s->plan);
            if (!st && !searched) note_unrunnable(cm, &o, s);
            if (!st && s->plan_cache) st = po_plan_cache_put(s->plan_cache, key, &s->plan);
        }
    } else if (train_plan_is_file(a->plan)) {
        st = po_plan_load(a->plan, &s->plan);
        if (!st) st = po_plan_validate(&s->plan, s->workload, cluster);
        /* The file's prediction was made elsewhere: predict again on this machine's figures. */
        po_prediction here;
        memset(&here, 0, sizeof here);
        if (!st) st = po_plan_simulate(&s->plan, s->workload, cm, &here);
        if (!st) {
            po_prediction_free(&s->plan.predicted);
            s->plan.predicted = here;
        }
    } else {
        st = named_plan(a, s, &s->plan);
        if (!st) st = po_plan_simulate(&s->plan, s->workload, cm, &s->plan.predicted);
        if (!st) st = po_plan_explain(&s->plan, s->workload, cm, NULL);
    }
    if (st) {
        /* Hybrid groups are alike devices, at least two per stage over at least two stages. */
        bool few = searched && family == PO_STRATEGY_HYBRID && st == PO_ERR_NOT_FOUND && s->devs.n < 4;
        cli_error("--plan %s: %s%s", a->plan, po_last_error(),
                  few ? " (a hybrid plan needs four devices at least: two stages of two)" : "");
        return CLI_FAIL;
    }
    s->planned = true;
    if (hit)
        s->plan_hits++;
    else
        s->plan_misses++;
    int rc = workers_from_plan(a, s);
    if (!rc && !s->plan_quiet) print_plan(s);
    return rc;
}

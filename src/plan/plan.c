/* The plan as data: names of its enumerations, ownership (free, copy), a one-line summary and
 * structural validation against a workload and a cluster. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

static const char *const strategy_names[PO_STRATEGY_COUNT] = {"single", "dp", "pp", "hybrid", "opsplit"};
static const char *const objective_names[] = {"time", "energy", "edp"};
static const char *const schedule_names[] = {"none", "gpipe", "1f1b"};

const char *po_strategy_name(po_strategy s) { return (unsigned)s < PO_STRATEGY_COUNT ? strategy_names[s] : "?"; }
const char *po_objective_name(po_objective o) { return (unsigned)o < 3 ? objective_names[o] : "?"; }
const char *po_schedule_name(po_schedule s) { return (unsigned)s < 3 ? schedule_names[s] : "?"; }

po_status po_strategy_parse(const char *name, po_strategy *out) {
    for (int i = 0; name && i < PO_STRATEGY_COUNT; i++)
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (po_strategy)i;
            return PO_OK;
        }
    return po_fail(PO_ERR_INVALID_ARG, "unknown strategy \"%s\" (single, dp, pp, hybrid or opsplit)", name ? name : "");
}

po_status po_objective_parse(const char *name, po_objective *out) {
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, objective_names[i]) == 0) {
            *out = (po_objective)i;
            return PO_OK;
        }
    return po_fail(PO_ERR_INVALID_ARG, "unknown objective \"%s\" (time, energy or edp)", name ? name : "");
}

po_status po_schedule_parse(const char *name, po_schedule *out) {
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, schedule_names[i]) == 0) {
            *out = (po_schedule)i;
            return PO_OK;
        }
    return po_fail(PO_ERR_INVALID_ARG, "unknown schedule \"%s\" (none, gpipe or 1f1b)", name ? name : "");
}

po_plan_opts po_plan_opts_default(void) {
    po_plan_opts o = {PO_OBJECTIVE_TIME, NAN, 0, 5, true, 64};
    return o;
}

void po_prediction_free(po_prediction *p) {
    if (!p) return;
    free(p->devices);
    memset(p, 0, sizeof *p);
}

po_status po_prediction_copy(const po_prediction *src, po_prediction *dst) {
    *dst = *src;
    dst->devices = NULL;
    if (src->n_devices) {
        dst->devices = malloc((size_t)src->n_devices * sizeof *dst->devices);
        if (!dst->devices) {
            dst->n_devices = 0;
            return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        }
        memcpy(dst->devices, src->devices, (size_t)src->n_devices * sizeof *dst->devices);
    }
    return PO_OK;
}

void po_plan_free(po_plan *p) {
    if (!p) return;
    for (int s = 0; p->stages && s < p->n_stages; s++)
        free(p->stages[s].replicas);
    free(p->stages);
    po_prediction_free(&p->predicted);
    for (int i = 0; p->explanation && i < p->n_explanation; i++)
        free(p->explanation[i]);
    free(p->explanation);
    for (int i = 0; p->alternatives && i < p->n_alternatives; i++)
        po_prediction_free(&p->alternatives[i].predicted);
    free(p->alternatives);
    memset(p, 0, sizeof *p);
}

po_status po_plan_copy(const po_plan *src, po_plan *dst) {
    memset(dst, 0, sizeof *dst);
    po_plan t = *src;
    t.stages = NULL;
    t.explanation = NULL;
    t.alternatives = NULL;
    t.n_stages = t.n_explanation = t.n_alternatives = 0;
    memset(&t.predicted, 0, sizeof t.predicted);
    po_status st = PO_OK;
    if (src->n_stages) {
        t.stages = calloc((size_t)src->n_stages, sizeof *t.stages);
        if (!t.stages) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int s = 0; !st && s < src->n_stages; s++) {
            t.stages[s] = src->stages[s];
            t.stages[s].replicas =
                malloc((size_t)(src->stages[s].n_replicas ? src->stages[s].n_replicas : 1) * sizeof(po_plan_replica));
            if (!t.stages[s].replicas) {
                t.stages[s].n_replicas = 0;
                st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
                break;
            }
            memcpy(t.stages[s].replicas, src->stages[s].replicas,
                   (size_t)src->stages[s].n_replicas * sizeof(po_plan_replica));
            t.n_stages = s + 1;
        }
    }
    if (!st) st = po_prediction_copy(&src->predicted, &t.predicted);
    if (!st && src->n_explanation) {
        t.explanation = calloc((size_t)src->n_explanation, sizeof(char *));
        if (!t.explanation) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; !st && i < src->n_explanation; i++) {
            if (!(t.explanation[i] = strdup(src->explanation[i]))) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
            t.n_explanation = i + 1;
        }
    }
    if (!st && src->n_alternatives) {
        t.alternatives = calloc((size_t)src->n_alternatives, sizeof *t.alternatives);
        if (!t.alternatives) st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; !st && i < src->n_alternatives; i++) {
            t.alternatives[i] = src->alternatives[i];
            st = po_prediction_copy(&src->alternatives[i].predicted, &t.alternatives[i].predicted);
            t.n_alternatives = i + 1;
        }
    }
    if (st) {
        po_plan_free(&t);
        return st;
    }
    *dst = t;
    return PO_OK;
}

po_status po__plan_init(po_plan *p, po_strategy s, const po_workload *w, int n_stages) {
    memset(p, 0, sizeof *p);
    p->strategy = s;
    p->max_slowdown_pct = NAN;
    p->batch = w ? w->batch : 0;
    if (w) snprintf(p->model, sizeof p->model, "%s", w->name);
    p->micro_batches = 1;
    p->schedule = PO_SCHEDULE_NONE;
    p->stages = calloc((size_t)(n_stages > 0 ? n_stages : 1), sizeof *p->stages);
    if (!p->stages) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    p->n_stages = n_stages;
    return PO_OK;
}

po_status po__stage_set(po_plan_stage *st, int first, int last, int n_replicas) {
    st->first_layer = first;
    st->last_layer = last;
    st->recompute = false;
    free(st->replicas);
    st->replicas = calloc((size_t)(n_replicas > 0 ? n_replicas : 1), sizeof *st->replicas);
    st->n_replicas = st->replicas ? n_replicas : 0;
    return st->replicas ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
}

po_status po__plan_add_sentence(po_plan *p, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **e = realloc(p->explanation, (size_t)(p->n_explanation + 1) * sizeof *e);
    if (!e) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    p->explanation = e;
    if (!(e[p->n_explanation] = strdup(buf))) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    p->n_explanation++;
    return PO_OK;
}

void po__fmt_bytes(double b, char *buf, size_t size) {
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, size, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, size, "%.1f MiB", b / (1024.0 * 1024));
    else
        snprintf(buf, size, "%.0f KiB", b / 1024.0);
}

static const char *layer_label(const po_workload *w, int l, char *buf, size_t size) {
    const char *n = w ? po_workload_layer_name(w, l) : NULL;
    if (n)
        snprintf(buf, size, "%s", n);
    else
        snprintf(buf, size, "%d", l);
    return buf;
}

const char *po_plan_summary(const po_plan *p, const po_workload *w, char *buf, size_t size) {
    size_t used = 0;
#define PUT(...)                                                                                                       \
    do {                                                                                                               \
        if (used < size) used += (size_t)snprintf(buf + used, size - used, __VA_ARGS__);                               \
    } while (0)
    buf[0] = 0;
    if (p->n_stages < 1) {
        PUT("%s (no stages)", po_strategy_name(p->strategy));
        return buf;
    }
    const po_plan_stage *s0 = &p->stages[0];
    switch (p->strategy) {
    case PO_STRATEGY_SINGLE: PUT("single on %s", s0->replicas[0].device); break;
    case PO_STRATEGY_DP:
    case PO_STRATEGY_OPSPLIT:
        PUT("%s over ", po_strategy_name(p->strategy));
        if (s0->n_replicas > 6) {
            PUT("%d devices %s..%s (shares %.3f..%.3f)", s0->n_replicas, s0->replicas[0].device,
                s0->replicas[s0->n_replicas - 1].device, s0->replicas[0].share, s0->replicas[s0->n_replicas - 1].share);
        } else {
            for (int r = 0; r < s0->n_replicas; r++)
                PUT("%s%s (%.2f)", r ? ", " : "", s0->replicas[r].device, s0->replicas[r].share);
        }
        break;
    default:
        PUT("%s: ", po_strategy_name(p->strategy));
        for (int s = 0; s < p->n_stages; s++) {
            const po_plan_stage *st = &p->stages[s];
            char a[64], b[64];
            layer_label(w, st->first_layer, a, sizeof a);
            layer_label(w, st->last_layer, b, sizeof b);
            if (st->first_layer == st->last_layer)
                PUT("%s%s on ", s ? " | " : "", a);
            else
                PUT("%s%s-%s on ", s ? " | " : "", a, b);
            if (st->n_replicas == 1)
                PUT("%s", st->replicas[0].device);
            else
                PUT("%d x [%s..%s]", st->n_replicas, st->replicas[0].device, st->replicas[st->n_replicas - 1].device);
            if (st->recompute) PUT(" (recompute)");
        }
        break;
    }
    if (p->micro_batches > 1 || p->schedule != PO_SCHEDULE_NONE)
        PUT(", %d micro-batch%s %s", p->micro_batches, p->micro_batches == 1 ? "" : "es",
            po_schedule_name(p->schedule));
    else if (p->strategy == PO_STRATEGY_SINGLE && s0->recompute)
        PUT(" (recompute)");
#undef PUT
    return buf;
}

po_status po__plan_devices(const po_plan *p, const po_cluster *c, int **idx, int *n) {
    int total = 0;
    for (int s = 0; s < p->n_stages; s++)
        total += p->stages[s].n_replicas;
    *idx = malloc((size_t)(total ? total : 1) * sizeof(int));
    if (!*idx) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    *n = 0;
    for (int s = 0; s < p->n_stages; s++)
        for (int r = 0; r < p->stages[s].n_replicas; r++) {
            int d = po_cluster_find(c, p->stages[s].replicas[r].device);
            if (d < 0) {
                free(*idx);
                *idx = NULL;
                return po_fail(PO_ERR_NOT_FOUND, "plan: device \"%s\" is not in the cluster",
                               p->stages[s].replicas[r].device);
            }
            for (int k = 0; k < *n; k++)
                if ((*idx)[k] == d) {
                    free(*idx);
                    *idx = NULL;
                    return po_fail(PO_ERR_INVALID_ARG, "plan: device \"%s\" appears twice",
                                   p->stages[s].replicas[r].device);
                }
            (*idx)[(*n)++] = d;
        }
    return PO_OK;
}

po_status po_plan_validate(const po_plan *p, const po_workload *w, const po_cluster *c) {
    if (p->n_stages < 1) return po_fail(PO_ERR_INVALID_ARG, "plan: no stages");
    if ((unsigned)p->strategy >= PO_STRATEGY_COUNT) return po_fail(PO_ERR_INVALID_ARG, "plan: unknown strategy");
    if (p->batch && p->batch != w->batch)
        return po_fail(PO_ERR_INVALID_ARG, "plan: made for batch %lld, the workload has batch %lld",
                       (long long)p->batch, (long long)w->batch);
    if (p->micro_batches < 1 || w->batch % p->micro_batches)
        return po_fail(PO_ERR_INVALID_ARG, "plan: %d micro-batches do not divide the batch of %lld", p->micro_batches,
                       (long long)w->batch);
    int next = 0;
    for (int s = 0; s < p->n_stages; s++) {
        const po_plan_stage *st = &p->stages[s];
        if (st->first_layer != next || st->last_layer < st->first_layer || st->last_layer >= w->n_layers)
            return po_fail(PO_ERR_INVALID_ARG,
                           "plan: stage %d covers layers [%d, %d]; stages must cover layers 0..%d in order", s,
                           st->first_layer, st->last_layer, w->n_layers - 1);
        next = st->last_layer + 1;
        if (st->n_replicas < 1) return po_fail(PO_ERR_INVALID_ARG, "plan: stage %d has no replicas", s);
        double sum = 0.0, rows = (double)w->batch / p->micro_batches;
        for (int r = 0; r < st->n_replicas; r++) {
            double sh = st->replicas[r].share;
            if (!(sh > 0.0 && sh <= 1.0 + 1e-9))
                return po_fail(PO_ERR_INVALID_ARG, "plan: stage %d, device %s: share %g is not in (0, 1]", s,
                               st->replicas[r].device, sh);
            if (p->strategy != PO_STRATEGY_OPSPLIT && sh * rows < 0.5)
                return po_fail(PO_ERR_INVALID_ARG,
                               "plan: stage %d, device %s: share %g gets no sample of a %g-sample "
                               "micro-batch",
                               s, st->replicas[r].device, sh, rows);
            sum += sh;
        }
        if (fabs(sum - 1.0) > 1e-6)
            return po_fail(PO_ERR_INVALID_ARG, "plan: stage %d: shares add up to %g, not 1", s, sum);
    }
    if (next != w->n_layers)
        return po_fail(PO_ERR_INVALID_ARG, "plan: stages end at layer %d; the workload has %d layers", next - 1,
                       w->n_layers);
    if ((p->strategy == PO_STRATEGY_SINGLE && (p->n_stages != 1 || p->stages[0].n_replicas != 1)) ||
        ((p->strategy == PO_STRATEGY_DP || p->strategy == PO_STRATEGY_OPSPLIT) && p->n_stages != 1))
        return po_fail(PO_ERR_INVALID_ARG, "plan: a %s plan has one stage%s", po_strategy_name(p->strategy),
                       p->strategy == PO_STRATEGY_SINGLE ? " with one device" : "");
    if (p->strategy == PO_STRATEGY_PP)
        for (int s = 0; s < p->n_stages; s++)
            if (p->stages[s].n_replicas != 1)
                return po_fail(PO_ERR_INVALID_ARG, "plan: a pp stage has one device (stage %d has %d; use hybrid)", s,
                               p->stages[s].n_replicas);
    int *idx, n;
    po_status st = po__plan_devices(p, c, &idx, &n);
    free(idx);
    return st;
}

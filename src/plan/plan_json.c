/* Plans as JSON: written for people to read and edit, read back with line/column errors. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "plan/plan_internal.h"

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *prediction_json(const po_prediction *p) {
    json_t *peak = json_object(), *mem = json_object(), *busy = json_object();
    for (int i = 0; i < p->n_devices; i++) {
        const po_device_prediction *d = &p->devices[i];
        json_object_set_new(peak, d->device, json_integer(d->peak_memory_bytes));
        json_object_set_new(mem, d->device, json_integer(d->memory_bytes));
        json_object_set_new(busy, d->device, num(d->busy));
    }
    json_t *o = json_object();
    json_object_set_new(o, "step_ms", num(p->step_ms));
    json_object_set_new(o, "samples_per_s", num(p->samples_per_s));
    json_object_set_new(o, "energy_j_per_sample", num(p->energy_j_per_sample));
    json_object_set_new(o, "energy_source", json_string(p->energy_source[0] ? p->energy_source : "unknown"));
    json_object_set_new(o, "fits_memory", json_boolean(p->fits_memory));
    json_object_set_new(o, "peak_memory_bytes", peak);
    json_object_set_new(o, "memory_bytes", mem);
    json_object_set_new(o, "busy", busy);
    return o;
}

static json_t *plan_json(const po_plan *p, const po_workload *w) {
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string("paropt plan 1"));
    json_object_set_new(o, "strategy", json_string(po_strategy_name(p->strategy)));
    json_object_set_new(o, "objective", json_string(po_objective_name(p->objective)));
    json_object_set_new(o, "max_slowdown", num(p->max_slowdown_pct));
    json_object_set_new(o, "model", json_string(p->model));
    json_object_set_new(o, "batch", json_integer(p->batch));
    json_t *stages = json_array();
    for (int s = 0; s < p->n_stages; s++) {
        const po_plan_stage *st = &p->stages[s];
        json_t *so = json_object(), *reps = json_array();
        json_object_set_new(so, "layers", json_pack("[ii]", st->first_layer, st->last_layer));
        if (w && po_workload_layer_name(w, st->first_layer) && po_workload_layer_name(w, st->last_layer))
            json_object_set_new(so, "layer_names",
                                json_pack("[ss]", po_workload_layer_name(w, st->first_layer),
                                          po_workload_layer_name(w, st->last_layer)));
        json_object_set_new(so, "recompute", json_boolean(st->recompute));
        for (int r = 0; r < st->n_replicas; r++)
            json_array_append_new(
                reps, json_pack("{ss so}", "device", st->replicas[r].device, "share", num(st->replicas[r].share)));
        json_object_set_new(so, "replicas", reps);
        json_array_append_new(stages, so);
    }
    json_object_set_new(o, "stages", stages);
    json_object_set_new(o, "micro_batches", json_integer(p->micro_batches));
    json_object_set_new(o, "schedule", json_string(po_schedule_name(p->schedule)));
    json_object_set_new(o, "predicted", prediction_json(&p->predicted));
    json_t *ex = json_array();
    for (int i = 0; i < p->n_explanation; i++)
        json_array_append_new(ex, json_string(p->explanation[i]));
    json_object_set_new(o, "explanation", ex);
    json_t *alts = json_array();
    for (int i = 0; i < p->n_alternatives; i++) {
        const po_plan_alternative *a = &p->alternatives[i];
        json_array_append_new(alts, json_pack("{ss ss so}", "strategy", po_strategy_name(a->strategy), "summary",
                                              a->summary, "predicted", prediction_json(&a->predicted)));
    }
    json_object_set_new(o, "alternatives", alts);
    return o;
}

char *po_plan_to_json(const po_plan *p, const po_workload *w) {
    json_t *o = plan_json(p, w);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return s;
}

po_status po_plan_save(const po_plan *p, const po_workload *w, const char *path) {
    json_t *o = plan_json(p, w);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    if (!s) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_atomic_file af;
    po_status st = po_atomic_begin(path, &af);
    if (!st) {
        st = po_atomic_write(&af, s, strlen(s));
        if (!st) st = po_atomic_write(&af, "\n", 1);
        st = st ? (po_atomic_abort(&af), st) : po_atomic_commit(&af);
    }
    free(s);
    return st;
}

/* --- reading ---------------------------------------------------------------------------------- */

typedef struct {
    const char *text, *origin;
    const char *path[6];
} rd;

static po_status rfail(rd *r, int depth, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static po_status rfail(rd *r, int depth, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    po_status st = po__json_failv(r->text, r->origin, r->path, depth, fmt, ap);
    va_end(ap);
    return st;
}

static po_status get_num(rd *r, json_t *o, const char *key, int d, bool required, double *out) {
    json_t *v = json_object_get(o, key);
    r->path[d] = key;
    if (!v) return required ? rfail(r, d, "missing \"%s\"", key) : PO_OK;
    if (json_is_null(v)) {
        *out = NAN;
        return PO_OK;
    }
    if (!json_is_number(v)) return rfail(r, d + 1, "must be a number");
    *out = json_number_value(v);
    return PO_OK;
}

static po_status read_prediction(rd *r, json_t *o, int d, po_prediction *p) {
    memset(p, 0, sizeof *p);
    if (!json_is_object(o)) return rfail(r, d, "must be an object");
    po_status st = get_num(r, o, "step_ms", d, false, &p->step_ms);
    if (!st) st = get_num(r, o, "samples_per_s", d, false, &p->samples_per_s);
    p->energy_j_per_sample = NAN;
    if (!st) st = get_num(r, o, "energy_j_per_sample", d, false, &p->energy_j_per_sample);
    if (st) return st;
    const char *src = json_string_value(json_object_get(o, "energy_source"));
    snprintf(p->energy_source, sizeof p->energy_source, "%s", src ? src : "unknown");
    p->fits_memory = !json_is_false(json_object_get(o, "fits_memory"));
    json_t *peak = json_object_get(o, "peak_memory_bytes"), *mem = json_object_get(o, "memory_bytes"),
           *busy = json_object_get(o, "busy");
    r->path[d] = "peak_memory_bytes";
    if (peak && !json_is_object(peak)) return rfail(r, d + 1, "must be an object of device: bytes");
    size_t n = peak ? json_object_size(peak) : 0;
    p->devices = calloc(n ? n : 1, sizeof *p->devices);
    if (!p->devices) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    const char *key;
    json_t *v;
    if (peak) json_object_foreach(peak, key, v) {
            po_device_prediction *dp = &p->devices[p->n_devices++];
            snprintf(dp->device, sizeof dp->device, "%s", key);
            r->path[d + 1] = key;
            if (!json_is_integer(v) || json_integer_value(v) < 0) return rfail(r, d + 2, "must be a byte count");
            dp->peak_memory_bytes = json_integer_value(v);
            json_t *m = json_object_get(mem, key), *b = json_object_get(busy, key);
            dp->memory_bytes = json_is_integer(m) ? json_integer_value(m) : 0;
            dp->busy = json_is_number(b) ? json_number_value(b) : NAN;
            dp->energy_j = NAN;
        }
    return PO_OK;
}

static po_status read_stage(rd *r, json_t *o, int s, po_plan_stage *st) {
    char idx[24];
    snprintf(idx, sizeof idx, "#%d", s);
    r->path[0] = "stages";
    r->path[1] = idx;
    if (!json_is_object(o)) return rfail(r, 2, "a stage is an object with layers and replicas");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "layers") && strcmp(key, "layer_names") && strcmp(key, "recompute") &&
            strcmp(key, "replicas")) {
            r->path[2] = key;
            return rfail(r, 3, "unknown key (a stage has layers, replicas, recompute, layer_names)");
        }
    }
    json_t *layers = json_object_get(o, "layers");
    r->path[2] = "layers";
    if (!layers) return rfail(r, 2, "missing \"layers\": [first, last]");
    if (!json_is_array(layers) || json_array_size(layers) != 2 || !json_is_integer(json_array_get(layers, 0)) ||
        !json_is_integer(json_array_get(layers, 1)))
        return rfail(r, 3, "must be [first, last]: two layer indices");
    st->first_layer = (int)json_integer_value(json_array_get(layers, 0));
    st->last_layer = (int)json_integer_value(json_array_get(layers, 1));
    json_t *rc = json_object_get(o, "recompute");
    r->path[2] = "recompute";
    if (rc && !json_is_boolean(rc)) return rfail(r, 3, "must be true or false");
    st->recompute = json_is_true(rc);
    json_t *reps = json_object_get(o, "replicas");
    r->path[2] = "replicas";
    if (!reps) return rfail(r, 2, "missing \"replicas\": [{device, share}, ...]");
    if (!json_is_array(reps) || json_array_size(reps) == 0) return rfail(r, 3, "must be a non-empty array");
    st->replicas = calloc(json_array_size(reps), sizeof *st->replicas);
    if (!st->replicas) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < json_array_size(reps); i++) {
        json_t *x = json_array_get(reps, i);
        char ri[24];
        snprintf(ri, sizeof ri, "#%zu", i);
        r->path[3] = ri;
        if (!json_is_object(x)) return rfail(r, 4, "a replica is {\"device\": ID, \"share\": FRACTION}");
        json_t *dev = json_object_get(x, "device"), *sh = json_object_get(x, "share");
        r->path[4] = "device";
        if (!json_is_string(dev) || !json_string_value(dev)[0] || strlen(json_string_value(dev)) > 31)
            return rfail(r, dev ? 5 : 4, "needs \"device\": a device id of at most 31 characters");
        r->path[4] = "share";
        if (!json_is_number(sh) || !(json_number_value(sh) > 0.0 && json_number_value(sh) <= 1.0))
            return rfail(r, sh ? 5 : 4, "needs \"share\": a number in (0, 1]");
        json_object_foreach(x, key, v) {
            if (strcmp(key, "device") && strcmp(key, "share")) {
                r->path[4] = key;
                return rfail(r, 5, "unknown key (a replica has device and share)");
            }
        }
        snprintf(st->replicas[i].device, sizeof st->replicas[i].device, "%s", json_string_value(dev));
        st->replicas[i].share = json_number_value(sh);
        st->n_replicas = (int)i + 1;
    }
    return PO_OK;
}

static const char *const top_keys[] = {
    "format",        "strategy", "objective", "max_slowdown", "model",        "batch", "stages",
    "micro_batches", "schedule", "predicted", "explanation",  "alternatives", NULL};

static po_status read_plan(rd *r, json_t *root, po_plan *p) {
    if (!json_is_object(root)) return rfail(r, 0, "a plan is a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        bool ok = false;
        for (const char *const *k = top_keys; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok) {
            r->path[0] = key;
            return rfail(r, 1,
                         "unknown key (a plan has strategy, objective, stages, micro_batches, schedule, "
                         "predicted, explanation, alternatives, model, batch, max_slowdown, format)");
        }
    }
    json_t *fmt = json_object_get(root, "format");
    r->path[0] = "format";
    if (fmt && (!json_is_string(fmt) || strcmp(json_string_value(fmt), "paropt plan 1")))
        return rfail(r, 1, "this paropt reads \"paropt plan 1\"");
    r->path[0] = "strategy";
    json_t *s = json_object_get(root, "strategy");
    if (!s) return rfail(r, 0, "missing \"strategy\"");
    if (!json_is_string(s) || po_strategy_parse(json_string_value(s), &p->strategy))
        return rfail(r, 1, "must be single, dp, pp, hybrid or opsplit");
    json_t *o = json_object_get(root, "objective");
    r->path[0] = "objective";
    if (o && (!json_is_string(o) || po_objective_parse(json_string_value(o), &p->objective)))
        return rfail(r, 1, "must be time, energy or edp");
    p->max_slowdown_pct = NAN;
    po_status st = get_num(r, root, "max_slowdown", 0, false, &p->max_slowdown_pct);
    if (st) return st;
    json_t *model = json_object_get(root, "model");
    r->path[0] = "model";
    if (model && !json_is_string(model)) return rfail(r, 1, "must be a string");
    snprintf(p->model, sizeof p->model, "%s", model ? json_string_value(model) : "");
    json_t *batch = json_object_get(root, "batch");
    r->path[0] = "batch";
    if (batch && (!json_is_integer(batch) || json_integer_value(batch) < 0))
        return rfail(r, 1, "must be a whole number of samples");
    p->batch = batch ? json_integer_value(batch) : 0;
    json_t *mb = json_object_get(root, "micro_batches");
    r->path[0] = "micro_batches";
    if (!mb) return rfail(r, 0, "missing \"micro_batches\"");
    if (!json_is_integer(mb) || json_integer_value(mb) < 1 || json_integer_value(mb) > 1 << 20)
        return rfail(r, 1, "must be a whole number >= 1");
    p->micro_batches = (int)json_integer_value(mb);
    json_t *sc = json_object_get(root, "schedule");
    r->path[0] = "schedule";
    if (!sc) return rfail(r, 0, "missing \"schedule\"");
    if (!json_is_string(sc) || po_schedule_parse(json_string_value(sc), &p->schedule))
        return rfail(r, 1, "must be none, gpipe or 1f1b");
    json_t *stages = json_object_get(root, "stages");
    r->path[0] = "stages";
    if (!stages) return rfail(r, 0, "missing \"stages\"");
    if (!json_is_array(stages) || json_array_size(stages) == 0) return rfail(r, 1, "must be a non-empty array");
    p->stages = calloc(json_array_size(stages), sizeof *p->stages);
    if (!p->stages) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < json_array_size(stages); i++) {
        p->n_stages = (int)i + 1;
        if ((st = read_stage(r, json_array_get(stages, i), (int)i, &p->stages[i]))) return st;
    }
    json_t *pred = json_object_get(root, "predicted");
    r->path[0] = "predicted";
    if (pred && (st = read_prediction(r, pred, 1, &p->predicted))) return st;
    json_t *ex = json_object_get(root, "explanation");
    r->path[0] = "explanation";
    if (ex && !json_is_array(ex)) return rfail(r, 1, "must be an array of sentences");
    if (ex && json_array_size(ex)) {
        p->explanation = calloc(json_array_size(ex), sizeof(char *));
        if (!p->explanation) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (size_t i = 0; i < json_array_size(ex); i++) {
            const char *t = json_string_value(json_array_get(ex, i));
            char idx[24];
            snprintf(idx, sizeof idx, "#%zu", i);
            r->path[1] = idx;
            if (!t) return rfail(r, 2, "must be a string");
            if (!(p->explanation[i] = strdup(t))) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
            p->n_explanation = (int)i + 1;
        }
    }
    json_t *alts = json_object_get(root, "alternatives");
    r->path[0] = "alternatives";
    if (alts && !json_is_array(alts)) return rfail(r, 1, "must be an array");
    if (alts && json_array_size(alts)) {
        p->alternatives = calloc(json_array_size(alts), sizeof *p->alternatives);
        if (!p->alternatives) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (size_t i = 0; i < json_array_size(alts); i++) {
            json_t *a = json_array_get(alts, i);
            char idx[24];
            snprintf(idx, sizeof idx, "#%zu", i);
            r->path[0] = "alternatives";
            r->path[1] = idx;
            po_plan_alternative *pa = &p->alternatives[i];
            p->n_alternatives = (int)i + 1;
            r->path[2] = "strategy";
            json_t *as = json_object_get(a, "strategy");
            if (!json_is_string(as) || po_strategy_parse(json_string_value(as), &pa->strategy))
                return rfail(r, as ? 3 : 2, "needs \"strategy\": single, dp, pp, hybrid or opsplit");
            const char *sum = json_string_value(json_object_get(a, "summary"));
            snprintf(pa->summary, sizeof pa->summary, "%s", sum ? sum : "");
            json_t *ap = json_object_get(a, "predicted");
            r->path[2] = "predicted";
            if (ap && (st = read_prediction(r, ap, 3, &pa->predicted))) return st;
        }
    }
    return PO_OK;
}

po_status po_plan_from_json(const char *text, const char *origin, po_plan *out) {
    memset(out, 0, sizeof *out);
    rd r = {text, origin ? origin : "plan", {NULL}};
    json_error_t err;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!root) return po__json_parse_fail(r.origin, &err);
    po_status st = read_plan(&r, root, out);
    json_decref(root);
    if (st) po_plan_free(out);
    return st;
}

po_status po_plan_load(const char *path, po_plan *out) {
    memset(out, 0, sizeof *out);
    char *text;
    po_status st = po__read_text_file(path, &text);
    if (st) return st;
    st = po_plan_from_json(text, path, out);
    free(text);
    return st;
}

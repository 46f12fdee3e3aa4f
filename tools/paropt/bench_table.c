/* paropt bench: the results table, computed from the runs' summaries alone (so every figure
 * agrees with the run it comes from), and the PyTorch peer file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

/* --- small JSON helpers ----------------------------------------------------------------------- */

static double num(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void set(json_t *o, const char *key, json_t *v) { json_object_set_new(o, key, v); }

/* --- per-run figures -------------------------------------------------------------------------- */

/* The devices of the run's plan (every replica of every stage, in order) and their shares. */
static void plan_devices(const json_t *summary, json_t *devices, json_t *shares) {
    json_t *stages = json_object_get(json_object_get(summary, "plan"), "stages"), *st;
    size_t i, j;
    json_array_foreach(stages, i, st) {
        json_t *r;
        json_array_foreach(json_object_get(st, "replicas"), j, r) {
            json_array_append(devices, json_object_get(r, "device"));
            json_array_append_new(shares, jnum(num(r, "share")));
        }
    }
}

/* Mean busy fraction of the plan's devices (those the summary reports), NaN when none. */
static double busy_mean(const json_t *summary, const json_t *devices) {
    json_t *busy = json_object_get(summary, "busy"), *d;
    double sum = 0;
    int n = 0;
    size_t i;
    json_array_foreach(devices, i, d) {
        double b = num(busy, json_string_value(d));
        if (isfinite(b)) sum += b, n++;
    }
    return n ? sum / n : NAN;
}

static const char *energy_kind(const char *s) {
    if (!s) return "unknown";
    bool m = strstr(s, "measured") != NULL, e = strstr(s, "estimated") != NULL;
    return m && !e ? "measured" : e && !m ? "estimated" : "mixed";
}

const char *bench_energy_basis(const char *a, const char *b) {
    const char *ka = energy_kind(a), *kb = energy_kind(b);
    return strcmp(ka, kb) == 0 && strcmp(ka, "mixed") != 0 && strcmp(ka, "unknown") != 0 ? ka : "mixed";
}

/* --- configurations over rounds ---------------------------------------------------------------- */

/* A configuration's runs: those of run's workload, kind and device set, in run order (one per
 * round). A new array; its elements are the runs themselves. */
static json_t *config_of(const json_t *runs, const json_t *run) {
    json_t *cfg = json_array(), *r;
    const char *w = json_string_value(json_object_get(run, "workload")),
               *k = json_string_value(json_object_get(run, "kind"));
    const json_t *d = json_object_get(run, "devices");
    size_t i;
    json_array_foreach(runs, i, r) {
        if (strcmp(json_string_value(json_object_get(r, "workload")), w) == 0 &&
            strcmp(json_string_value(json_object_get(r, "kind")), k) == 0 &&
            json_equal(json_object_get(r, "devices"), d))
            json_array_append(cfg, r);
    }
    return cfg;
}

static const json_t *first(const json_t *cfg) { return json_array_get(cfg, 0); }

static const json_t *summary0(const json_t *cfg) { return json_object_get(first(cfg), "summary"); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the finite values among v[0..n) (sorts them in place); NaN when none. */
static double median(double *v, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) v[m++] = v[i];
    if (m == 0) return NAN;
    qsort(v, m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

/* The median over the configuration's runs of a summary figure (busy: the runs' busy means). */
static double med(const json_t *cfg, const char *key) {
    size_t n = json_array_size(cfg), i;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NAN;
    const json_t *r;
    json_array_foreach(cfg, i, r) {
        const json_t *s = json_object_get(r, "summary");
        if (strcmp(key, "busy") == 0) {
            json_t *devices = json_array(), *shares = json_array();
            plan_devices(s, devices, shares);
            v[i] = busy_mean(s, devices);
            json_decref(devices);
            json_decref(shares);
        } else {
            v[i] = num(s, key);
        }
    }
    double m = median(v, n);
    free(v);
    return m;
}

/* The runs' energy sources: the one source when they agree, else the distinct ones joined by
 * ", " (which bench_energy_basis calls mixed when they differ in kind). NULL when none names one. */
static json_t *energy_sources(const json_t *cfg) {
    char buf[512] = "";
    size_t n = json_array_size(cfg);
    for (size_t i = 0; i < n; i++) {
        const char *src =
            json_string_value(json_object_get(json_object_get(json_array_get(cfg, i), "summary"), "energy_source"));
        bool seen = !src;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *before =
                json_string_value(json_object_get(json_object_get(json_array_get(cfg, j), "summary"), "energy_source"));
            seen = before && strcmp(before, src) == 0;
        }
        size_t len = strlen(buf);
        if (!seen) snprintf(buf + len, sizeof buf - len, "%s%s", len ? ", " : "", src);
    }
    return *buf ? json_string(buf) : json_null();
}

/* run (the first round's index), runs, ms_per_step_rounds and ms_per_step_spread. */
static void set_rounds(json_t *o, const json_t *cfg) {
    json_t *idx = json_array(), *ms = json_array(), *r;
    double lo = INFINITY, hi = -INFINITY;
    size_t i;
    json_array_foreach(cfg, i, r) {
        double v = num(json_object_get(r, "summary"), "ms_per_step");
        json_array_append_new(idx, json_integer(json_integer_value(json_object_get(r, "index"))));
        json_array_append_new(ms, jnum(v));
        if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
    }
    set(o, "run", json_integer(json_integer_value(json_object_get(first(cfg), "index"))));
    set(o, "runs", idx);
    set(o, "ms_per_step_rounds", ms);
    set(o, "ms_per_step_spread", jnum(lo > 0 && isfinite(hi) ? hi / lo - 1 : NAN));
}

static json_t *strategy_rounds(const json_t *cfg) {
    json_t *a = json_array(), *r;
    size_t i;
    json_array_foreach(cfg, i, r)
        json_array_append(a, json_object_get(json_object_get(json_object_get(r, "summary"), "plan"), "strategy"));
    return a;
}

/* --- the table's entries, each from configurations (medians over their rounds) ------------------ */

static json_t *baseline_entry(const json_t *cfg) {
    const json_t *s = summary0(cfg);
    json_t *o = json_object(), *devices = json_array(), *shares = json_array();
    plan_devices(s, devices, shares);
    json_decref(shares);
    set_rounds(o, cfg);
    set(o, "strategy", json_deep_copy(json_object_get(json_object_get(s, "plan"), "strategy")));
    set(o, "ms_per_step", jnum(med(cfg, "ms_per_step")));
    set(o, "samples_per_s", jnum(med(cfg, "samples_per_s")));
    set(o, "energy_j_per_sample", jnum(med(cfg, "energy_j_per_sample")));
    set(o, "energy_source", energy_sources(cfg));
    set(o, "busy_mean", jnum(med(cfg, "busy")));
    set(o, "devices", devices);
    return o;
}

/* A plan's figures and their change against the baseline's (medians, ratios of medians). */
static json_t *plan_entry(const json_t *cfg, const json_t *bcfg) {
    const json_t *s = summary0(cfg);
    json_t *o = json_object(), *devices = json_array(), *shares = json_array();
    plan_devices(s, devices, shares);
    double ms = med(cfg, "ms_per_step"), b_ms = med(bcfg, "ms_per_step");
    double e = med(cfg, "energy_j_per_sample"), b_e = med(bcfg, "energy_j_per_sample");
    double busy = med(cfg, "busy"), b_busy = med(bcfg, "busy");
    json_t *src = energy_sources(cfg), *b_src = energy_sources(bcfg);
    set_rounds(o, cfg);
    set(o, "strategy", json_deep_copy(json_object_get(json_object_get(s, "plan"), "strategy")));
    set(o, "strategy_rounds", strategy_rounds(cfg));
    set(o, "objective", json_deep_copy(json_object_get(json_object_get(s, "plan"), "objective")));
    set(o, "devices", devices);
    set(o, "shares", shares);
    set(o, "ms_per_step", jnum(ms));
    set(o, "samples_per_s", jnum(med(cfg, "samples_per_s")));
    set(o, "speedup", jnum(b_ms / ms));
    set(o, "energy_j_per_sample", jnum(e));
    set(o, "energy_basis", json_string(bench_energy_basis(json_string_value(src), json_string_value(b_src))));
    set(o, "energy_source", src);
    set(o, "baseline_energy_source", b_src);
    set(o, "energy_per_sample_change_pct", jnum((e / b_e - 1) * 100));
    set(o, "busy_mean", jnum(busy));
    set(o, "baseline_busy_mean", jnum(b_busy));
    set(o, "utilization_change_pp", jnum((busy - b_busy) * 100));
    return o;
}

static json_t *scaling_point(const json_t *cfg, const json_t *bcfg) {
    double ms = med(cfg, "ms_per_step"), b_ms = med(bcfg, "ms_per_step");
    json_t *devices = json_object_get(first(cfg), "devices");
    double k = (double)json_array_size(devices);
    json_t *o = json_object();
    set(o, "k", json_integer((json_int_t)k));
    set_rounds(o, cfg);
    set(o, "devices", json_deep_copy(devices));
    set(o, "ms_per_step", jnum(ms));
    set(o, "samples_per_s", jnum(med(cfg, "samples_per_s")));
    set(o, "speedup", jnum(b_ms / ms));
    set(o, "efficiency", jnum(b_ms / ms / k));
    return o;
}

static json_t *prediction(const json_t *cfg) {
    json_t *o = json_object();
    set_rounds(o, cfg);
    set(o, "label", json_deep_copy(json_object_get(first(cfg), "label")));
    set(o, "predicted_step_ms", jnum(med(cfg, "predicted_step_ms")));
    set(o, "measured_step_ms", jnum(med(cfg, "measured_step_ms")));
    set(o, "prediction_error", jnum(med(cfg, "prediction_error")));
    return o;
}

/* --- PyTorch ---------------------------------------------------------------------------------- */

/* Median ms_per_step of the matched records with this thread count, and how many there are. */
static double median_ms(const json_t *records, const int *match, int threads, int *count) {
    size_t n = json_array_size(records), m = 0;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NAN;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(records, i);
        if (match[i] && json_integer_value(json_object_get(r, "threads")) == threads) v[m++] = num(r, "ms_per_step");
    }
    qsort(v, m, sizeof *v, cmp_double);
    double med = m == 0 ? NAN : m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
    free(v);
    *count = (int)m;
    return med;
}

/* The PyTorch figures for a workload: records of the same model at the same batch (and with the
 * same parameter count, where the record gives one); the median per thread count. NULL (json
 * null) when no record matches. */
static json_t *pytorch_entry(const json_t *records, const json_t *bcfg, const json_t *acfg, json_int_t params) {
    const json_t *s = summary0(bcfg);
    const char *model = json_string_value(json_object_get(s, "model"));
    json_int_t batch = json_integer_value(json_object_get(s, "batch"));
    size_t n = json_array_size(records);
    int *match = calloc(n ? n : 1, sizeof *match);
    if (!match) return json_null();
    json_int_t many = 0;
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(records, i), *rb = json_object_get(r, "batch"), *rp = json_object_get(r, "params");
        match[i] = model && strcmp(json_string_value(json_object_get(r, "workload")), model) == 0 &&
                   (!rb || json_integer_value(rb) == batch) && (!rp || params < 0 || json_integer_value(rp) == params);
        json_int_t t = json_integer_value(json_object_get(r, "threads"));
        if (match[i] && t > 1 && t > many) many = t;
        any |= match[i];
    }
    if (!any) {
        free(match);
        return json_null();
    }
    int n1 = 0, nm = 0;
    double one = median_ms(records, match, 1, &n1), all = many ? median_ms(records, match, (int)many, &nm) : NAN;
    free(match);
    json_t *o = json_object();
    set(o, "batch", json_integer(batch));
    set(o, "one_thread_ms_per_step", jnum(one));
    set(o, "one_thread_records", json_integer(n1));
    set(o, "threads", many ? json_integer(many) : json_null());
    set(o, "threads_ms_per_step", jnum(all));
    set(o, "threads_records", json_integer(nm));
    bool all_best = isfinite(all) && !(one <= all);
    double best = all_best ? all : one;
    set(o, "best_ms_per_step", jnum(best));
    set(o, "best_threads", json_integer(all_best ? many : 1));
    /* Speed-ups of paropt over PyTorch: one device against one thread, the time-optimal plan
     * against PyTorch's best (paropt's medians over the rounds). */
    set(o, "speedup_baseline_vs_one_thread", jnum(one / med(bcfg, "ms_per_step")));
    set(o, "speedup_auto_vs_best", jnum(best / med(acfg, "ms_per_step")));
    return o;
}

/* --- the table -------------------------------------------------------------------------------- */

static const json_t *find_run(const json_t *runs, const char *workload, const char *kind) {
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        if (strcmp(json_string_value(json_object_get(r, "workload")), workload) == 0 &&
            strcmp(json_string_value(json_object_get(r, "kind")), kind) == 0)
            return r;
    }
    return NULL;
}

json_t *bench_table(const json_t *results) {
    const json_t *runs = json_object_get(results, "runs");
    const json_t *peer = json_object_get(json_object_get(results, "peer"), "records");
    json_t *table = json_array(), *w;
    size_t wi;
    json_array_foreach(json_object_get(json_object_get(results, "settings"), "workloads"), wi, w) {
        const char *spec = json_string_value(json_object_get(w, "spec"));
        const json_t *base = find_run(runs, spec, "baseline"), *au = find_run(runs, spec, "auto"),
                     *en = find_run(runs, spec, "energy");
        if (!base || !au || !en) continue;
        json_t *bcfg = config_of(runs, base), *acfg = config_of(runs, au), *ecfg = config_of(runs, en);
        const json_t *bs = json_object_get(base, "summary");
        json_t *o = json_object();
        set(o, "workload", json_string(spec));
        set(o, "model", json_deep_copy(json_object_get(bs, "model")));
        set(o, "batch", json_deep_copy(json_object_get(bs, "batch")));
        set(o, "config", json_deep_copy(json_object_get(bs, "config")));
        set(o, "baseline", baseline_entry(bcfg));
        set(o, "auto", plan_entry(acfg, bcfg));
        set(o, "energy", plan_entry(ecfg, bcfg));
        json_t *scaling = json_array(), *pred = json_array(), *r;
        json_array_append_new(scaling, scaling_point(bcfg, bcfg));
        size_t i;
        /* One entry per configuration, in the order of its first round's run. */
        json_array_foreach(runs, i, r) {
            if (strcmp(json_string_value(json_object_get(r, "workload")), spec) != 0) continue;
            json_t *cfg = config_of(runs, r);
            if (first(cfg) == r) {
                if (strcmp(json_string_value(json_object_get(r, "kind")), "scaling") == 0)
                    json_array_append_new(scaling, scaling_point(cfg, bcfg));
                json_array_append_new(pred, prediction(cfg));
            }
            json_decref(cfg);
        }
        set(o, "scaling", scaling);
        set(o, "prediction", pred);
        if (peer) {
            json_t *p = json_object_get(w, "params");
            set(o, "pytorch", pytorch_entry(peer, bcfg, acfg, json_is_integer(p) ? json_integer_value(p) : -1));
        }
        json_decref(bcfg);
        json_decref(acfg);
        json_decref(ecfg);
        json_array_append_new(table, o);
    }
    return table;
}

/* --- the peer file ---------------------------------------------------------------------------- */

static bool valid_record(const json_t *r) {
    json_t *w = json_object_get(r, "workload"), *t = json_object_get(r, "threads"),
           *ms = json_object_get(r, "ms_per_step");
    json_t *b = json_object_get(r, "batch"), *p = json_object_get(r, "params");
    return json_is_string(w) && json_is_integer(t) && json_integer_value(t) >= 1 && json_is_number(ms) &&
           json_number_value(ms) > 0 && isfinite(json_number_value(ms)) &&
           (!b || (json_is_integer(b) && json_integer_value(b) >= 1)) &&
           (!p || (json_is_integer(p) && json_integer_value(p) >= 0));
}

json_t *bench_peer_read(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("--peer: cannot open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    json_t *records = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    bool ok = true;
    while (ok && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        json_error_t je;
        json_t *r = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(r)) {
            cli_error("--peer %s:%d: not a JSON object (%s)", path, lineno, r ? "another JSON value" : je.text);
            ok = false;
        } else if (!valid_record(r)) {
            cli_error("--peer %s:%d: a record needs \"workload\" (text), \"threads\" (integer >= 1) and "
                      "\"ms_per_step\" (number > 0); \"batch\" and \"params\" are integers",
                      path, lineno);
            ok = false;
        } else {
            json_array_append(records, r);
        }
        json_decref(r);
    }
    if (ok && ferror(f)) {
        cli_error("--peer: cannot read \"%s\": %s", path, strerror(errno));
        ok = false;
    }
    if (ok && json_array_size(records) == 0) {
        cli_error("--peer %s: no records (one JSON object per line expected, as bench/peer/torch_bench.sh writes)",
                  path);
        ok = false;
    }
    free(line);
    fclose(f);
    if (!ok) {
        json_decref(records);
        return NULL;
    }
    return records;
}

/* paropt bench: the results as text (stdout) and as one self-contained HTML page. Both read
 * only the results object (what results.json holds), so the page can be rebuilt from the file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "report/html.h"
#include "report/svg_chart.h"

/* --- reading the results ------------------------------------------------------------------------ */

static double num(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The suite's rounds (settings.rounds; 1 when absent). With more than one, every figure of the
 * table is a median over the rounds and the presentation adds each configuration's spread. */
static long long rounds_of(const json_t *results) {
    json_t *r = json_object_get(json_object_get(results, "settings"), "rounds");
    return json_is_integer(r) && json_integer_value(r) > 1 ? (long long)json_integer_value(r) : 1;
}

/* The strategies of a plan's rounds, "single, dp", when they differ (else ""). */
static void strategies_text(char *buf, size_t size, const json_t *e) {
    const json_t *a = json_object_get(e, "strategy_rounds"), *v;
    size_t i;
    bool differ = false;
    json_array_foreach(a, i, v) differ |= !json_equal(v, json_array_get(a, 0));
    buf[0] = 0;
    if (!differ) return;
    json_array_foreach(a, i, v) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", json_is_string(v) ? json_string_value(v) : "?");
    }
}

/* "dp: cpu:0 0.43, cpu:1 0.57" or "single: cpu:0". */
static void plan_text(char *buf, size_t size, const json_t *entry) {
    const json_t *devs = json_object_get(entry, "devices"), *shares = json_object_get(entry, "shares");
    int n = snprintf(buf, size, "%s:", str(entry, "strategy"));
    for (size_t i = 0; i < json_array_size(devs) && n >= 0 && (size_t)n < size; i++) {
        double s = json_number_value(json_array_get(shares, i));
        if (json_array_size(devs) > 1 && shares)
            n += snprintf(buf + n, size - (size_t)n, "%s %s %.2f", i ? "," : "",
                          json_string_value(json_array_get(devs, i)), s);
        else
            n += snprintf(buf + n, size - (size_t)n, "%s %s", i ? "," : "", json_string_value(json_array_get(devs, i)));
    }
}

/* A workload's short name for charts: the model name, numbered when models repeat. */
static void short_name(char *buf, size_t size, const json_t *table, size_t w) {
    const char *model = str(json_array_get(table, w), "model");
    int same = 0, before = 0;
    for (size_t i = 0; i < json_array_size(table); i++)
        if (strcmp(str(json_array_get(table, i), "model"), model) == 0) same++, before += i < w;
    if (same > 1)
        snprintf(buf, size, "%s (%d)", model, before + 1);
    else
        snprintf(buf, size, "%s", model);
}

static const char *SOURCE_NOTES[][2] = {
    {"measured:rapl", "measured: the CPU packages' RAPL energy counters (and their DRAM's), read before and after "
                      "the timed steps"},
    {"measured:nvml", "measured: the GPUs' NVML energy counters (or their power readings, integrated)"},
    {"estimated:model", "an estimate, not a measurement: each core's busy time from /proc/stat and the catalog's "
                        "idle and TDP power per core for this CPU (idle + (TDP - idle) x utilization)"},
};

/* --- text --------------------------------------------------------------------------------------- */

/* With several rounds: the configuration's spread, and its plans when the rounds chose different
 * ones; then the end of the line. */
static void text_rounds_end(FILE *f, const json_t *e, long long rounds) {
    if (rounds > 1) {
        char by[256];
        fprintf(f, "  spread %.1f%%", num(e, "ms_per_step_spread") * 100);
        strategies_text(by, sizeof by, e);
        if (*by) fprintf(f, " (plans by round: %s)", by);
    }
    fputc('\n', f);
}

static void text_plan_row(FILE *f, const char *label, const json_t *e, long long rounds) {
    char plan[256];
    plan_text(plan, sizeof plan, e);
    fprintf(f, "  %-18s %-30s %9.3f ms/step %9.1f samples/s  %5.2fx  energy/sample %+6.1f%% (%s)  busy %+5.1f pp",
            label, plan, num(e, "ms_per_step"), num(e, "samples_per_s"), num(e, "speedup"),
            num(e, "energy_per_sample_change_pct"), str(e, "energy_basis"), num(e, "utilization_change_pp"));
    text_rounds_end(f, e, rounds);
}

void bench_report_text(FILE *f, const json_t *results) {
    const json_t *m = json_object_get(results, "machine"), *s = json_object_get(results, "settings");
    long long rounds = rounds_of(results);
    fprintf(f, "paropt bench on %s: %s, %lld cores; paropt %s; %lld steps after %lld warm-up steps%s",
            str(m, "hostname"), str(m, "cpu_model"), (long long)json_integer_value(json_object_get(m, "cores")),
            str(results, "paropt_version"), (long long)json_integer_value(json_object_get(s, "steps")),
            (long long)json_integer_value(json_object_get(s, "warmup")),
            json_is_true(json_object_get(s, "quick")) ? " (quick)" : "");
    if (rounds > 1) fprintf(f, "; medians of %lld rounds", rounds);
    fputc('\n', f);
    const json_t *table = json_object_get(results, "table"), *w;
    size_t i;
    json_array_foreach(table, i, w) {
        const json_t *b = json_object_get(w, "baseline");
        fprintf(f, "\n%s (batch %lld)\n", str(w, "workload"),
                (long long)json_integer_value(json_object_get(w, "batch")));
        char plan[256];
        plan_text(plan, sizeof plan, b);
        fprintf(f, "  %-18s %-30s %9.3f ms/step %9.1f samples/s  %.4g J/sample (%s)  busy %.0f%%", "baseline", plan,
                num(b, "ms_per_step"), num(b, "samples_per_s"), num(b, "energy_j_per_sample"), str(b, "energy_source"),
                num(b, "busy_mean") * 100);
        text_rounds_end(f, b, rounds);
        text_plan_row(f, "auto plan", json_object_get(w, "auto"), rounds);
        text_plan_row(f, "energy-aware plan", json_object_get(w, "energy"), rounds);
        fprintf(f, "  %-18s", "scaling efficiency");
        const json_t *p;
        size_t k;
        json_array_foreach(json_object_get(w, "scaling"), k, p) {
            fprintf(f, "%s %lld: %.2fx (%.0f%%)", k ? "," : "", (long long)json_integer_value(json_object_get(p, "k")),
                    num(p, "speedup"), num(p, "efficiency") * 100);
            if (rounds > 1) fprintf(f, " spread %.1f%%", num(p, "ms_per_step_spread") * 100);
        }
        fprintf(f, "\n  %-18s", "predicted/measured");
        json_array_foreach(json_object_get(w, "prediction"), k, p) {
            fprintf(f, "%s %s %.4g/%.4g ms (%+.0f%%)", k ? "," : "", str(p, "label"), num(p, "predicted_step_ms"),
                    num(p, "measured_step_ms"), num(p, "prediction_error") * 100);
        }
        fputc('\n', f);
        const json_t *pt = json_object_get(w, "pytorch");
        if (json_is_object(pt)) {
            fprintf(f, "  %-18s 1 thread %.4g ms/step (paropt on one device %.2fx)", "PyTorch",
                    num(pt, "one_thread_ms_per_step"), num(pt, "speedup_baseline_vs_one_thread"));
            long long bt = (long long)json_integer_value(json_object_get(pt, "best_threads"));
            fprintf(f, "; best (%lld thread%s) %.4g ms/step (auto plan %.2fx)\n", bt, bt == 1 ? "" : "s",
                    num(pt, "best_ms_per_step"), num(pt, "speedup_auto_vs_best"));
        } else if (json_object_get(w, "pytorch")) {
            fprintf(f, "  %-18s no record for this model at batch %lld in the peer file\n", "PyTorch",
                    (long long)json_integer_value(json_object_get(w, "batch")));
        }
    }
    fprintf(f, "\nspeed-up: baseline ms/step / plan ms/step; energy/sample change against the baseline, marked "
               "measured, estimated or mixed by its sources; busy: mean busy fraction of the plan's devices against "
               "the baseline's, in percentage points\n");
    if (rounds > 1)
        fprintf(f,
                "rounds: the suite ran %lld times, every configuration once per round; each figure above (ms/step, "
                "samples/s, J/sample, busy, predicted/measured and the error) is the median of the configuration's "
                "%lld runs, and speed-ups, energy changes and efficiencies are computed from those medians; spread: "
                "max/min - 1 of the configuration's ms/step over the rounds\n",
                rounds, rounds);
    for (size_t n = 0; n < sizeof SOURCE_NOTES / sizeof *SOURCE_NOTES; n++) {
        const json_t *r;
        json_array_foreach(json_object_get(results, "runs"), i, r) {
            if (strstr(str(json_object_get(r, "summary"), "energy_source"), SOURCE_NOTES[n][0])) {
                fprintf(f, "energy source %s: %s\n", SOURCE_NOTES[n][0], SOURCE_NOTES[n][1]);
                break;
            }
        }
    }
}

/* --- HTML --------------------------------------------------------------------------------------- */

/* This page's rules after the shared ones (po__html_base_css); no '<' or '&' in here. */
static const char CSS[] = "td.plan{white-space:nowrap}\n"
                          "td.workload{max-width:12em;overflow-wrap:anywhere}\n"
                          "div.wide{overflow-x:auto}\n"
                          ".machine{font-weight:600}\n"
                          ".source.estimated{color:#7a5000;background:#fff8e6;border-color:#f0d9a0}\n";

static void td_num(FILE *f, double v, int digits, const char *suffix) {
    char buf[64];
    fputs("<td class=\"num\">", f);
    po__html_text(f, po__fmt_num(buf, sizeof buf, v, digits));
    if (isfinite(v) && suffix) po__html_text(f, suffix);
    fputs("</td>", f);
}

static void td_text(FILE *f, const char *s) {
    fputs("<td>", f);
    po__html_text(f, s);
    fputs("</td>", f);
}

static void source_tag(FILE *f, const char *source) {
    fprintf(f, "<span class=\"source%s\">", strstr(source, "estimated") ? " estimated" : "");
    po__html_text(f, *source ? source : "no source");
    fputs("</span>", f);
}

static void section_open(FILE *f, const char *id, const char *title) {
    fprintf(f, "<section id=\"%s\">\n<h2>", id);
    po__html_text(f, title);
    fputs("</h2>\n", f);
}

static void header(FILE *f, const json_t *results, bool peer) {
    const json_t *m = json_object_get(results, "machine"), *s = json_object_get(results, "settings");
    fputs("<header>\n<h1>paropt bench</h1>\n<p class=\"machine\">", f);
    po__html_textf(f, "%s: %s, %lld cores (%lld hardware threads); %s; %s; paropt %s", str(m, "hostname"),
                   str(m, "cpu_model"), (long long)json_integer_value(json_object_get(m, "cores")),
                   (long long)json_integer_value(json_object_get(m, "threads")), str(m, "os"), str(m, "date"),
                   str(results, "paropt_version"));
    fputs("</p>\n<p class=\"note\">", f);
    po__html_textf(
        f,
        "Each run trains %lld steps on synthetic data and times the last %lld (%lld warm-up steps); the "
        "planner calibrates from %lld step(s). Devices:",
        (long long)json_integer_value(json_object_get(s, "steps")),
        (long long)(json_integer_value(json_object_get(s, "steps")) - json_integer_value(json_object_get(s, "warmup"))),
        (long long)json_integer_value(json_object_get(s, "warmup")),
        (long long)json_integer_value(json_object_get(s, "calibrate")));
    const json_t *d;
    size_t i;
    json_array_foreach(json_object_get(s, "devices"), i, d) {
        fputs(i ? ", " : " ", f);
        po__html_text(f, json_string_value(d));
    }
    po__html_textf(f, ". The suite took %.0f s%s.", num(results, "duration_s"),
                   json_is_true(json_object_get(s, "quick")) ? " (--quick)" : "");
    long long rounds = rounds_of(results);
    if (rounds > 1)
        po__html_textf(f,
                       " It ran %lld rounds, every configuration once per round in the same order: the figures "
                       "are medians over the rounds (see the notes), each with its spread.",
                       rounds);
    fputs("</p>\n<nav><a href=\"#results\">Results</a><a href=\"#speedup\">Speed-up</a><a href=\"#energy\">Energy</a>"
          "<a href=\"#scaling\">Scaling</a><a href=\"#prediction\">Prediction</a>",
          f);
    if (peer) fputs("<a href=\"#pytorch\">PyTorch</a>", f);
    fputs("<a href=\"#runs\">Runs</a><a href=\"#notes\">Notes</a></nav>\n</header>\n", f);
}

static void signed_num(FILE *f, double v, const char *unit) {
    char buf[64];
    if (isfinite(v) && v > 0) fputc('+', f);
    po__html_text(f, po__fmt_num(buf, sizeof buf, v, 3));
    if (isfinite(v)) po__html_text(f, unit);
}

/* A configuration's spread over the rounds as a cell, with its ms per step in each round. */
static void td_spread(FILE *f, const json_t *e) {
    char buf[64];
    fputs("<td class=\"num\">", f);
    po__html_text(f, po__fmt_num(buf, sizeof buf, num(e, "ms_per_step_spread") * 100, 3));
    if (isfinite(num(e, "ms_per_step_spread"))) fputc('%', f);
    fputs("<br/><span class=\"note\">", f);
    const json_t *v;
    size_t i;
    json_array_foreach(json_object_get(e, "ms_per_step_rounds"), i, v) {
        if (i) fputs(", ", f);
        po__html_text(f, po__fmt_num(buf, sizeof buf, json_is_number(v) ? json_number_value(v) : NAN, 4));
    }
    fputs("</span></td>", f);
}

/* One row of the results table: the baseline or a plan compared with it. */
static void result_row(FILE *f, const char *what, const json_t *e, bool base, long long rounds) {
    char plan[256], buf[64];
    plan_text(plan, sizeof plan, e);
    td_text(f, what);
    fputs("<td class=\"plan\">", f);
    po__html_text(f, plan);
    char by[256];
    strategies_text(by, sizeof by, e);
    if (*by) {
        fputs("<br/><span class=\"note\">by round: ", f);
        po__html_text(f, by);
        fputs("</span>", f);
    }
    fputs("</td>", f);
    td_num(f, num(e, "ms_per_step"), 4, NULL);
    if (rounds > 1) td_spread(f, e);
    td_num(f, num(e, "samples_per_s"), 4, NULL);
    if (base)
        fputs("<td class=\"num\">1x</td>", f);
    else
        td_num(f, num(e, "speedup"), 3, "x");
    fputs("<td class=\"num\">", f);
    po__html_text(f, po__fmt_num(buf, sizeof buf, num(e, "energy_j_per_sample"), 3));
    fputs("<br/>", f);
    source_tag(f, str(e, "energy_source"));
    fputs("</td><td class=\"num\">", f);
    if (base) {
        fputs("-", f);
    } else {
        signed_num(f, num(e, "energy_per_sample_change_pct"), "%");
        fputs("<br/><span class=\"note\">", f);
        po__html_text(f, str(e, "energy_basis"));
        fputs("</span>", f);
    }
    fputs("</td><td class=\"num\">", f);
    po__html_text(f, po__fmt_num(buf, sizeof buf, num(e, "busy_mean") * 100, 3));
    fputs("%", f);
    if (!base) {
        fputs("<br/>", f);
        signed_num(f, num(e, "utilization_change_pp"), " pp");
    }
    fputs("</td>", f);
}

static void section_results(FILE *f, const json_t *results) {
    const json_t *table = json_object_get(results, "table"), *w;
    size_t i;
    long long rounds = rounds_of(results);
    int wide = rounds > 1 ? 8 : 7; /* the columns after the run's name */
    section_open(f, "results", "Results");
    fputs("<p class=\"note\">Per workload: the baseline on one device, the automatic (time-optimal) plan and the "
          "energy-aware plan over every device. Speed-up: the baseline's ms per step over the plan's. Energy per "
          "sample with its source, and its change against the baseline (basis: measured only when both figures are "
          "measured). Busy: mean busy fraction of the plan's devices, and its change against the baseline device's "
          "in percentage points (pp). Scaling efficiency: the speed-up of data parallel over k devices divided by "
          "k.",
          f);
    if (rounds > 1)
        po__html_textf(f,
                       " Every figure is the median over the %lld rounds, and every ratio is computed from medians; "
                       "spread: the largest ms per step of a configuration's rounds over its smallest, minus 1 (its "
                       "ms per step in each round below it).",
                       rounds);
    fputs("</p>\n<div class=\"wide\"><table class=\"results\">\n<thead><tr><th>workload</th><th>run</th>"
          "<th>plan (shares)</th><th>ms/step</th>",
          f);
    if (rounds > 1) fputs("<th>spread (ms/step by round)</th>", f);
    fputs("<th>samples/s</th><th>speed-up</th><th>J/sample</th>"
          "<th>energy/sample vs baseline (basis)</th><th>busy (vs baseline)</th></tr>"
          "</thead>\n<tbody>\n",
          f);
    json_array_foreach(table, i, w) {
        const json_t *pt = json_object_get(w, "pytorch");
        int rows = 4 + (pt ? 1 : 0);
        fprintf(f, "<tr><td class=\"workload\" rowspan=\"%d\"><b>", rows);
        po__html_text(f, str(w, "workload"));
        fprintf(f, "</b><br/>batch %lld</td>", (long long)json_integer_value(json_object_get(w, "batch")));
        result_row(f, "baseline", json_object_get(w, "baseline"), true, rounds);
        fputs("</tr>\n<tr>", f);
        result_row(f, "automatic plan", json_object_get(w, "auto"), false, rounds);
        fputs("</tr>\n<tr>", f);
        result_row(f, "energy-aware plan", json_object_get(w, "energy"), false, rounds);
        fprintf(f, "</tr>\n<tr><td>scaling efficiency</td><td colspan=\"%d\">", wide);
        const json_t *p;
        size_t k;
        char buf[64];
        json_array_foreach(json_object_get(w, "scaling"), k, p) {
            po__html_textf(f, "%s%lld device%s: ", k ? "; " : "",
                           (long long)json_integer_value(json_object_get(p, "k")), k ? "s" : "");
            po__html_text(f, po__fmt_num(buf, sizeof buf, num(p, "efficiency") * 100, 3));
            po__html_text(f, "% (");
            po__html_text(f, po__fmt_num(buf, sizeof buf, num(p, "speedup"), 3));
            po__html_text(f, "x");
            if (rounds > 1) {
                po__html_text(f, ", spread ");
                po__html_text(f, po__fmt_num(buf, sizeof buf, num(p, "ms_per_step_spread") * 100, 3));
                po__html_text(f, "%");
            }
            po__html_text(f, ")");
        }
        fputs("</td></tr>\n", f);
        if (pt) {
            fprintf(f, "<tr><td>PyTorch</td><td colspan=\"%d\">", wide);
            if (!json_is_object(pt)) {
                po__html_text(f, "no record of this model at this batch in the peer file");
            } else {
                po__html_text(f, "1 thread ");
                po__html_text(f, po__fmt_num(buf, sizeof buf, num(pt, "one_thread_ms_per_step"), 4));
                po__html_text(f, " ms/step: paropt on one device ");
                po__html_text(f, po__fmt_num(buf, sizeof buf, num(pt, "speedup_baseline_vs_one_thread"), 3));
                long long bt = (long long)json_integer_value(json_object_get(pt, "best_threads"));
                po__html_textf(f, "x; best (%lld thread%s) ", bt, bt == 1 ? "" : "s");
                po__html_text(f, po__fmt_num(buf, sizeof buf, num(pt, "best_ms_per_step"), 4));
                po__html_text(f, " ms/step: paropt's automatic plan ");
                po__html_text(f, po__fmt_num(buf, sizeof buf, num(pt, "speedup_auto_vs_best"), 3));
                po__html_text(f, "x (PyTorch ms / paropt ms)");
            }
            fputs("</td></tr>\n", f);
        }
    }
    fputs("</tbody>\n</table></div>\n</section>\n", f);
}

static void section_speedup(FILE *f, const json_t *results) {
    const json_t *table = json_object_get(results, "table");
    size_t n = json_array_size(table), nb = 0;
    section_open(f, "speedup", "Speed-up over one device");
    const char **labels = calloc(3 * n + 1, sizeof *labels), **colours = calloc(3 * n + 1, sizeof *colours);
    char(*text)[96] = calloc(3 * n + 1, sizeof *text);
    double *v = calloc(3 * n + 1, sizeof *v);
    if (labels && colours && text && v) {
        for (size_t w = 0; w < n; w++) {
            const json_t *e = json_array_get(table, w), *sc = json_object_get(e, "scaling");
            const json_t *last = json_array_get(sc, json_array_size(sc) - 1);
            char name[64];
            short_name(name, sizeof name, table, w);
            const char *what[3] = {"auto plan", "energy-aware", "dp"};
            double val[3] = {num(json_object_get(e, "auto"), "speedup"), num(json_object_get(e, "energy"), "speedup"),
                             json_array_size(sc) > 1 ? num(last, "speedup") : NAN};
            for (int k = 0; k < 3; k++) {
                if (k == 2 && json_array_size(sc) < 2) continue;
                if (k == 2)
                    snprintf(text[nb], sizeof text[nb], "%s dp x%lld", name,
                             (long long)json_integer_value(json_object_get(last, "k")));
                else
                    snprintf(text[nb], sizeof text[nb], "%s %s", name, what[k]);
                labels[nb] = text[nb];
                v[nb] = val[k];
                colours[nb++] = po__svg_colour(k);
            }
        }
        po__svg_bars(f, labels, v, colours, (int)nb, "x",
                     "Speed-up of each plan over the one-device baseline, per workload");
    }
    fputs("<p class=\"note\">Baseline ms per step divided by the plan's (1x: as fast as one device).</p>\n", f);
    free(labels), free(colours), free(text), free(v);
    fputs("</section>\n", f);
}

static void section_energy(FILE *f, const json_t *results) {
    const json_t *table = json_object_get(results, "table"), *w;
    size_t i;
    section_open(f, "energy", "Energy per sample");
    fputs("<p class=\"note\">Joules per trained sample of the baseline and of both plans, each with the source of its "
          "energy figure.</p>\n",
          f);
    json_array_foreach(table, i, w) {
        const json_t *e[3] = {json_object_get(w, "baseline"), json_object_get(w, "auto"), json_object_get(w, "energy")};
        const char *what[3] = {"baseline", "auto plan", "energy-aware"};
        char text[3][96];
        const char *labels[3], *colours[3];
        double v[3];
        for (int k = 0; k < 3; k++) {
            const char *src = str(e[k], "energy_source");
            snprintf(text[k], sizeof text[k], "%s (%s)", what[k], strstr(src, "estimated") ? "est." : "meas.");
            labels[k] = text[k];
            v[k] = num(e[k], "energy_j_per_sample");
            colours[k] = po__svg_colour(k + 3);
        }
        fputs("<h3>", f);
        po__html_text(f, str(w, "workload"));
        fputs("</h3>\n", f);
        char aria[256];
        snprintf(aria, sizeof aria, "Energy per sample of %s: baseline, automatic plan, energy-aware plan",
                 str(w, "workload"));
        po__svg_bars(f, labels, v, colours, 3, "J/sample", aria);
        fputs("<p class=\"note\">Sources: baseline ", f);
        source_tag(f, str(e[0], "energy_source"));
        fputs(", auto plan ", f);
        source_tag(f, str(e[1], "energy_source"));
        fputs(", energy-aware plan ", f);
        source_tag(f, str(e[2], "energy_source"));
        fputs(" (est. = estimated, meas. = measured).</p>\n", f);
    }
    fputs("</section>\n", f);
}

static void section_scaling(FILE *f, const json_t *results) {
    const json_t *table = json_object_get(results, "table");
    size_t n = json_array_size(table), most = 1;
    section_open(f, "scaling", "Scaling efficiency");
    po__svg_series *s = calloc(n + 1, sizeof *s);
    double **xs = calloc(n + 1, sizeof *xs), **ys = calloc(n + 1, sizeof *ys);
    char(*names)[64] = calloc(n + 1, sizeof *names);
    bool ok = s && xs && ys && names;
    for (size_t w = 0; w < n && ok; w++) {
        const json_t *sc = json_object_get(json_array_get(table, w), "scaling");
        size_t m = json_array_size(sc);
        xs[w] = calloc(m + 1, sizeof **xs), ys[w] = calloc(m + 1, sizeof **ys);
        if (!xs[w] || !ys[w]) {
            ok = false;
            break;
        }
        for (size_t k = 0; k < m; k++) {
            xs[w][k] = (double)json_integer_value(json_object_get(json_array_get(sc, k), "k"));
            ys[w][k] = num(json_array_get(sc, k), "efficiency");
            if ((size_t)xs[w][k] > most) most = (size_t)xs[w][k];
        }
        short_name(names[w], sizeof names[w], table, w);
        s[w] = (po__svg_series){xs[w], ys[w], m, names[w], po__svg_colour((int)w), false, false};
    }
    if (ok) {
        double ix[2] = {1, (double)most}, iy[2] = {1, 1};
        s[n] = (po__svg_series){ix, iy, 2, "ideal", "#999", false, true};
        po__svg_chart c = {"devices (k)",
                           "speed-up / k",
                           "Scaling efficiency against the number of devices",
                           PO_SVG_LINEAR,
                           0,
                           1.1,
                           NULL,
                           0,
                           NULL};
        po__svg_line_chart(f, &c, s, (int)n + 1);
    }
    long long rounds = rounds_of(results);
    fputs("<p class=\"note\">Data parallel over the first k devices (k = 1 is the baseline): speed-up over the "
          "baseline divided by k; 1 is perfect scaling.</p>\n<table>\n<thead><tr><th>workload</th><th>k</th>"
          "<th>devices</th><th>ms/step</th>",
          f);
    if (rounds > 1) fputs("<th>spread (ms/step by round)</th>", f);
    fputs("<th>samples/s</th><th>speed-up</th><th>efficiency</th></tr></thead>\n<tbody>\n", f);
    const json_t *w, *p;
    size_t i, k;
    json_array_foreach(table, i, w) {
        json_array_foreach(json_object_get(w, "scaling"), k, p) {
            char devs[1024] = "";
            const json_t *d;
            size_t j;
            json_array_foreach(json_object_get(p, "devices"), j, d) {
                size_t len = strlen(devs);
                snprintf(devs + len, sizeof devs - len, "%s%s", j ? "," : "", json_string_value(d));
            }
            fputs("<tr>", f);
            td_text(f, str(w, "workload"));
            td_num(f, num(p, "k"), 3, NULL);
            td_text(f, devs);
            td_num(f, num(p, "ms_per_step"), 4, NULL);
            if (rounds > 1) td_spread(f, p);
            td_num(f, num(p, "samples_per_s"), 4, NULL);
            td_num(f, num(p, "speedup"), 3, "x");
            td_num(f, num(p, "efficiency") * 100, 3, "%");
            fputs("</tr>\n", f);
        }
    }
    fputs("</tbody>\n</table>\n</section>\n", f);
    for (size_t w2 = 0; w2 < n && xs && ys; w2++)
        free(xs[w2]), free(ys[w2]);
    free(s), free(xs), free(ys), free(names);
}

static void section_prediction(FILE *f, const json_t *results) {
    const json_t *table = json_object_get(results, "table"), *w, *p;
    size_t i, k;
    section_open(f, "prediction", "Predicted against measured step time");
    fputs("<p class=\"note\">The planner's predicted step time (from the calibrated cost model) against the measured "
          "one, for every run; error = measured / predicted - 1.</p>\n",
          f);
    json_array_foreach(table, i, w) {
        const json_t *pred = json_object_get(w, "prediction");
        size_t m = json_array_size(pred);
        const char **labels = calloc(2 * m + 1, sizeof *labels), **colours = calloc(2 * m + 1, sizeof *colours);
        char(*text)[96] = calloc(2 * m + 1, sizeof *text);
        double *v = calloc(2 * m + 1, sizeof *v);
        fputs("<h3>", f);
        po__html_text(f, str(w, "workload"));
        fputs("</h3>\n", f);
        if (labels && colours && text && v) {
            json_array_foreach(pred, k, p) {
                snprintf(text[2 * k], sizeof text[0], "%s, predicted", str(p, "label"));
                snprintf(text[2 * k + 1], sizeof text[0], "%s, measured", str(p, "label"));
                labels[2 * k] = text[2 * k], labels[2 * k + 1] = text[2 * k + 1];
                v[2 * k] = num(p, "predicted_step_ms"), v[2 * k + 1] = num(p, "measured_step_ms");
                colours[2 * k] = "#9db9d8", colours[2 * k + 1] = po__svg_colour(0);
            }
            char aria[256];
            snprintf(aria, sizeof aria, "Predicted and measured ms per step of each run of %s", str(w, "workload"));
            po__svg_bars(f, labels, v, colours, (int)(2 * m), "ms", aria);
        }
        free(labels), free(colours), free(text), free(v);
    }
    fputs("<table>\n<thead><tr><th>workload</th><th>run</th><th>predicted ms/step</th><th>measured ms/step</th>"
          "<th>error</th></tr></thead>\n<tbody>\n",
          f);
    json_array_foreach(table, i, w) {
        json_array_foreach(json_object_get(w, "prediction"), k, p) {
            fputs("<tr>", f);
            td_text(f, str(w, "workload"));
            td_text(f, str(p, "label"));
            td_num(f, num(p, "predicted_step_ms"), 4, NULL);
            td_num(f, num(p, "measured_step_ms"), 4, NULL);
            double e = num(p, "prediction_error") * 100;
            char buf[64];
            fputs("<td class=\"num\">", f);
            if (isfinite(e) && e > 0) fputc('+', f);
            po__html_text(f, po__fmt_num(buf, sizeof buf, e, 3));
            if (isfinite(e)) fputc('%', f);
            fputs("</td></tr>\n", f);
        }
    }
    fputs("</tbody>\n</table>\n</section>\n", f);
}

static void section_pytorch(FILE *f, const json_t *results) {
    const json_t *peer = json_object_get(results, "peer"), *w;
    size_t i;
    section_open(f, "pytorch", "PyTorch on the same machine");
    fputs("<p class=\"note\">From ", f);
    po__html_text(f, str(peer, "file"));
    po__html_textf(f,
                   " (%zu records). A workload is compared with the records of the same model at the same batch "
                   "(and parameter count, where a record gives it); several records of one thread count give "
                   "their median. Speed-up = PyTorch ms per step / paropt ms per step.",
                   json_array_size(json_object_get(peer, "records")));
    fputs("</p>\n", f);
    fputs("<table>\n<thead><tr><th>workload</th><th>PyTorch 1 thread, ms/step</th><th>PyTorch n threads, ms/step</th>"
          "<th>paropt one device vs PyTorch 1 thread</th><th>paropt auto plan vs PyTorch best</th></tr></thead>\n"
          "<tbody>\n",
          f);
    json_array_foreach(json_object_get(results, "table"), i, w) {
        const json_t *pt = json_object_get(w, "pytorch");
        fputs("<tr>", f);
        td_text(f, str(w, "workload"));
        if (!json_is_object(pt)) {
            fputs("<td colspan=\"4\">no record of this model at this batch</td></tr>\n", f);
            continue;
        }
        td_num(f, num(pt, "one_thread_ms_per_step"), 4, NULL);
        char threads[32];
        snprintf(threads, sizeof threads, " (%lld threads)",
                 (long long)json_integer_value(json_object_get(pt, "threads")));
        td_num(f, num(pt, "threads_ms_per_step"), 4, threads);
        td_num(f, num(pt, "speedup_baseline_vs_one_thread"), 3, "x");
        td_num(f, num(pt, "speedup_auto_vs_best"), 3, "x");
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n</section>\n", f);
}

static void section_runs(FILE *f, const json_t *results) {
    const json_t *r;
    size_t i;
    long long rounds = rounds_of(results);
    section_open(f, "runs", "Runs");
    fputs("<p class=\"note\">Every figure above comes from these runs' --json summaries, kept verbatim in "
          "results.json with each run's exact command.</p>\n<table>\n<thead><tr><th>#</th>",
          f);
    if (rounds > 1) fputs("<th>round</th>", f);
    fputs("<th>workload</th><th>run</th><th>ms/step</th><th>samples/s</th><th>J/sample</th><th>wall s</th>"
          "<th>command</th></tr></thead>\n<tbody>\n",
          f);
    json_array_foreach(json_object_get(results, "runs"), i, r) {
        const json_t *s = json_object_get(r, "summary"), *a;
        fputs("<tr>", f);
        td_num(f, (double)i, 3, NULL);
        if (rounds > 1) td_num(f, num(r, "round"), 3, NULL);
        td_text(f, str(r, "workload"));
        td_text(f, str(r, "label"));
        td_num(f, num(s, "ms_per_step"), 4, NULL);
        td_num(f, num(s, "samples_per_s"), 4, NULL);
        char buf[64];
        fputs("<td class=\"num\">", f);
        po__html_text(f, po__fmt_num(buf, sizeof buf, num(s, "energy_j_per_sample"), 3));
        source_tag(f, str(s, "energy_source"));
        fputs("</td>", f);
        td_num(f, num(r, "wall_s"), 3, NULL);
        fputs("<td><code>", f);
        size_t k;
        json_array_foreach(json_object_get(r, "argv"), k, a) {
            if (k) fputc(' ', f);
            po__html_text(f, json_string_value(a));
        }
        fputs("</code></td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n</section>\n", f);
}

static void section_notes(FILE *f, const json_t *results) {
    section_open(f, "notes", "Notes on sources");
    fputs("<ul>\n<li>Time: each run's ms_per_step, the mean over its timed steps (after the warm-up steps), as "
          "printed in its --json summary. The machine may be shared: timings move from run to run.</li>\n"
          "<li>Energy: each run's energy_j_per_sample and its energy_source. A change between two measured figures "
          "is marked measured, between two estimates estimated, otherwise mixed; an estimate is never called a "
          "measurement.",
          f);
    const json_t *r;
    size_t i;
    fputs("<ul>\n", f);
    for (size_t n = 0; n < sizeof SOURCE_NOTES / sizeof *SOURCE_NOTES; n++) {
        bool seen = false;
        json_array_foreach(json_object_get(results, "runs"), i, r) {
            seen |= strstr(str(json_object_get(r, "summary"), "energy_source"), SOURCE_NOTES[n][0]) != NULL;
        }
        fputs("<li>", f);
        source_tag(f, SOURCE_NOTES[n][0]);
        fputs(" ", f);
        po__html_text(f, SOURCE_NOTES[n][1]);
        po__html_text(f, seen ? " (used here)." : " (not used here).");
        fputs("</li>\n", f);
    }
    fputs("</ul></li>\n<li>Utilization: the busy fraction of each device the plan uses (its summary's busy), "
          "averaged, against the baseline device's.</li>\n"
          "<li>Plans: the strategy and batch shares the planner chose (the summary's plan); the runtime may re-split "
          "the batch by measured speed while it trains.</li>\n"
          "<li>Prediction: predicted_step_ms from the plan's cost model, calibrated on this machine; "
          "measured_step_ms as timed.</li>\n",
          f);
    long long rounds = rounds_of(results);
    if (rounds > 1) {
        fputs("<li>", f);
        po__html_textf(f,
                       "Rounds: the suite ran %lld rounds, every configuration (workload, run, devices) once "
                       "per round and in the same order, so the configurations alternate. The figures of the "
                       "tables and charts are medians over a configuration's %lld runs (the mean of the middle two "
                       "for an even count): ms per step, samples per s, J per sample, busy, predicted and measured "
                       "ms per step and the prediction error. Speed-ups, energy and utilization changes, scaling "
                       "efficiencies and the PyTorch comparison are computed from those medians. Spread: max / min "
                       "- 1 of a configuration's ms per step over the rounds. The plan shown is the first round's "
                       "(the rounds' plans are listed where they differ). The runs table lists every run.",
                       rounds, rounds);
        fputs("</li>\n", f);
    }
    if (json_object_get(results, "peer"))
        fputs("<li>PyTorch: ms per step from the peer file (bench/peer/torch_bench.sh runs the reference PyTorch "
              "models with 1 thread and with every thread, on the same synthetic shapes).</li>\n",
              f);
    fputs("</ul>\n</section>\n", f);
}

void bench_report_html(FILE *f, const json_t *results) {
    bool peer = json_object_get(results, "peer") != NULL;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>paropt bench: ",
          f);
    po__html_text(f, str(json_object_get(results, "machine"), "hostname"));
    fprintf(f, "</title>\n<style>\n%s%s</style>\n</head>\n<body>\n", po__html_base_css, CSS);
    header(f, results, peer);
    section_results(f, results);
    section_speedup(f, results);
    section_energy(f, results);
    section_scaling(f, results);
    section_prediction(f, results);
    if (peer) section_pytorch(f, results);
    section_runs(f, results);
    section_notes(f, results);
    fputs("<footer>Written by paropt bench (", f);
    po__html_text(f, str(results, "paropt_version"));
    fputs("). Self-contained: no script, no external resource; every figure is in results.json.</footer>\n"
          "</body>\n</html>\n",
          f);
}

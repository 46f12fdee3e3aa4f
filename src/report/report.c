/* paropt's run report: the page, its header, the plan and prediction sections, and the public
 * entry point. The other sections live in report_gantt.c and report_series.c. */
#include "paropt/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "report/html.h"
#include "report/report_internal.h"
#include "report/svg_chart.h"

/* No '<' or '&' in here: the page must stay well-formed XML. */
/* This page's rules after the shared ones (po__html_base_css). */
static const char CSS[] =
    ".missing{color:#7a5000;background:#fff8e6;border:1px solid #f0d9a0;padding:6px 10px;border-radius:4px}\n"
    "ul.explanation li{margin:.25em 0}\n"
    "svg .marker{stroke:#777;stroke-dasharray:4 3}\n"
    "svg .lane{fill:#f5f5f5}\n"
    "svg .slice{stroke:#fff;stroke-width:.5}\n";

/* --- helpers shared by the sections ----------------------------------------------------------- */

void po__section_open(FILE *f, const char *id, const char *title) {
    fprintf(f, "<section id=\"%s\">\n<h2>", id);
    po__html_text(f, title);
    fputs("</h2>\n", f);
}

void po__section_close(FILE *f) { fputs("</section>\n", f); }

void po__not_recorded(FILE *f, const char *why_fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(buf, sizeof buf, why_fmt, ap);
    va_end(ap);
    fputs("<p class=\"missing\"><strong>Not recorded</strong>: ", f);
    po__html_text(f, buf);
    fputs("</p>\n", f);
}

void po__source_tag(FILE *f, const char *source) {
    fputs("<span class=\"source\">", f);
    po__html_text(f, source && *source ? source : "source not recorded");
    fputs("</span>", f);
}

const char *po__fmt_energy(char *buf, size_t size, double j) {
    char num[64];
    double a = fabs(j);
    if (!isfinite(j))
        snprintf(buf, size, "n/a");
    else if (a != 0 && a < 1e-4)
        snprintf(buf, size, "%s µJ", po__fmt_num(num, sizeof num, j * 1e6, 3));
    else if (a != 0 && a < 1)
        snprintf(buf, size, "%s mJ", po__fmt_num(num, sizeof num, j * 1e3, 3));
    else if (a >= 1e4)
        snprintf(buf, size, "%s kJ", po__fmt_num(num, sizeof num, j / 1e3, 4));
    else
        snprintf(buf, size, "%s J", po__fmt_num(num, sizeof num, j, 4));
    return buf;
}

static void row_text(FILE *f, const char *key, const char *value) {
    fputs("<tr><th>", f);
    po__html_text(f, key);
    fputs("</th><td>", f);
    po__html_text(f, value);
    fputs("</td></tr>\n", f);
}

/* A JSON value as a person reads it: strings bare, null as "none", the rest compact JSON. */
static void json_text(FILE *f, const json_t *v) {
    if (!v || json_is_null(v)) {
        fputs("none", f);
        return;
    }
    if (json_is_string(v)) {
        po__html_text(f, json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
    po__html_text(f, s ? s : "?");
    free(s);
}

static void row_json(FILE *f, const char *key, const json_t *v) {
    fputs("<tr><th>", f);
    po__html_text(f, key);
    fputs("</th><td>", f);
    json_text(f, v);
    fputs("</td></tr>\n", f);
}

static void cell_num(FILE *f, double v, int digits, const char *unit) {
    char buf[64];
    fprintf(f, "<td class=\"num\">%s", po__fmt_num(buf, sizeof buf, v, digits));
    if (unit && isfinite(v)) fprintf(f, " %s", unit);
    fputs("</td>", f);
}

/* --- header ----------------------------------------------------------------------------------- */

static const struct {
    const char *id, *title;
} SECTIONS[] = {{"plan", "Plan"},
                {"gantt", "One training step"},
                {"utilization", "Utilization"},
                {"power", "Power and energy"},
                {"loss", "Loss"},
                {"accuracy", "Accuracy"},
                {"prediction", "Predicted and measured step time"}};

static void write_header(FILE *f, const char *run_dir, const rd_run *r) {
    const char *model = po__json_str(r->settings, "model");
    fputs("<header>\n<h1>paropt run report", f);
    if (model) {
        fputs(": ", f);
        po__html_text(f, model);
    }
    fputs("</h1>\n<p class=\"note\">Run directory <code>", f);
    po__html_text(f, run_dir);
    fputs("</code></p>\n<nav>", f);
    for (size_t i = 0; i < sizeof SECTIONS / sizeof SECTIONS[0]; i++) {
        fprintf(f, "<a href=\"#%s\">", SECTIONS[i].id);
        po__html_text(f, SECTIONS[i].title);
        fputs("</a>", f);
    }
    fputs("</nav>\n</header>\n<section id=\"run\">\n<h2>Run</h2>\n<table>\n", f);
    static const char *const keys[] = {"model", "data", "devices", "batch", "steps", "epochs", "seed", "plan"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *v = json_object_get(r->settings, keys[i]);
        if (!v) continue;
        if (strcmp(keys[i], "devices") == 0 && json_is_null(v))
            row_text(f, "devices", "one (the default)");
        else
            row_json(f, keys[i], v);
    }
    const json_t *opt = json_object_get(r->settings, "optimizer");
    if (json_is_object(opt)) {
        char buf[256], lr[64];
        const char *kind = po__json_str(opt, "kind");
        snprintf(buf, sizeof buf, "%s, lr %s", kind ? kind : "?",
                 po__fmt_num(lr, sizeof lr, po__json_num(opt, "lr"), 4));
        row_text(f, "optimizer", buf);
    }
    double final_loss = po__json_num(r->summary, "final_loss");
    if (!isfinite(final_loss) && r->loss.n) final_loss = r->loss.y[r->loss.n - 1];
    if (isfinite(final_loss)) {
        fputs("<tr><th>final loss</th>", f);
        cell_num(f, final_loss, 5, NULL);
        fputs("</tr>\n", f);
    }
    double sps = po__json_num(r->summary, "samples_per_s");
    if (isfinite(sps)) {
        fputs("<tr><th>throughput</th>", f);
        cell_num(f, sps, 5, "samples/s");
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<details><summary>All settings (settings.json)</summary>\n<table>\n", f);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)r->settings, key, v) row_json(f, key, v);
    fputs("</table>\n</details>\n", f);
    if (r->bad_lines)
        fprintf(f, "<p class=\"note\">%zu line(s) of metrics.jsonl were not JSON objects and were skipped.</p>\n",
                r->bad_lines);
    fputs("</section>\n", f);
}

/* --- plan ------------------------------------------------------------------------------------- */

static void predicted_figures(FILE *f, const json_t *p) {
    char buf[64];
    fputs("<table>\n<tr><th>predicted step time</th>", f);
    cell_num(f, po__json_num(p, "step_ms"), 4, "ms");
    fputs("</tr>\n<tr><th>predicted throughput</th>", f);
    cell_num(f, po__json_num(p, "samples_per_s"), 5, "samples/s");
    fputs("</tr>\n<tr><th>predicted energy per sample</th><td class=\"num\">", f);
    po__html_text(f, po__fmt_energy(buf, sizeof buf, po__json_num(p, "energy_j_per_sample")));
    po__source_tag(f, po__json_str(p, "energy_source"));
    fputs("</td></tr>\n", f);
    const json_t *fits = json_object_get(p, "fits_memory");
    if (json_is_boolean(fits)) row_text(f, "fits in memory", json_is_true(fits) ? "yes" : "no");
    fputs("</table>\n", f);
    const json_t *busy = json_object_get(p, "busy"), *peak = json_object_get(p, "peak_memory_bytes");
    if (!json_is_object(busy) && !json_is_object(peak)) return;
    fputs("<table>\n<tr><th>device</th><th>predicted busy</th><th>predicted peak memory</th></tr>\n", f);
    const char *dev;
    const json_t *v;
    json_object_foreach((json_t *)(json_is_object(busy) ? busy : peak), dev, v) {
        fputs("<tr><td>", f);
        po__html_text(f, dev);
        fputs("</td>", f);
        cell_num(f, po__json_num(busy, dev) * 100, 3, "%");
        double bytes = po__json_num(peak, dev);
        const char *unit = bytes >= 1073741824.0 ? "GiB" : bytes >= 1048576.0 ? "MiB" : "KiB";
        cell_num(f, bytes / (bytes >= 1073741824.0 ? 1073741824.0 : bytes >= 1048576.0 ? 1048576.0 : 1024.0), 4, unit);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void stages_table(FILE *f, const json_t *stages) {
    fputs("<table>\n<tr><th>stage</th><th>layers</th><th>replicas (device: share of the batch)</th></tr>\n", f);
    size_t i;
    const json_t *st;
    json_array_foreach(stages, i, st) {
        fprintf(f, "<tr><td class=\"num\">%zu</td><td>", i + 1);
        const json_t *names = json_object_get(st, "layer_names");
        if (json_is_array(names) && json_array_size(names) == 2) {
            const char *a = json_string_value(json_array_get(names, 0)),
                       *b = json_string_value(json_array_get(names, 1));
            po__html_textf(f, a && b && strcmp(a, b) ? "%s .. %s" : "%s", a ? a : "?", b ? b : "?");
        } else {
            json_text(f, names ? names : json_object_get(st, "layers"));
        }
        if (json_is_true(json_object_get(st, "recompute"))) fputs(" (recomputed)", f);
        fputs("</td><td>", f);
        size_t j;
        const json_t *rep;
        json_array_foreach(json_object_get(st, "replicas"), j, rep) {
            char share[32];
            if (j) fputs(", ", f);
            po__html_textf(f, "%s: %s", po__json_str(rep, "device") ? po__json_str(rep, "device") : "?",
                           po__fmt_num(share, sizeof share, po__json_num(rep, "share"), 3));
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void alternatives_table(FILE *f, const json_t *alts, double chosen_ms) {
    if (!json_array_size(alts)) {
        fputs("<p class=\"note\">The plan lists no alternatives.</p>\n", f);
        return;
    }
    fputs("<h3>Alternatives the planner considered</h3>\n<table>\n<tr><th>#</th><th>plan</th><th>predicted step "
          "time</th><th>vs chosen</th><th>throughput</th><th>energy per sample</th></tr>\n",
          f);
    size_t i;
    const json_t *a;
    json_array_foreach(alts, i, a) {
        const json_t *p = json_object_get(a, "predicted");
        double ms = po__json_num(p, "step_ms");
        char buf[64];
        fprintf(f, "<tr><td class=\"num\">%zu</td><td>", i + 2);
        const char *summary = po__json_str(a, "summary");
        po__html_text(f, summary ? summary : po__json_str(a, "strategy"));
        fputs("</td>", f);
        cell_num(f, ms, 4, "ms");
        if (isfinite(ms) && chosen_ms > 0)
            fprintf(f, "<td class=\"num\">%+.1f%%</td>", (ms / chosen_ms - 1) * 100);
        else
            fputs("<td class=\"num\">n/a</td>", f);
        cell_num(f, po__json_num(p, "samples_per_s"), 5, "samples/s");
        fputs("<td class=\"num\">", f);
        po__html_text(f, po__fmt_energy(buf, sizeof buf, po__json_num(p, "energy_j_per_sample")));
        po__source_tag(f, po__json_str(p, "energy_source"));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void section_plan(FILE *f, const rd_run *r) {
    po__section_open(f, "plan", "Plan");
    const char *given = po__json_str(r->settings, "plan");
    if (!r->plan) {
        if (r->plan_error)
            po__not_recorded(f, "plan.json could not be read (%s).", r->plan_error);
        else
            po__not_recorded(f, "the run directory has no plan.json.");
        if (given) {
            fputs("<p class=\"note\">The run was started with <code>--plan ", f);
            po__html_text(f, given);
            fputs("</code>.</p>\n", f);
        }
        po__section_close(f);
        return;
    }
    const json_t *p = r->plan;
    fputs("<table>\n", f);
    static const char *const keys[] = {"strategy", "objective",     "max_slowdown", "model",
                                       "batch",    "micro_batches", "schedule"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *v = json_object_get(p, keys[i]);
        if (v && !(json_is_null(v) && strcmp(keys[i], "max_slowdown") == 0)) row_json(f, keys[i], v);
    }
    fputs("</table>\n", f);
    const json_t *stages = json_object_get(p, "stages");
    if (json_array_size(stages)) stages_table(f, stages);
    const json_t *pred = json_object_get(p, "predicted");
    if (json_is_object(pred)) predicted_figures(f, pred);
    const json_t *expl = json_object_get(p, "explanation");
    if (json_array_size(expl)) {
        fputs("<h3>Why this plan</h3>\n<ul class=\"explanation\">\n", f);
        size_t i;
        const json_t *s;
        json_array_foreach(expl, i, s) {
            if (!json_is_string(s)) continue;
            fputs("<li>", f);
            po__html_text(f, json_string_value(s));
            fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
    } else {
        fputs("<p class=\"note\">The plan carries no explanation.</p>\n", f);
    }
    alternatives_table(f, json_object_get(p, "alternatives"), po__json_num(pred, "step_ms"));
    po__section_close(f);
}

/* --- prediction ------------------------------------------------------------------------------- */

static void section_prediction(FILE *f, const rd_run *r) {
    po__section_open(f, "prediction", "Predicted and measured step time");
    const json_t *plan_pred = json_object_get(r->plan, "predicted");
    double predicted = po__json_num(r->summary, "predicted_step_ms");
    const char *pred_from = "summary.json";
    if (!isfinite(predicted)) predicted = po__json_num(plan_pred, "step_ms"), pred_from = "plan.json";
    double measured = po__json_num(r->summary, "measured_step_ms");
    const char *meas_from = "summary.json";
    if (!isfinite(measured)) measured = po__json_num(r->summary, "ms_per_step");
    if (!isfinite(measured) && r->step_ms.n) {
        double sum = 0;
        for (size_t i = 0; i < r->step_ms.n; i++)
            sum += r->step_ms.y[i];
        measured = sum / (double)r->step_ms.n;
        meas_from = "the mean step_ms of metrics.jsonl";
    }
    char missing[1200] = "", *m = missing;
    const char *end = missing + sizeof missing;
    if (!r->summary && r->summary_error)
        m += snprintf(m, (size_t)(end - m), "an unreadable summary.json (%.500s)", r->summary_error);
    else if (!r->summary)
        m += snprintf(m, (size_t)(end - m), "no summary.json");
    if (!r->plan && r->plan_error)
        snprintf(m, (size_t)(end - m), "%san unreadable plan.json (%.500s)", *missing ? ", " : "", r->plan_error);
    else if (!r->plan)
        snprintf(m, (size_t)(end - m), "%sno plan.json", *missing ? ", " : "");
    if (!isfinite(predicted) && !isfinite(measured) && !*missing) {
        po__not_recorded(f, "no predicted or measured step time: neither summary.json nor plan.json holds one, and "
                            "metrics.jsonl has no step_ms.");
        po__section_close(f);
        return;
    }
    if (!isfinite(predicted) && !isfinite(measured)) {
        po__not_recorded(
            f, "no predicted or measured step time: the run directory has %s, and metrics.jsonl no step_ms.", missing);
        po__section_close(f);
        return;
    }
    if (*missing) {
        fputs("<p class=\"note\">", f);
        po__html_textf(f, "The run directory has %s.", missing);
        fputs("</p>\n", f);
    }
    fputs("<table>\n<tr><th></th><th>predicted</th><th>measured</th><th>error (measured − predicted) / "
          "predicted</th></tr>\n<tr><th>step time</th>",
          f);
    cell_num(f, predicted, 4, "ms");
    cell_num(f, measured, 4, "ms");
    if (isfinite(predicted) && isfinite(measured) && predicted > 0)
        fprintf(f, "<td class=\"num\">%+.1f%%</td></tr>\n", (measured / predicted - 1) * 100);
    else
        fputs("<td class=\"num\">n/a</td></tr>\n", f);
    double pred_sps = po__json_num(plan_pred, "samples_per_s"), sps = po__json_num(r->summary, "samples_per_s");
    if (isfinite(pred_sps) || isfinite(sps)) {
        fputs("<tr><th>throughput</th>", f);
        cell_num(f, pred_sps, 5, "samples/s");
        cell_num(f, sps, 5, "samples/s");
        if (isfinite(pred_sps) && isfinite(sps) && pred_sps > 0)
            fprintf(f, "<td class=\"num\">%+.1f%%</td></tr>\n", (sps / pred_sps - 1) * 100);
        else
            fputs("<td class=\"num\">n/a</td></tr>\n", f);
    }
    fputs("</table>\n<p class=\"note\">", f);
    if (isfinite(predicted))
        po__html_textf(f, "Predicted step time from %s. ", pred_from);
    else
        fputs("Predicted step time: not recorded (no plan.json and no predicted_step_ms in summary.json). ", f);
    if (isfinite(measured))
        po__html_textf(f, "Measured step time from %s.", meas_from);
    else
        fputs("Measured step time: not recorded.", f);
    double recorded = po__json_num(r->summary, "prediction_error");
    if (isfinite(recorded)) po__html_textf(f, " summary.json records prediction_error = %g.", recorded);
    fputs("</p>\n", f);
    if (isfinite(predicted) && isfinite(measured)) {
        const char *labels[] = {"predicted", "measured"};
        const double values[] = {predicted, measured};
        const char *colours[] = {po__svg_colour(0), po__svg_colour(1)};
        po__svg_bars(f, labels, values, colours, 2, "ms", "predicted and measured step time, ms");
    }
    if (r->step_ms.n) {
        double px[2] = {r->step_ms.x[0], r->step_ms.x[r->step_ms.n - 1]}, py[2] = {predicted, predicted};
        po__svg_series s[2] = {
            {r->step_ms.x, r->step_ms.y, r->step_ms.n, "measured step time", po__svg_colour(1), false, false},
            {px, py, 2, "predicted", po__svg_colour(0), false, true}};
        po__svg_chart c = {"step",
                           "step time (ms)",
                           "measured step time per logged step against the prediction",
                           PO_SVG_LINEAR,
                           0,
                           NAN,
                           NULL,
                           0,
                           NULL};
        po__svg_line_chart(f, &c, s, isfinite(predicted) ? 2 : 1);
    }
    po__section_close(f);
}

/* --- the page --------------------------------------------------------------------------------- */

static void write_page(FILE *f, const char *run_dir, const rd_run *r) {
    const char *model = po__json_str(r->settings, "model");
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>paropt report",
          f);
    if (model) {
        fputs(": ", f);
        po__html_text(f, model);
    }
    fprintf(f, "</title>\n<style>\n%s%s</style>\n</head>\n<body>\n", po__html_base_css, CSS);
    write_header(f, run_dir, r);
    section_plan(f, r);
    po__section_gantt(f, r);
    po__section_utilization(f, r);
    po__section_power(f, r);
    po__section_loss(f, r);
    po__section_accuracy(f, r);
    section_prediction(f, r);
    fputs("<footer>Written by paropt " PO_VERSION " (paropt report). Self-contained: no script, no external "
          "resource.</footer>\n</body>\n</html>\n",
          f);
}

po_status po_report_write_html(const char *run_dir, const char *out_path) {
    if (!run_dir || !*run_dir) return po_fail(PO_ERR_INVALID_ARG, "no run directory given");
    rd_run r;
    po_status st = po__run_load(run_dir, &r);
    if (st) {
        po__run_free(&r);
        return st;
    }
    char *path = NULL;
    if (out_path) {
        path = strdup(out_path);
    } else if ((path = malloc(strlen(run_dir) + sizeof "/report.html"))) {
        strcpy(path, run_dir);
        strcat(path, "/report.html");
    }
    if (!path) {
        po__run_free(&r);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    po_atomic_file af;
    st = po_atomic_begin(path, &af);
    if (!st) {
        write_page(af.fp, run_dir, &r);
        st = po_atomic_commit(&af);
    }
    free(path);
    po__run_free(&r);
    return st;
}

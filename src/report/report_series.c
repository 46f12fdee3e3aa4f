/* The report's sections drawn from metrics.jsonl: utilization, power and energy, loss, accuracy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/html.h"
#include "report/report_internal.h"
#include "report/svg_chart.h"

static double mean(const rd_series *s) {
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->y[i])) sum += s->y[i], n++;
    return n ? sum / (double)n : NAN;
}

static void cell(FILE *f, double v, int digits, const char *unit) {
    char buf[64];
    fprintf(f, "<td class=\"num\">%s", po__fmt_num(buf, sizeof buf, v, digits));
    if (isfinite(v) && unit) fprintf(f, " %s", unit);
    fputs("</td>", f);
}

/* A copy of s with y scaled (for percentages); NULL y when out of memory. */
static rd_series scaled(const rd_series *s, double k) {
    rd_series out = {s->x, malloc((s->n ? s->n : 1) * sizeof(double)), s->n, s->n};
    if (out.y)
        for (size_t i = 0; i < s->n; i++)
            out.y[i] = s->y[i] * k;
    return out;
}

/* --- utilization ------------------------------------------------------------------------------ */

void po__section_utilization(FILE *f, const rd_run *r) {
    po__section_open(f, "utilization", "Utilization");
    const rd_series_set *b = &r->busy;
    if (b->n == 0) {
        po__not_recorded(f, "metrics.jsonl has no per-device busy fractions (workers[].busy: the trainer logs "
                            "them for runs on several devices).");
    } else {
        po__svg_series *s = calloc((size_t)b->n, sizeof *s);
        rd_series *pct = calloc((size_t)b->n, sizeof *pct);
        bool ok = s && pct;
        for (int i = 0; ok && i < b->n; i++) {
            pct[i] = scaled(&b->v[i].s, 100);
            ok = pct[i].y != NULL;
            s[i] = (po__svg_series){pct[i].x, pct[i].y, pct[i].n, b->v[i].name, po__svg_colour(i), false, false};
        }
        if (ok) {
            fputs("<p>Each device's busy fraction (its compute time over the step's wall time) at every logged "
                  "step.",
                  f);
            if (r->n_rebalances)
                fprintf(f, " Dashed lines mark the %zu %s%s of the %s by measured speed.", r->n_rebalances,
                        r->repartitions ? "re-partition" : "re-split", r->n_rebalances == 1 ? "" : "s",
                        r->repartitions ? "pipeline" : "batch");
            fputs("</p>\n", f);
            po__svg_chart c = {"step",
                               "busy (% of the step)",
                               "busy fraction per device over the run",
                               PO_SVG_LINEAR,
                               0,
                               100,
                               r->rebalance_steps,
                               r->n_rebalances,
                               r->repartitions ? "re-partition" : "re-split"};
            po__svg_line_chart(f, &c, s, b->n);
        } else {
            fputs("<p class=\"missing\">Out of memory drawing the chart.</p>\n", f);
        }
        for (int i = 0; pct && i < b->n; i++)
            free(pct[i].y);
        free(pct);
        free(s);
    }
    /* Per device: the mean of the logged fractions, the run's figure and the plan's prediction. */
    const json_t *measured = json_object_get(r->summary, "busy");
    const json_t *predicted = json_object_get(json_object_get(r->plan, "predicted"), "busy");
    if (b->n || json_object_size(measured) || json_object_size(predicted)) {
        /* Columns only for the sources the run has. */
        bool has[3] = {b->n > 0, json_object_size(measured) > 0, json_object_size(predicted) > 0};
        fputs("<table>\n<tr><th>device</th>", f);
        if (has[0]) fputs("<th>mean of logged steps</th>", f);
        if (has[1]) fputs("<th>whole run (summary.json)</th>", f);
        if (has[2]) fputs("<th>predicted (plan.json)</th>", f);
        fputs("</tr>\n", f);
        /* Devices in the order first seen: metrics, then summary, then plan. */
        const json_t *sources[2] = {measured, predicted};
        int n_names = b->n;
        const char **names =
            malloc(((size_t)b->n + json_object_size(measured) + json_object_size(predicted) + 1) * sizeof *names);
        if (names) {
            for (int i = 0; i < b->n; i++)
                names[i] = b->v[i].name;
            for (int k = 0; k < 2; k++) {
                const char *dev;
                const json_t *v;
                json_object_foreach((json_t *)sources[k], dev, v) {
                    int j = 0;
                    while (j < n_names && strcmp(names[j], dev) != 0)
                        j++;
                    if (j == n_names) names[n_names++] = dev;
                }
            }
            for (int i = 0; i < n_names; i++) {
                fputs("<tr><td>", f);
                po__html_text(f, names[i]);
                fputs("</td>", f);
                double m = NAN;
                for (int j = 0; j < b->n; j++)
                    if (strcmp(b->v[j].name, names[i]) == 0) m = mean(&b->v[j].s);
                if (has[0]) cell(f, m * 100, 3, "%");
                if (has[1]) cell(f, po__json_num(measured, names[i]) * 100, 3, "%");
                if (has[2]) cell(f, po__json_num(predicted, names[i]) * 100, 3, "%");
                fputs("</tr>\n", f);
            }
            free(names);
        }
        fputs("</table>\n", f);
    }
    po__section_close(f);
}

/* --- power and energy ------------------------------------------------------------------------- */

/* One chart of a per-source set (power or energy), each series labelled with its source. */
static void source_chart(FILE *f, const rd_series_set *set, const char *what, const char *unit, int colour0) {
    po__svg_series *s = calloc((size_t)set->n, sizeof *s);
    char(*labels)[160] = calloc((size_t)set->n, sizeof *labels);
    if (!s || !labels) {
        free(s);
        free(labels);
        return;
    }
    for (int i = 0; i < set->n; i++) {
        snprintf(labels[i], sizeof labels[i], "%s (%s), %s", what, unit, set->v[i].name);
        s[i] = (po__svg_series){set->v[i].s.x, set->v[i].s.y, set->v[i].s.n, labels[i], po__svg_colour(colour0 + i),
                                false,         false};
    }
    char y_label[64], aria[96];
    snprintf(y_label, sizeof y_label, "%s (%s)", what, unit);
    snprintf(aria, sizeof aria, "%s per logged step", what);
    po__svg_chart c = {"step", y_label, aria, PO_SVG_LINEAR, 0, NAN, NULL, 0, NULL};
    po__svg_line_chart(f, &c, s, set->n);
    free(s);
    free(labels);
}

void po__section_power(FILE *f, const rd_run *r) {
    po__section_open(f, "power", "Power and energy");
    char buf[64];
    double total = po__json_num(r->summary, "energy_j");
    const char *total_source = po__json_str(r->summary, "energy_source");
    double measured_per_sample = po__json_num(r->summary, "energy_j_per_sample");
    const json_t *pred = json_object_get(r->plan, "predicted");
    double per_sample = po__json_num(pred, "energy_j_per_sample");
    if (r->power.n == 0 && r->energy.n == 0) {
        po__not_recorded(f, "metrics.jsonl has no power_w or energy_j in its step records.");
    } else {
        fputs("<p>Per logged step, as the trainer recorded it; every series is labelled with where its figures "
              "come from (measured:rapl, measured:nvml or estimated:model).</p>\n",
              f);
        if (r->power.n) {
            fputs("<table>\n<tr><th>power: source</th><th>mean</th><th>max</th></tr>\n", f);
            for (int i = 0; i < r->power.n; i++) {
                double mx = -INFINITY;
                for (size_t j = 0; j < r->power.v[i].s.n; j++)
                    mx = fmax(mx, r->power.v[i].s.y[j]);
                fputs("<tr><td>", f);
                po__source_tag(f, r->power.v[i].name);
                fputs("</td><td class=\"num\">", f);
                po__html_textf(f, "%s W", po__fmt_num(buf, sizeof buf, mean(&r->power.v[i].s), 4));
                po__source_tag(f, r->power.v[i].name);
                fputs("</td><td class=\"num\">", f);
                po__html_textf(f, "%s W", po__fmt_num(buf, sizeof buf, mx, 4));
                po__source_tag(f, r->power.v[i].name);
                fputs("</td></tr>\n", f);
            }
            fputs("</table>\n", f);
            source_chart(f, &r->power, "power", "W", 0);
        } else {
            fputs("<p class=\"missing\"><strong>Not recorded</strong>: power (no power_w in the step "
                  "records).</p>\n",
                  f);
        }
        if (r->energy.n) {
            fputs("<table>\n<tr><th>energy: source</th><th>last logged value</th></tr>\n", f);
            for (int i = 0; i < r->energy.n; i++) {
                const rd_series *s = &r->energy.v[i].s;
                fputs("<tr><td>", f);
                po__source_tag(f, r->energy.v[i].name);
                fputs("</td><td class=\"num\">", f);
                po__html_textf(f, "%s at step %g", po__fmt_energy(buf, sizeof buf, s->y[s->n - 1]), s->x[s->n - 1]);
                po__source_tag(f, r->energy.v[i].name);
                fputs("</td></tr>\n", f);
            }
            fputs("</table>\n", f);
            source_chart(f, &r->energy, "energy", "J", 2);
        }
    }
    if (isfinite(total) || isfinite(measured_per_sample) || isfinite(per_sample)) {
        fputs("<table>\n", f);
        if (isfinite(total)) {
            fputs("<tr><th>energy of the run (summary.json)</th><td class=\"num\">", f);
            po__html_text(f, po__fmt_energy(buf, sizeof buf, total));
            po__source_tag(f, total_source);
            fputs("</td></tr>\n", f);
        }
        if (isfinite(measured_per_sample)) {
            fputs("<tr><th>energy per sample (summary.json)</th><td class=\"num\">", f);
            po__html_text(f, po__fmt_energy(buf, sizeof buf, measured_per_sample));
            po__source_tag(f, total_source);
            fputs("</td></tr>\n", f);
        }
        if (isfinite(per_sample)) {
            fputs("<tr><th>predicted energy per sample (plan.json)</th><td class=\"num\">", f);
            po__html_text(f, po__fmt_energy(buf, sizeof buf, per_sample));
            po__source_tag(f, po__json_str(pred, "energy_source"));
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    po__section_close(f);
}

/* --- loss and accuracy ------------------------------------------------------------------------ */

void po__section_loss(FILE *f, const rd_run *r) {
    po__section_open(f, "loss", "Loss");
    if (!r->loss.n && !r->test_loss.n) {
        po__not_recorded(f, r->has_metrics ? "metrics.jsonl has no loss records."
                                           : "the run directory has no metrics.jsonl.");
        po__section_close(f);
        return;
    }
    po__svg_series s[2];
    int n = 0;
    if (r->loss.n)
        s[n++] = (po__svg_series){r->loss.x, r->loss.y, r->loss.n, "train loss", po__svg_colour(0), false, false};
    if (r->test_loss.n)
        s[n++] = (po__svg_series){r->test_loss.x,    r->test_loss.y, r->test_loss.n, "test loss",
                                  po__svg_colour(1), true,           false};
    fputs("<p>Training loss at every logged step", f);
    if (r->test_loss.n) fputs("; dots: test loss at each evaluation", f);
    fputs(". A loss that falls over two decades or more is drawn on a log scale.</p>\n", f);
    po__svg_chart c = {"step", "loss", "loss per step", PO_SVG_AUTO, NAN, NAN, NULL, 0, NULL};
    po__svg_line_chart(f, &c, s, n);
    fputs("<table>\n<tr><th></th><th>first</th><th>last</th><th>lowest</th></tr>\n", f);
    const rd_series *all[2] = {&r->loss, &r->test_loss};
    const char *names[2] = {"train loss", "test loss"};
    for (int k = 0; k < 2; k++) {
        const rd_series *x = all[k];
        if (!x->n) continue;
        double lo = INFINITY;
        for (size_t i = 0; i < x->n; i++)
            lo = fmin(lo, x->y[i]);
        fprintf(f, "<tr><th>%s</th>", names[k]);
        cell(f, x->y[0], 4, NULL);
        cell(f, x->y[x->n - 1], 4, NULL);
        cell(f, lo, 4, NULL);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    po__section_close(f);
}

void po__section_accuracy(FILE *f, const rd_run *r) {
    po__section_open(f, "accuracy", "Accuracy");
    if (!r->test_accuracy.n) {
        po__not_recorded(f, "metrics.jsonl has no evaluation records (the run had no test set; a run on a "
                            "dataset with a test split, such as --data fashion-mnist, evaluates after every "
                            "epoch).");
        po__section_close(f);
        return;
    }
    rd_series pct = scaled(&r->test_accuracy, 100);
    if (pct.y) {
        po__svg_series s[2] = {
            {pct.x, pct.y, pct.n, NULL, po__svg_colour(4), false, false},
            {pct.x, pct.y, pct.n, "test accuracy", po__svg_colour(4), true, false},
        };
        fputs("<p>Test accuracy at each evaluation.</p>\n", f);
        po__svg_chart c = {
            "step", "test accuracy (%)", "test accuracy per evaluation", PO_SVG_LINEAR, NAN, 100, NULL, 0, NULL};
        po__svg_line_chart(f, &c, pct.n > 1 ? s : s + 1, pct.n > 1 ? 2 : 1);
        free(pct.y);
    }
    double best = -INFINITY;
    for (size_t i = 0; i < r->test_accuracy.n; i++)
        best = fmax(best, r->test_accuracy.y[i]);
    fputs("<table>\n<tr><th>last test accuracy</th>", f);
    cell(f, r->test_accuracy.y[r->test_accuracy.n - 1] * 100, 4, "%");
    fputs("</tr>\n<tr><th>best test accuracy</th>", f);
    cell(f, best * 100, 4, "%");
    fputs("</tr>\n</table>\n", f);
    po__section_close(f);
}

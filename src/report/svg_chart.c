#include "report/svg_chart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/html.h"

static const char *const PALETTE[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                      "#b07aa1", "#ff9da7", "#9c755f", "#1f77b4", "#8c564b", "#17becf"};
#define N_PALETTE (int)(sizeof PALETTE / sizeof PALETTE[0])

const char *po__svg_colour(int i) { return PALETTE[(i % N_PALETTE + N_PALETTE) % N_PALETTE]; }

/* --- axes ------------------------------------------------------------------------------------- */

/* Heckbert's nice numbers: 1, 2 or 5 times a power of ten near x. */
static double nice(double x, bool round_it) {
    double e = floor(log10(x)), p = pow(10.0, e), f = x / p, nf;
    if (round_it)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * p;
}

typedef struct {
    double lo, hi, step; /* in axis units (log10 of the value on a log axis) */
    bool log;
} axis;

/* A linear axis over [lo, hi] widened to whole multiples of a nice step (about `ticks` ticks). */
static axis linear_axis(double lo, double hi, int ticks) {
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad, hi += pad;
    }
    axis a = {0, 0, 0, false};
    a.step = nice(nice(hi - lo, false) / (ticks - 1), true);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

static axis log_axis(double lo, double hi) {
    axis a = {floor(log10(lo) + 1e-9), ceil(log10(hi) - 1e-9), 1, true};
    if (a.hi <= a.lo) a.hi = a.lo + 1;
    a.step = ceil((a.hi - a.lo) / 8);
    return a;
}

static void tick_label(char *buf, size_t size, const axis *a, double t) {
    if (a->log) {
        int e = (int)lround(t);
        if (e >= -3 && e <= 5)
            po__fmt_num(buf, size, pow(10.0, e), 6);
        else
            snprintf(buf, size, "1e%d", e);
        return;
    }
    if (fabs(t) < a->step * 1e-6) t = 0;
    if (fabs(t) >= 1e7) {
        snprintf(buf, size, "%.3g", t);
        return;
    }
    int dec = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    snprintf(buf, size, "%.*f", dec, t);
}

/* --- line charts ------------------------------------------------------------------------------ */

enum { LW = 900, LH = 320, ML = 76, MR = 18, MT = 34, MB = 50 };
#define PW (LW - ML - MR)
#define PH (LH - MT - MB)

typedef struct {
    axis x, y;
} frame;

static double tx(const frame *fr, double x) { return ML + (x - fr->x.lo) / (fr->x.hi - fr->x.lo) * PW; }
static double ty(const frame *fr, double y) {
    double v = fr->y.log ? log10(y) : y;
    return MT + PH - (v - fr->y.lo) / (fr->y.hi - fr->y.lo) * PH;
}

static bool usable(const frame *fr, double x, double y) { return isfinite(x) && isfinite(y) && (!fr->y.log || y > 0); }

/* The indices of s to draw: all of them up to PO_SVG_MAX_POINTS, else each bucket's minimum and
 * maximum (lines) or every k-th point (markers). Returns the count; idx has room for s->n. */
static size_t pick_points(const frame *fr, const po__svg_series *s, size_t *idx) {
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (usable(fr, s->x[i], s->y[i])) idx[n++] = i;
    if (n <= PO_SVG_MAX_POINTS) return n;
    size_t out = 0;
    if (s->points) {
        size_t stride = (n + PO_SVG_MAX_POINTS - 1) / PO_SVG_MAX_POINTS;
        for (size_t i = 0; i < n; i += stride)
            idx[out++] = idx[i];
        return out;
    }
    size_t buckets = PO_SVG_MAX_POINTS / 2;
    for (size_t b = 0; b < buckets; b++) {
        size_t from = b * n / buckets, to = (b + 1) * n / buckets;
        if (from >= to) continue;
        size_t lo = from, hi = from;
        for (size_t i = from; i < to; i++) {
            if (s->y[idx[i]] < s->y[idx[lo]]) lo = i;
            if (s->y[idx[i]] > s->y[idx[hi]]) hi = i;
        }
        size_t first = lo < hi ? lo : hi, second = lo < hi ? hi : lo;
        size_t a = idx[first], c = idx[second];
        idx[out++] = a; /* out <= from, so the entries still to be read are intact */
        if (second != first) idx[out++] = c;
    }
    return out;
}

static void legend_entry(FILE *f, double *x, const char *colour, const char *label, int kind) {
    if (kind == 0) /* line */
        fprintf(f, "<line x1=\"%.1f\" y1=\"14\" x2=\"%.1f\" y2=\"14\" stroke=\"%s\" stroke-width=\"2.5\"/>", *x,
                *x + 18, colour);
    else if (kind == 1) /* marker */
        fprintf(f, "<circle cx=\"%.1f\" cy=\"14\" r=\"3.5\" fill=\"%s\"/>", *x + 9, colour);
    else /* dashed line */
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"14\" x2=\"%.1f\" y2=\"14\" stroke=\"%s\" stroke-width=\"2\" "
                "stroke-dasharray=\"4 3\"/>",
                *x, *x + 18, colour);
    fprintf(f, "<text x=\"%.1f\" y=\"18\" class=\"legend\">", *x + 24);
    po__html_text(f, label);
    fputs("</text>", f);
    *x += 24 + 6.8 * (double)strlen(label) + 18;
}

void po__svg_line_chart(FILE *f, const po__svg_chart *c, const po__svg_series *s, int n_series) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY, ypos = INFINITY;
    size_t most = 0;
    for (int k = 0; k < n_series; k++) {
        if (s[k].n > most) most = s[k].n;
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
            if (y > 0) ypos = fmin(ypos, y);
        }
    }
    for (size_t i = 0; i < c->n_vlines; i++)
        if (isfinite(c->vlines[i])) xlo = fmin(xlo, c->vlines[i]), xhi = fmax(xhi, c->vlines[i]);
    if (!isfinite(xlo)) xlo = 0, xhi = 1;
    if (!isfinite(ylo)) ylo = 0, yhi = 1;
    if (isfinite(c->y_include_lo)) ylo = fmin(ylo, c->y_include_lo);
    if (isfinite(c->y_include_hi)) yhi = fmax(yhi, c->y_include_hi);
    bool log = c->y_scale == PO_SVG_LOG || (c->y_scale == PO_SVG_AUTO && ylo > 0 && yhi / ylo >= 100);
    if (log && !isfinite(ypos)) log = false;
    frame fr = {linear_axis(xlo, xhi, 9), log ? log_axis(ypos, yhi) : linear_axis(ylo, yhi, 6)};

    fprintf(f, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"", LW,
            LH, LW, LH);
    po__html_text(f, c->aria);
    fputs("\">\n", f);
    fprintf(f, "<rect class=\"plot\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", ML, MT, PW, PH);
    char buf[64];
    /* y ticks and grid */
    for (double t = fr.y.lo; t <= fr.y.hi + fr.y.step * 1e-6; t += fr.y.step) {
        double y = MT + PH - (t - fr.y.lo) / (fr.y.hi - fr.y.lo) * PH;
        tick_label(buf, sizeof buf, &fr.y, t);
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><line class=\"tick\" x1=\"%d\" "
                "y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><text class=\"ytick\" x=\"%d\" y=\"%.1f\">%s</text>\n",
                ML, y, ML + PW, y, ML - 5, y, ML, y, ML - 8, y + 4, buf);
    }
    /* x ticks */
    for (double t = fr.x.lo; t <= fr.x.hi + fr.x.step * 1e-6; t += fr.x.step) {
        double x = tx(&fr, t);
        tick_label(buf, sizeof buf, &fr.x, t);
        fprintf(f,
                "<line class=\"tick\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/><text class=\"xtick\" x=\"%.1f\" "
                "y=\"%d\">%s</text>\n",
                x, MT + PH, x, MT + PH + 5, x, MT + PH + 18, buf);
    }
    fprintf(f, "<text class=\"axis-label\" x=\"%d\" y=\"%d\">", ML + PW / 2, LH - 8);
    po__html_text(f, c->x_label);
    fprintf(f, "</text>\n<text class=\"axis-label\" transform=\"rotate(-90)\" x=\"%d\" y=\"16\">", -(MT + PH / 2));
    po__html_text(f, c->y_label);
    fputs(log ? " (log scale)</text>\n" : "</text>\n", f);

    for (size_t i = 0; i < c->n_vlines; i++) {
        if (!isfinite(c->vlines[i])) continue;
        double x = tx(&fr, c->vlines[i]);
        fprintf(f, "<line class=\"marker\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"><title>", x, MT, x, MT + PH);
        po__html_textf(f, "%s at %g", c->vline_label ? c->vline_label : "event", c->vlines[i]);
        fputs("</title></line>\n", f);
    }

    size_t *idx = most ? malloc(most * sizeof *idx) : NULL;
    for (int k = 0; k < n_series && idx; k++) {
        size_t n = pick_points(&fr, &s[k], idx);
        if (!n) continue;
        if (s[k].points) {
            fprintf(f, "<g fill=\"%s\">", s[k].colour);
            for (size_t j = 0; j < n; j++) {
                size_t i = idx[j];
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>", tx(&fr, s[k].x[i]), ty(&fr, s[k].y[i]));
                po__html_text(f, s[k].label);
                po__html_textf(f, ": %g at %g", s[k].y[i], s[k].x[i]);
                fputs("</title></circle>", f);
            }
            fputs("</g>\n", f);
        } else {
            fprintf(f, "<polyline class=\"line\" stroke=\"%s\"%s points=\"", s[k].colour,
                    s[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
            for (size_t j = 0; j < n; j++)
                fprintf(f, "%s%.1f,%.1f", j ? " " : "", tx(&fr, s[k].x[idx[j]]), ty(&fr, s[k].y[idx[j]]));
            fputs("\"><title>", f);
            po__html_text(f, s[k].label);
            fputs("</title></polyline>\n", f);
        }
    }
    free(idx);

    double lx = ML;
    fputs("<g>", f);
    for (int k = 0; k < n_series; k++)
        if (s[k].label) legend_entry(f, &lx, s[k].colour, s[k].label, s[k].points ? 1 : s[k].dashed ? 2 : 0);
    if (c->n_vlines && c->vline_label) legend_entry(f, &lx, "#777", c->vline_label, 2);
    fputs("</g>\n</svg>\n", f);
}

/* --- Gantt chart ------------------------------------------------------------------------------ */

enum { GW = 1100, GL = 130, GR = 20, GT = 8, ROW = 26, ROW_GAP = 6, AXIS_H = 44, KEY_W = 210, KEY_H = 20 };

/* Writes at most max code points of s, then an ellipsis. */
static void text_clipped(FILE *f, const char *s, int max) {
    size_t len = strlen(s), end = 0;
    int count = 0;
    while (end < len && count < max) {
        end++;
        while (end < len && ((unsigned char)s[end] & 0xC0) == 0x80)
            end++;
        count++;
    }
    if (end == len) {
        po__html_text(f, s);
        return;
    }
    char *tmp = malloc(end + 1);
    if (!tmp) return;
    memcpy(tmp, s, end);
    tmp[end] = '\0';
    po__html_text(f, tmp);
    fputs("\xE2\x80\xA6", f);
    free(tmp);
}

void po__svg_gantt(FILE *f, const char *const *tracks, int n_tracks, const po__gantt_slice *s, size_t n,
                   const po__gantt_key *keys, int n_keys, const char *aria) {
    double end = 0;
    for (size_t i = 0; i < n; i++)
        end = fmax(end, s[i].start + s[i].dur);
    axis ax = linear_axis(0, end > 0 ? end : 1, 10);
    ax.lo = 0;
    int pw = GW - GL - GR, rows_h = n_tracks * (ROW + ROW_GAP);
    int key_cols = GW / KEY_W, key_rows = (n_keys + key_cols - 1) / key_cols;
    int h = GT + rows_h + AXIS_H + key_rows * KEY_H + 10;
    fprintf(f, "<svg class=\"chart gantt\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
            GW, h, GW, h);
    po__html_text(f, aria);
    fputs("\">\n", f);
    for (int t = 0; t < n_tracks; t++) {
        int y = GT + t * (ROW + ROW_GAP);
        fprintf(f, "<rect class=\"lane\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>", GL, y, pw, ROW);
        fprintf(f, "<text class=\"track\" x=\"%d\" y=\"%d\"><title>", GL - 8, y + ROW / 2 + 4);
        po__html_text(f, tracks[t]);
        fputs("</title>", f);
        text_clipped(f, tracks[t], 16);
        fputs("</text>\n", f);
    }
    int axis_y = GT + rows_h;
    char buf[64];
    for (double t = ax.lo; t <= ax.hi + ax.step * 1e-6; t += ax.step) {
        double x = GL + t / ax.hi * pw;
        tick_label(buf, sizeof buf, &ax, t);
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/><text class=\"xtick\" x=\"%.1f\" "
                "y=\"%d\">%s</text>\n",
                x, GT, x, axis_y + 4, x, axis_y + 17, buf);
    }
    fprintf(f, "<text class=\"axis-label\" x=\"%d\" y=\"%d\">time from the start of the step (ms)</text>\n",
            GL + pw / 2, axis_y + 36);
    for (size_t i = 0; i < n; i++) {
        const po__gantt_slice *g = &s[i];
        double x = GL + g->start / ax.hi * pw, w = fmax(g->dur / ax.hi * pw, 0.5);
        int y = GT + g->track * (ROW + ROW_GAP);
        const char *colour = g->colour >= 0 && g->colour < n_keys ? keys[g->colour].colour : "#999";
        fprintf(f, "<rect class=\"slice\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\"><title>", x, y,
                w, ROW, colour);
        po__html_text(f, g->name);
        if (g->detail && *g->detail) {
            fputs(" [", f);
            po__html_text(f, g->detail);
            fputc(']', f);
        }
        po__html_textf(f, ": %.3f ms, from %.3f to %.3f ms", g->dur, g->start, g->start + g->dur);
        fputs("</title></rect>\n", f);
    }
    int key_y = axis_y + AXIS_H + 4;
    for (int k = 0; k < n_keys; k++) {
        int x = (k % key_cols) * KEY_W + 8, y = key_y + (k / key_cols) * KEY_H;
        fprintf(f, "<rect class=\"key\" x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y,
                keys[k].colour);
        fprintf(f, "<text class=\"legend\" x=\"%d\" y=\"%d\"><title>", x + 18, y + 11);
        po__html_text(f, keys[k].label);
        fputs("</title>", f);
        text_clipped(f, keys[k].label, 26);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

/* --- bars ------------------------------------------------------------------------------------- */

void po__svg_bars(FILE *f, const char *const *labels, const double *values, const char *const *colours, int n,
                  const char *unit, const char *aria) {
    enum { BW = 900, BL = 190, BR = 120, BAR = 22, GAP = 10 };
    double max = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(values[i])) max = fmax(max, values[i]);
    if (max <= 0) max = 1;
    int h = n * (BAR + GAP) + GAP;
    fprintf(f, "<svg class=\"chart bars\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
            BW, h, BW, h);
    po__html_text(f, aria);
    fputs("\">\n", f);
    char buf[64];
    for (int i = 0; i < n; i++) {
        int y = GAP + i * (BAR + GAP);
        double w = isfinite(values[i]) && values[i] > 0 ? values[i] / max * (BW - BL - BR) : 0;
        fprintf(f, "<text class=\"track\" x=\"%d\" y=\"%d\">", BL - 8, y + BAR / 2 + 4);
        po__html_text(f, labels[i]);
        fprintf(f, "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", BL, y, w,
                BAR, colours[i]);
        fprintf(f, "<text class=\"value\" x=\"%.1f\" y=\"%d\">%s ", BL + w + 6, y + BAR / 2 + 4,
                po__fmt_num(buf, sizeof buf, values[i], 4));
        po__html_text(f, unit);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

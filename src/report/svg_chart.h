/* Inline SVG charts for the run report: line/point charts with axes, and a Gantt chart.
 * The SVG is written without an xmlns attribute (inline SVG in HTML needs none), without
 * scripts, and with every string escaped. Each slice of a Gantt chart is one
 * <rect class="slice"> (legend swatches are class "key"), so tests can count them. */
#ifndef PO_REPORT_SVG_CHART_H
#define PO_REPORT_SVG_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Lines are drawn with at most this many points: longer series keep each bucket's minimum and
 * maximum, so spikes survive. */
#define PO_SVG_MAX_POINTS 1000

typedef struct {
    const double *x, *y; /* n points; NaN or infinite y values are skipped */
    size_t n;
    const char *label;  /* legend text; NULL: no legend entry */
    const char *colour; /* CSS colour */
    bool points;        /* circles instead of a line */
    bool dashed;
} po__svg_series;

enum { PO_SVG_LINEAR = 0, PO_SVG_LOG, PO_SVG_AUTO /* log when every y > 0 and max/min >= 100 */ };

typedef struct {
    const char *x_label, *y_label;     /* axis titles, units included */
    const char *aria;                  /* the chart's accessible description */
    int y_scale;                       /* PO_SVG_LINEAR, PO_SVG_LOG, PO_SVG_AUTO */
    double y_include_lo, y_include_hi; /* values the y range must include (NaN: none) */
    const double *vlines;              /* x positions of vertical markers (events) */
    size_t n_vlines;
    const char *vline_label; /* legend text for the markers */
} po__svg_chart;

/* A chart of the series in an SVG 900 x 320 user units (scaled to the page width). */
void po__svg_line_chart(FILE *f, const po__svg_chart *c, const po__svg_series *s, int n_series);

typedef struct {
    int track;          /* row index */
    double start, dur;  /* ms from the chart's origin */
    const char *name;   /* shown in the tooltip */
    const char *detail; /* tooltip's second part (category), NULL for none */
    int colour;         /* index into the legend */
} po__gantt_slice;

typedef struct {
    const char *label;
    const char *colour;
} po__gantt_key;

/* A Gantt chart: one row per track, one rect per slice, a time axis in ms, and a legend. */
void po__svg_gantt(FILE *f, const char *const *tracks, int n_tracks, const po__gantt_slice *s, size_t n,
                   const po__gantt_key *keys, int n_keys, const char *aria);

/* Horizontal bars with their values written at their ends (e.g. predicted against measured). */
void po__svg_bars(FILE *f, const char *const *labels, const double *values, const char *const *colours, int n,
                  const char *unit, const char *aria);

/* The report's palette: distinct colours for series and slices; index wraps. */
const char *po__svg_colour(int i);

#endif

/* The report's Gantt chart: one training step per device, from the run's Chrome trace. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report/html.h"
#include "report/report_internal.h"
#include "report/svg_chart.h"

#define MAX_KEYS 12

typedef struct {
    int64_t step;
    size_t from, to; /* slices [from, to) of rd_trace.slices */
} group;

typedef struct {
    const char *label;
    double total; /* µs */
    int colour;   /* legend index after sorting */
} key_stat;

static int cmp_key(const void *a, const void *b) {
    const key_stat *x = a, *y = b;
    if (x->total != y->total) return x->total > y->total ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* Slices per track of group g, into counts (n_tracks entries). */
static void count_tracks(const rd_trace *t, const group *g, size_t *counts) {
    memset(counts, 0, (size_t)t->n_tracks * sizeof *counts);
    for (size_t i = g->from; i < g->to; i++)
        counts[t->slices[i].track]++;
}

static const char *track_label(const rd_trace *t, int k, char *buf, size_t size) {
    if (t->tracks[k].name) return t->tracks[k].name;
    snprintf(buf, size, "pid %lld tid %lld", (long long)t->tracks[k].pid, (long long)t->tracks[k].tid);
    return buf;
}

/* Picks the step to draw: the last step with slices on every device track, unless it is the
 * trace's last step and has fewer slices on some track than the complete step before it (a
 * trace cut short mid-step), in which case that earlier step. Writes why into note. */
static group choose(const rd_trace *t, const group *groups, size_t n_groups, bool *used, size_t *counts_a,
                    size_t *counts_b, char *note, size_t note_size) {
    int n_used = 0;
    memset(used, 0, (size_t)t->n_tracks * sizeof *used);
    for (size_t g = 0; g < n_groups; g++)
        for (size_t i = groups[g].from; i < groups[g].to; i++)
            if (!used[t->slices[i].track]) used[t->slices[i].track] = true, n_used++;
    long best = -1, prev = -1, most = -1;
    int most_tracks = -1;
    for (long g = (long)n_groups - 1; g >= 0; g--) {
        count_tracks(t, &groups[g], counts_a);
        int covered = 0;
        for (int k = 0; k < t->n_tracks; k++)
            covered += counts_a[k] > 0;
        if (covered > most_tracks) most_tracks = covered, most = g;
        if (covered == n_used) {
            if (best < 0)
                best = g;
            else if (prev < 0)
                prev = g;
        }
    }
    if (best < 0) {
        snprintf(note, note_size, "No step has slices on every device; step %lld has them on the most (%d of %d).",
                 (long long)groups[most].step, most_tracks, n_used);
        return groups[most];
    }
    const group *last = &groups[n_groups - 1];
    if (best == (long)n_groups - 1 && prev >= 0) {
        count_tracks(t, &groups[best], counts_a);
        count_tracks(t, &groups[prev], counts_b);
        for (int k = 0; k < t->n_tracks; k++)
            if (counts_a[k] < counts_b[k]) {
                char buf[64];
                snprintf(note, note_size,
                         "Step %lld, the last complete step: step %lld, the trace's last, looks cut short (%zu "
                         "slices on %s against %zu in step %lld).",
                         (long long)groups[prev].step, (long long)last->step, counts_a[k],
                         track_label(t, k, buf, sizeof buf), counts_b[k], (long long)groups[prev].step);
                return groups[prev];
            }
    }
    if (best == (long)n_groups - 1)
        snprintf(note, note_size, "Step %lld, the last step in the trace.", (long long)groups[best].step);
    else
        snprintf(note, note_size,
                 "Step %lld, the last complete step: step %lld, the trace's last, lacks slices on "
                 "some device.",
                 (long long)groups[best].step, (long long)last->step);
    return groups[best];
}

/* Distinct labels of the chosen slices (names, or categories when names are too many to tell
 * apart by colour), sorted by total time; slice_key[i] gets each slice's entry. Returns the
 * count, or -1 when out of memory. */
static int collect_keys(const rd_slice *s, size_t n, bool by_cat, key_stat **out, int *slice_key) {
    key_stat *keys = NULL;
    int n_keys = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        const char *label = by_cat ? (s[i].cat ? s[i].cat : "(no category)") : s[i].name;
        int k = 0;
        while (k < n_keys && strcmp(keys[k].label, label) != 0)
            k++;
        if (k == n_keys) {
            if (n_keys == cap) {
                cap = cap ? cap * 2 : 16;
                key_stat *grown = realloc(keys, (size_t)cap * sizeof *keys);
                if (!grown) {
                    free(keys);
                    return -1;
                }
                keys = grown;
            }
            keys[n_keys++] = (key_stat){label, 0, 0};
        }
        keys[k].total += s[i].dur;
        slice_key[i] = k;
    }
    *out = keys;
    return n_keys;
}

static void draw(FILE *f, const rd_trace *t, const group *g, const bool *used) {
    size_t n = g->to - g->from;
    const rd_slice *s = t->slices + g->from;
    int *row = malloc((size_t)t->n_tracks * sizeof *row), *slice_key = malloc(n * sizeof *slice_key);
    const char **rows = malloc((size_t)t->n_tracks * sizeof *rows);
    char(*names)[64] = malloc((size_t)t->n_tracks * sizeof *names);
    po__gantt_slice *gs = malloc(n * sizeof *gs);
    key_stat *keys = NULL;
    int n_keys = -1;
    if (row && slice_key && rows && names && gs) {
        n_keys = collect_keys(s, n, false, &keys, slice_key);
        bool have_cats = true;
        for (size_t i = 0; i < n; i++)
            have_cats = have_cats && s[i].cat;
        if (n_keys > MAX_KEYS && have_cats) {
            key_stat *by_cat = NULL;
            int *cat_key = malloc(n * sizeof *cat_key);
            int n_cats = cat_key ? collect_keys(s, n, true, &by_cat, cat_key) : -1;
            if (n_cats > 0 && n_cats <= MAX_KEYS) {
                free(keys);
                keys = by_cat;
                n_keys = n_cats;
                memcpy(slice_key, cat_key, n * sizeof *slice_key);
            } else {
                free(by_cat);
            }
            free(cat_key);
        }
    }
    if (n_keys < 0) {
        fputs("<p class=\"missing\">Out of memory drawing the step.</p>\n", f);
        goto done;
    }
    {
        /* Legend order: most time first; past MAX_KEYS - 1 entries the rest share "other". */
        int *rank = malloc((size_t)n_keys * sizeof *rank);
        key_stat *sorted = malloc((size_t)n_keys * sizeof *sorted);
        po__gantt_key legend[MAX_KEYS];
        char other[64];
        if (!rank || !sorted) {
            free(rank);
            free(sorted);
            fputs("<p class=\"missing\">Out of memory drawing the step.</p>\n", f);
            goto done;
        }
        for (int k = 0; k < n_keys; k++)
            keys[k].colour = k;
        memcpy(sorted, keys, (size_t)n_keys * sizeof *sorted);
        qsort(sorted, (size_t)n_keys, sizeof *sorted, cmp_key);
        int n_legend = n_keys <= MAX_KEYS ? n_keys : MAX_KEYS;
        for (int k = 0; k < n_keys; k++) {
            int slot = n_keys <= MAX_KEYS || k < MAX_KEYS - 1 ? k : MAX_KEYS - 1;
            rank[sorted[k].colour] = slot;
            if (slot == k) legend[k] = (po__gantt_key){sorted[k].label, po__svg_colour(k)};
        }
        if (n_keys > MAX_KEYS) {
            snprintf(other, sizeof other, "other (%d kinds)", n_keys - (MAX_KEYS - 1));
            legend[MAX_KEYS - 1] = (po__gantt_key){other, "#b0b0b0"};
        }
        int n_rows = 0;
        for (int k = 0; k < t->n_tracks; k++) {
            row[k] = used[k] ? n_rows : -1;
            if (used[k]) rows[n_rows++] = track_label(t, k, names[k], sizeof names[k]);
        }
        double origin = INFINITY;
        for (size_t i = 0; i < n; i++)
            origin = fmin(origin, s[i].ts);
        double span = 0;
        for (size_t i = 0; i < n; i++) {
            gs[i] = (po__gantt_slice){row[s[i].track], (s[i].ts - origin) / 1e3, s[i].dur / 1e3, s[i].name,
                                      s[i].cat,        rank[slice_key[i]]};
            span = fmax(span, gs[i].start + gs[i].dur);
        }
        char aria[128];
        snprintf(aria, sizeof aria, "Gantt chart of one training step: %zu slices on %d devices", n, n_rows);
        po__svg_gantt(f, rows, n_rows, gs, n, legend, n_legend, aria);

        fputs("<table>\n<tr><th>device</th><th>slices</th><th>busy (sum of slice times)</th><th>busy "
              "share of the step</th></tr>\n",
              f);
        for (int k = 0; k < t->n_tracks; k++) {
            if (row[k] < 0) continue;
            size_t count = 0;
            double busy = 0;
            for (size_t i = 0; i < n; i++)
                if (s[i].track == k) count++, busy += s[i].dur / 1e3;
            char buf[64];
            fputs("<tr><td>", f);
            po__html_text(f, rows[row[k]]);
            fprintf(f, "</td><td class=\"num\">%zu</td><td class=\"num\">%s ms</td>", count,
                    po__fmt_num(buf, sizeof buf, busy, 4));
            fprintf(f, "<td class=\"num\">%s%%</td></tr>\n",
                    po__fmt_num(buf, sizeof buf, span > 0 ? busy / span * 100 : NAN, 3));
        }
        fputs("</table>\n", f);
        free(rank);
        free(sorted);
    }
done:
    free(row);
    free(slice_key);
    free(rows);
    free(names);
    free(gs);
    free(keys);
}

void po__section_gantt(FILE *f, const rd_run *r) {
    po__section_open(f, "gantt", "One training step");
    const rd_trace *t = &r->trace;
    if (!r->has_trace) {
        if (r->trace_error)
            po__not_recorded(f, "trace.json could not be read (%s).", r->trace_error);
        else
            po__not_recorded(f, "the run directory has no trace.json.");
        po__section_close(f);
        return;
    }
    if (!t->n_slices) {
        po__not_recorded(f, "trace.json has no complete (\"X\") events.");
        po__section_close(f);
        return;
    }
    /* Groups of slices with one step number; slices without one sort first (INT64_MIN). */
    size_t n_groups = 0, first = 0;
    group *groups = malloc(t->n_slices * sizeof *groups);
    bool *used = malloc((size_t)t->n_tracks * sizeof *used);
    size_t *ca = malloc((size_t)t->n_tracks * sizeof *ca), *cb = malloc((size_t)t->n_tracks * sizeof *cb);
    if (!groups || !used || !ca || !cb) {
        fputs("<p class=\"missing\">Out of memory reading the trace.</p>\n", f);
    } else {
        while (first < t->n_slices && t->slices[first].step == INT64_MIN)
            first++;
        for (size_t i = first; i < t->n_slices; i++) {
            if (i == first || t->slices[i].step != t->slices[i - 1].step)
                groups[n_groups++] = (group){t->slices[i].step, i, i};
            groups[n_groups - 1].to = i + 1;
        }
        char note[512];
        group g;
        if (n_groups == 0) {
            g = (group){INT64_MIN, 0, t->n_slices};
            snprintf(note, sizeof note, "The trace records no step numbers (args.step): all %zu slices are shown.",
                     t->n_slices);
            memset(used, 0, (size_t)t->n_tracks * sizeof *used);
            for (size_t i = 0; i < t->n_slices; i++)
                used[t->slices[i].track] = true;
        } else {
            g = choose(t, groups, n_groups, used, ca, cb, note, sizeof note);
        }
        fprintf(f, "<p>");
        po__html_text(f, note);
        fprintf(f,
                " One row per device, one bar per traced slice (%zu in this step; hover for name and time); "
                "colours follow the legend.",
                g.to - g.from);
        if (n_groups > 1) fprintf(f, " The trace holds %zu steps.", n_groups);
        fputs("</p>\n", f);
        draw(f, t, &g, used);
    }
    free(groups);
    free(used);
    free(ca);
    free(cb);
    po__section_close(f);
}

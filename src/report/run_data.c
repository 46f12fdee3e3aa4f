#include "report/run_data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

double po__json_num(const json_t *o, const char *key) {
    const json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *po__json_str(const json_t *o, const char *key) {
    const json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* --- growable arrays -------------------------------------------------------------------------- */

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool series_push(rd_series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return false;
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return false;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return true;
}

static void series_free(rd_series *s) {
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

static bool set_push(rd_series_set *set, const char *name, double x, double y) {
    int i = 0;
    while (i < set->n && strcmp(set->v[i].name, name) != 0)
        i++;
    if (i == set->n) {
        size_t cap = (size_t)set->cap;
        if (!grow((void **)&set->v, &cap, (size_t)set->n + 1, sizeof *set->v)) return false;
        set->cap = (int)cap;
        char *copy = strdup(name);
        if (!copy) return false;
        memset(&set->v[i], 0, sizeof set->v[i]);
        set->v[i].name = copy;
        set->n++;
    }
    return series_push(&set->v[i].s, x, y);
}

static void set_free(rd_series_set *set) {
    for (int i = 0; i < set->n; i++) {
        free(set->v[i].name);
        series_free(&set->v[i].s);
    }
    free(set->v);
    memset(set, 0, sizeof *set);
}

/* --- files ------------------------------------------------------------------------------------ */

/* Reads the optional JSON object file dir/name (or array, when array_ok: Chrome's other trace
 * format): *out stays NULL when it is absent; *error says why when it is present but unusable.
 * Only allocation failure is an error. */
static po_status load_optional(const char *dir, const char *name, bool array_ok, json_t **out, char **error) {
    *out = NULL;
    *error = NULL;
    char *path = join(dir, name);
    if (!path) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    char msg[512] = "";
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno != ENOENT) snprintf(msg, sizeof msg, "%s: cannot read: %s", name, strerror(errno));
    } else {
        json_error_t err;
        json_t *root = json_loadf(fp, 0, &err);
        fclose(fp);
        if (!root)
            snprintf(msg, sizeof msg, "%s:%d:%d: %s", name, err.line, err.column, err.text);
        else if (!json_is_object(root) && !(array_ok && json_is_array(root)))
            snprintf(msg, sizeof msg, "%s: not a JSON object", name), json_decref(root);
        else
            *out = root;
    }
    free(path);
    if (*msg && !(*error = strdup(msg))) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    return PO_OK;
}

static po_status load_settings(const char *dir, rd_run *r) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return po_fail(errno == ENOENT || errno == ENOTDIR ? PO_ERR_NOT_FOUND : PO_ERR_IO, "%s: cannot open: %s", dir,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode)) return po_fail(PO_ERR_INVALID_ARG, "%s: not a directory", dir);
    char *path = join(dir, "settings.json");
    if (!path) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_status s = PO_OK;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        s = errno == ENOENT ? po_fail(PO_ERR_INVALID_ARG, "%s: not a run directory (no settings.json)", dir)
                            : po_fail(PO_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    } else {
        json_error_t err;
        r->settings = json_loadf(fp, 0, &err);
        fclose(fp);
        if (!r->settings)
            s = po_fail(PO_ERR_FORMAT, "%s:%d:%d: %s", path, err.line, err.column, err.text);
        else if (!json_is_object(r->settings))
            s = po_fail(PO_ERR_FORMAT, "%s: not a JSON object", path);
    }
    free(path);
    return s;
}

static bool add_record(rd_run *r, const json_t *o) {
    double step = po__json_num(o, "step");
    if (!isfinite(step)) return true;
    const char *event = po__json_str(o, "event");
    if (event) {
        if (strcmp(event, "rebalance") != 0) return true;
        if (!grow((void **)&r->rebalance_steps, &r->rebalance_cap, r->n_rebalances + 1, sizeof(double))) return false;
        r->rebalance_steps[r->n_rebalances++] = step;
        const json_t *w = json_object_get(o, "workers");
        if (json_is_array(w) && json_array_size(w) && json_object_get(json_array_get(w, 0), "layers"))
            r->repartitions = true;
        return true;
    }
    double tl = po__json_num(o, "test_loss"), ta = po__json_num(o, "test_accuracy");
    if (isfinite(tl) || isfinite(ta)) {
        if (isfinite(tl) && !series_push(&r->test_loss, step, tl)) return false;
        if (isfinite(ta) && !series_push(&r->test_accuracy, step, ta)) return false;
        return true;
    }
    double loss = po__json_num(o, "loss");
    if (!json_is_number(json_object_get(o, "loss"))) return true;
    r->step_records++;
    if (!series_push(&r->loss, step, loss)) return false;
    double v = po__json_num(o, "samples_per_s");
    if (isfinite(v) && !series_push(&r->samples_per_s, step, v)) return false;
    if (isfinite(v = po__json_num(o, "step_ms")) && !series_push(&r->step_ms, step, v)) return false;
    const char *source = po__json_str(o, "energy_source");
    if (!source) source = "source not recorded";
    if (isfinite(v = po__json_num(o, "power_w")) && !set_push(&r->power, source, step, v)) return false;
    if (isfinite(v = po__json_num(o, "energy_j")) && !set_push(&r->energy, source, step, v)) return false;
    const json_t *workers = json_object_get(o, "workers");
    size_t i;
    const json_t *w;
    json_array_foreach(workers, i, w) {
        const char *dev = po__json_str(w, "device");
        double busy = po__json_num(w, "busy");
        if (dev && isfinite(busy) && !set_push(&r->busy, dev, step, busy)) return false;
    }
    return true;
}

static po_status load_metrics(const char *dir, rd_run *r) {
    char *path = join(dir, "metrics.jsonl");
    if (!path) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        po_status s = errno == ENOENT ? PO_OK : po_fail(PO_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        free(path);
        return s;
    }
    r->has_metrics = true;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    po_status s = PO_OK;
    while (!s && (len = getline(&line, &cap, fp)) >= 0) {
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        json_t *o = json_loadb(line, (size_t)len, 0, NULL);
        if (!json_is_object(o))
            r->bad_lines++;
        else if (!add_record(r, o))
            s = po_fail(PO_ERR_NO_MEMORY, "out of memory reading %s", path);
        json_decref(o);
    }
    if (!s && ferror(fp)) s = po_fail(PO_ERR_IO, "%s: read error", path);
    free(line);
    fclose(fp);
    free(path);
    return s;
}

/* --- trace ------------------------------------------------------------------------------------ */

static int find_track(rd_trace *t, int64_t pid, int64_t tid, size_t *cap) {
    for (int i = t->n_tracks - 1; i >= 0; i--)
        if (t->tracks[i].pid == pid && t->tracks[i].tid == tid) return i;
    if (!grow((void **)&t->tracks, cap, (size_t)t->n_tracks + 1, sizeof *t->tracks)) return -1;
    t->tracks[t->n_tracks] = (rd_track){pid, tid, NULL};
    return t->n_tracks++;
}

static int64_t int_member(const json_t *o, const char *key, int64_t fallback) {
    double v = po__json_num(o, key);
    return isfinite(v) && v == floor(v) && fabs(v) < 9e15 ? (int64_t)v : fallback;
}

static int cmp_track(const void *a, const void *b) {
    const rd_track *x = a, *y = b;
    if (x->pid != y->pid) return x->pid < y->pid ? -1 : 1;
    return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static int cmp_slice(const void *a, const void *b) {
    const rd_slice *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->dur > y->dur) - (x->dur < y->dur);
}

/* Fills r->trace from r->trace.root; a trace of the wrong shape gets r->trace_error. */
static po_status parse_trace(rd_run *r) {
    rd_trace *t = &r->trace;
    json_t *events = json_is_array(t->root) ? t->root : json_object_get(t->root, "traceEvents");
    if (!json_is_array(events)) {
        r->trace_error = strdup("trace.json: no \"traceEvents\" array");
        return r->trace_error ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    size_t track_cap = 0, slice_cap = 0, i;
    json_t *e;
    json_array_foreach(events, i, e) {
        const char *ph = po__json_str(e, "ph");
        if (!ph) continue;
        int64_t pid = int_member(e, "pid", 0), tid = int_member(e, "tid", 0);
        if (strcmp(ph, "M") == 0) {
            const char *n = po__json_str(e, "name");
            const char *label = po__json_str(json_object_get(e, "args"), "name");
            if (!n || strcmp(n, "thread_name") != 0 || !label) continue;
            int k = find_track(t, pid, tid, &track_cap);
            if (k < 0) return po_fail(PO_ERR_NO_MEMORY, "out of memory reading trace.json");
            t->tracks[k].name = label;
        } else if (strcmp(ph, "X") == 0) {
            double ts = po__json_num(e, "ts"), dur = po__json_num(e, "dur");
            if (!isfinite(ts)) continue;
            if (!isfinite(dur) || dur < 0) dur = 0;
            int k = find_track(t, pid, tid, &track_cap);
            if (k < 0 || !grow((void **)&t->slices, &slice_cap, t->n_slices + 1, sizeof *t->slices))
                return po_fail(PO_ERR_NO_MEMORY, "out of memory reading trace.json");
            const char *name = po__json_str(e, "name");
            t->slices[t->n_slices++] = (rd_slice){k,
                                                  ts,
                                                  dur,
                                                  name ? name : "(unnamed)",
                                                  po__json_str(e, "cat"),
                                                  int_member(json_object_get(e, "args"), "step", INT64_MIN)};
        }
    }
    /* Rows in (pid, tid) order; slices renumbered to match. */
    if (t->n_tracks > 1) {
        rd_track *sorted = malloc((size_t)t->n_tracks * sizeof *sorted);
        int *where = malloc((size_t)t->n_tracks * sizeof *where);
        if (!sorted || !where) {
            free(sorted);
            free(where);
            return po_fail(PO_ERR_NO_MEMORY, "out of memory reading trace.json");
        }
        memcpy(sorted, t->tracks, (size_t)t->n_tracks * sizeof *sorted);
        qsort(sorted, (size_t)t->n_tracks, sizeof *sorted, cmp_track);
        for (int a = 0; a < t->n_tracks; a++)
            for (int b = 0; b < t->n_tracks; b++)
                if (sorted[b].pid == t->tracks[a].pid && sorted[b].tid == t->tracks[a].tid) where[a] = b;
        for (size_t s = 0; s < t->n_slices; s++)
            t->slices[s].track = where[t->slices[s].track];
        free(t->tracks);
        t->tracks = sorted;
        free(where);
    }
    if (t->n_slices) qsort(t->slices, t->n_slices, sizeof *t->slices, cmp_slice);
    return PO_OK;
}

po_status po__run_load(const char *dir, rd_run *r) {
    memset(r, 0, sizeof *r);
    po_status s = load_settings(dir, r);
    if (!s) s = load_metrics(dir, r);
    if (!s) s = load_optional(dir, "plan.json", false, &r->plan, &r->plan_error);
    if (!s) s = load_optional(dir, "summary.json", false, &r->summary, &r->summary_error);
    if (!s) s = load_optional(dir, "trace.json", true, &r->trace.root, &r->trace_error);
    if (!s && r->trace.root) {
        s = parse_trace(r);
        r->has_trace = !s && !r->trace_error;
    }
    return s;
}

void po__run_free(rd_run *r) {
    json_decref(r->settings);
    json_decref(r->plan);
    json_decref(r->summary);
    json_decref(r->trace.root);
    free(r->plan_error);
    free(r->summary_error);
    free(r->trace_error);
    free(r->trace.tracks);
    free(r->trace.slices);
    series_free(&r->loss);
    series_free(&r->samples_per_s);
    series_free(&r->step_ms);
    series_free(&r->test_loss);
    series_free(&r->test_accuracy);
    set_free(&r->busy);
    set_free(&r->power);
    set_free(&r->energy);
    free(r->rebalance_steps);
    memset(r, 0, sizeof *r);
}

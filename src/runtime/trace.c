/* Execution trace recorder and its Chrome-trace writer (paropt/trace.h). */
#include "paropt/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/atomic_file.h"

typedef struct {
    const char *name, *category;
    double t0, t1;
    int64_t step;
} slice;

typedef struct {
    int to;
    const char *name;
    double t0, t1;
    int64_t step;
} flow;

typedef struct {
    char name[64];
    slice *s;
    int64_t n, cap;
    flow *f;
    int64_t nf, capf;
} trace_track;

struct po_trace {
    int n;
    trace_track *t;
    double origin;
    int64_t step;
    bool recording;
};

double po_trace_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

po_status po_trace_new(int n_tracks, po_trace **out) {
    *out = NULL;
    if (n_tracks < 1 || n_tracks > 4096) return po_fail(PO_ERR_INVALID_ARG, "trace: %d tracks", n_tracks);
    po_trace *tr = calloc(1, sizeof *tr);
    if (tr) tr->t = calloc((size_t)n_tracks, sizeof *tr->t);
    if (!tr || !tr->t) {
        free(tr);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for a trace");
    }
    tr->n = n_tracks;
    tr->origin = po_trace_now();
    for (int i = 0; i < n_tracks; i++)
        snprintf(tr->t[i].name, sizeof tr->t[i].name, "track %d", i);
    *out = tr;
    return PO_OK;
}

void po_trace_free(po_trace *tr) {
    if (!tr) return;
    for (int i = 0; i < tr->n; i++) {
        free(tr->t[i].s);
        free(tr->t[i].f);
    }
    free(tr->t);
    free(tr);
}

po_status po_trace_set_track_name(po_trace *tr, int track, const char *name) {
    if (track < 0 || track >= tr->n) return po_fail(PO_ERR_RANGE, "trace: no track %d", track);
    snprintf(tr->t[track].name, sizeof tr->t[track].name, "%s", name);
    return PO_OK;
}

void po_trace_begin_step(po_trace *tr, int64_t step) {
    tr->step = step;
    tr->recording = true;
}

void po_trace_end_step(po_trace *tr) { tr->recording = false; }
bool po_trace_recording(const po_trace *tr) { return tr && tr->recording; }

void po_trace_slice(po_trace *tr, int track, const char *name, const char *category, double t0, double t1) {
    if (!tr || !tr->recording || track < 0 || track >= tr->n) return;
    trace_track *k = &tr->t[track];
    if (k->n == k->cap) {
        int64_t cap = k->cap ? 2 * k->cap : 256;
        slice *s = realloc(k->s, (size_t)cap * sizeof *s);
        if (!s) return;
        k->s = s;
        k->cap = cap;
    }
    k->s[k->n++] = (slice){name, category, t0, t1, tr->step};
}

void po_trace_flow(po_trace *tr, int from_track, int to_track, const char *name, double t0, double t1) {
    if (!tr || !tr->recording || from_track < 0 || from_track >= tr->n || to_track < 0 || to_track >= tr->n) return;
    trace_track *k = &tr->t[from_track];
    if (k->nf == k->capf) {
        int64_t cap = k->capf ? 2 * k->capf : 64;
        flow *f = realloc(k->f, (size_t)cap * sizeof *f);
        if (!f) return;
        k->f = f;
        k->capf = cap;
    }
    k->f[k->nf++] = (flow){to_track, name, t0, t1, tr->step};
}

int64_t po_trace_n_slices(const po_trace *tr) {
    int64_t n = 0;
    for (int i = 0; i < tr->n; i++)
        n += tr->t[i].n;
    return n;
}

/* JSON string body: names come from op tables and device ids, but escape anyway. */
static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

po_status po_trace_write(const po_trace *tr, const char *path) {
    po_atomic_file af;
    po_status st = po_atomic_begin(path, &af);
    if (st) return st;
    FILE *f = af.fp;
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    fprintf(f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"paropt\"}}");
    for (int i = 0; i < tr->n; i++) {
        fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":", i);
        put_str(f, tr->t[i].name);
        fprintf(f, "}}");
        fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":%d,\"args\":{\"sort_index\":%d}}",
                i, i);
    }
    int64_t flow_id = 0;
    for (int i = 0; i < tr->n; i++) {
        const trace_track *k = &tr->t[i];
        for (int64_t j = 0; j < k->n; j++) {
            const slice *s = &k->s[j];
            fprintf(f, ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"name\":", i);
            put_str(f, s->name);
            fprintf(f, ",\"cat\":");
            put_str(f, s->category);
            fprintf(f, ",\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"step\":%lld}}", (s->t0 - tr->origin) * 1e6,
                    (s->t1 - s->t0) * 1e6, (long long)s->step);
        }
        for (int64_t j = 0; j < k->nf; j++) {
            const flow *w = &k->f[j];
            flow_id++;
            fprintf(f, ",\n{\"ph\":\"s\",\"pid\":1,\"tid\":%d,\"id\":%lld,\"cat\":\"transfer\",\"name\":", i,
                    (long long)flow_id);
            put_str(f, w->name);
            fprintf(f, ",\"ts\":%.3f}", (w->t0 - tr->origin) * 1e6);
            fprintf(f, ",\n{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,\"tid\":%d,\"id\":%lld,\"cat\":\"transfer\",\"name\":",
                    w->to, (long long)flow_id);
            put_str(f, w->name);
            fprintf(f, ",\"ts\":%.3f}", (w->t1 - tr->origin) * 1e6);
        }
    }
    fprintf(f, "\n]}\n");
    return po_atomic_commit(&af);
}

/* What a training run records besides its loss and speed (train_monitor.h). */
#include "train_monitor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Resident memory of the process, bytes (0 when /proc is unreadable). */
static int64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages = 0, resident = 0;
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

/* Energy of the run: the meter for the workers' cores (RAPL where readable, else the model from
 * each core's busy time). NULL when no meter opens (the run goes on without energy figures). */
static po_meter *open_meter(const train_setup *s) {
    int cpus[256], n = 0;
    for (int i = 0; i < s->n_workers; i++)
        for (int c = s->workers[i].first_core; c < s->workers[i].first_core + s->workers[i].n_cores && n < 256; c++)
            cpus[n++] = c;
    po_meter_opts o = po_meter_opts_default();
    o.cpus = n ? cpus : NULL;
    o.n_cpus = n;
    po_meter *m = NULL;
    if (po_meter_new(&o, &m) || po_meter_begin(m)) {
        po_meter_free(m);
        po_clear_error();
        return NULL;
    }
    return m;
}

/* The trace of a run directory: one track per worker; a few steps recorded (trace_step). */
static po_trace *open_trace(const train_args *a, train_setup *s) {
    if (!a->out) return NULL;
    int n = s->n_workers > 0 ? s->n_workers : 1;
    po_trace *tr = NULL;
    if (po_trace_new(n, &tr)) {
        po_clear_error();
        return NULL;
    }
    for (int i = 0; i < n; i++)
        po_trace_set_track_name(tr, i, s->n_workers > 0 ? s->device_id[i] : "cpu (calling thread)");
    po_trainer_set_trace(s->trainer, tr);
    return tr;
}

/* Which steps the trace records: the first timed one, then logged steps, at most 8 in all, and
 * the last step. */
static bool trace_step(const train_args *a, const train_setup *s, int64_t done, int traced) {
    if (done == a->steps) return true;
    if (traced >= 7) return false;
    return done == s->start.step + a->warmup + 1 || done % a->log_every == 0;
}

/* One TensorBoard scalar (a write error stops the events, never the training). */
static void tb_scalar(train_setup *s, const char *tag, int64_t step, double v) {
    if (!s->events || !isfinite(v)) return;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    if (po_tfevents_scalar(s->events, tag, step, (double)t.tv_sec + (double)t.tv_nsec * 1e-9, (float)v)) {
        fprintf(stderr, "paropt: warning: TensorBoard events stop: %s\n", po_last_error());
        po_tfevents_close(s->events);
        s->events = NULL;
    }
}

void monitor_begin(const train_args *a, train_setup *s, train_monitor *m) {
    memset(m, 0, sizeof *m);
    s->trace = open_trace(a, s);
}

void monitor_start_energy(train_setup *s) { s->meter = open_meter(s); }

bool monitor_trace_step(const train_args *a, train_setup *s, train_monitor *m, int64_t step) {
    if (!s->trace || !trace_step(a, s, step, m->traced)) return false;
    po_trace_begin_step(s->trace, step);
    m->traced++;
    return true;
}

void monitor_trace_done(train_setup *s, double t0, double t1) {
    if (s->n_workers <= 1) po_trace_slice(s->trace, 0, "step", "step", t0, t1);
    po_trace_end_step(s->trace);
}

void monitor_timed_step(train_setup *s, train_monitor *m, double step_s) {
    m->step_s += step_s;
    for (int i = 0; i < s->n_workers && i < 64; i++) {
        po_worker_stats ws;
        if (!po_trainer_worker_stats(s->trainer, i, &ws)) m->compute_s[i] += ws.compute_s;
    }
}

void monitor_log_step(train_setup *s, train_monitor *m, json_t *o, int64_t step, float loss, double samples_per_s,
                      double step_ms) {
    json_object_set_new(o, "rss_bytes", json_integer(rss_bytes()));
    tb_scalar(s, "train/loss", step, loss);
    tb_scalar(s, "train/samples_per_s", step, samples_per_s);
    tb_scalar(s, "train/step_ms", step, step_ms);
    po_energy_reading er;
    if (s->meter && !po_meter_read(s->meter, &er) && er.seconds > m->last_t) {
        double w = (er.joules - m->last_j) / (er.seconds - m->last_t);
        /* Every energy figure carries its source, in the tag here. */
        char tag[128];
        snprintf(tag, sizeof tag, "energy/power_w [%s]", er.source);
        tb_scalar(s, tag, step, w);
        snprintf(tag, sizeof tag, "energy/energy_j [%s]", er.source);
        tb_scalar(s, tag, step, er.joules);
        json_object_set_new(o, "power_w", json_real(round(w * 100) / 100));
        json_object_set_new(o, "energy_j", json_real(round(er.joules * 1000) / 1000));
        json_object_set_new(o, "energy_source", json_string(er.source));
        m->last_j = er.joules;
        m->last_t = er.seconds;
    }
    if (s->events) po_tfevents_flush(s->events);
}

void monitor_log_eval(train_setup *s, int64_t step, const po_eval_result *e) {
    tb_scalar(s, "test/loss", step, e->loss);
    tb_scalar(s, "test/accuracy", step, e->accuracy);
    if (s->events) po_tfevents_flush(s->events);
}

int monitor_finish(const train_args *a, train_setup *s, train_monitor *m, double train_s, train_result *r) {
    po_energy_reading er;
    r->energy_j = NAN;
    if (s->meter && !po_meter_end(s->meter, &er)) {
        r->energy_j = er.joules;
        snprintf(r->energy_source, sizeof r->energy_source, "%s", er.source);
    }
    po_meter_free(s->meter);
    s->meter = NULL;
    int nw = s->n_workers > 0 ? s->n_workers : 1;
    for (int i = 0; i < nw && i < 64; i++)
        r->busy[i] = train_s > 0.0 ? (s->n_workers > 1 ? m->compute_s[i] : m->step_s) / train_s : 0.0;
    if (!s->trace) return CLI_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/trace.json", a->out);
    po_trainer_set_trace(s->trainer, NULL);
    po_status st = po_trace_write(s->trace, path);
    po_trace_free(s->trace);
    s->trace = NULL;
    if (st) {
        cli_error("--out: %s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* The training loop of paropt train: steps, progress, metrics, evaluation, checkpoints. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "run_dir.h"
#include "train_cmd.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void log_json(FILE *metrics, json_t *o) {
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (text) run_dir_log(metrics, text);
    free(text);
    json_decref(o);
}

/* "1:02:03" or "2:03". */
static void format_duration(double s, char *buf, size_t size) {
    long t = s > 0 && isfinite(s) ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* Per-op-type totals of a profiled run, largest first. */
static void print_profile(const po_graph *g, const po_exec *ex, double step_ms) {
    double ms[PO_OP_COUNT] = {0}, flops[PO_OP_COUNT] = {0};
    int calls[PO_OP_COUNT] = {0};
    double runs = (double)po_exec_profiled_runs(ex), total = 0.0;
    if (runs == 0) return;
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *n = po_graph_node(g, i);
        double s = po_exec_node_seconds(ex, n);
        po_op op = po_node_op(n);
        ms[op] += s * 1e3 / runs;
        flops[op] += po_node_cost(n).flops;
        calls[op] += s > 0.0;
        total += s * 1e3 / runs;
    }
    fprintf(stderr, "%-24s %6s %10s %6s %9s\n", "op", "nodes", "ms/step", "%", "GFLOP/s");
    for (;;) {
        int best = -1;
        for (int op = 0; op < PO_OP_COUNT; op++)
            if (calls[op] && (best < 0 || ms[op] > ms[best])) best = op;
        if (best < 0) break;
        double gf = ms[best] > 0.0 ? flops[best] / (ms[best] * 1e6) : 0.0;
        fprintf(stderr, "%-24s %6d %10.3f %5.1f%% %9.1f\n", po_op_name((po_op)best), calls[best], ms[best],
                100.0 * ms[best] / total, gf);
        calls[best] = 0;
    }
    fprintf(stderr, "%-24s %6s %10.3f (step %.3f ms; the rest is data loading and the loop)\n", "total", "", total,
            step_ms);
}

/* Each worker's device, rows, compute time and busy fraction of the last step. */
static json_t *worker_json(const train_setup *s, double step_s) {
    json_t *arr = json_array();
    for (int i = 0; i < s->n_workers; i++) {
        po_worker_stats ws;
        if (po_trainer_worker_stats(s->trainer, i, &ws)) continue;
        json_t *w = json_object();
        json_object_set_new(w, "device", json_string(s->device_id[i]));
        json_object_set_new(w, "rows", json_integer(ws.rows));
        json_object_set_new(w, "compute_ms", json_real(round(ws.compute_s * 1e6) / 1e3));
        json_object_set_new(w, "busy", json_real(step_s > 0 ? round(ws.compute_s / step_s * 1000) / 1000 : 0));
        json_array_append_new(arr, w);
    }
    return arr;
}

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

static int evaluate(const train_args *a, train_setup *s, int64_t step, int64_t epoch, train_result *r) {
    if (po_trainer_evaluate(s->trainer, s->test, a->eval_batch, &r->eval)) {
        cli_error("evaluation: %s", po_last_error());
        return CLI_FAIL;
    }
    r->evaluated = true;
    fprintf(stderr, "%sepoch %lld  step %lld  test loss %.4f  test accuracy %.4f\n", isatty(STDERR_FILENO) ? "\r" : "",
            (long long)epoch, (long long)step, r->eval.loss, r->eval.accuracy);
    json_t *o = json_object();
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "epoch", json_integer(epoch));
    json_object_set_new(o, "test_loss", json_real(r->eval.loss));
    json_object_set_new(o, "test_accuracy", json_real(r->eval.accuracy));
    log_json(s->metrics, o);
    tb_scalar(s, "test/loss", step, r->eval.loss);
    tb_scalar(s, "test/accuracy", step, r->eval.accuracy);
    if (s->events) po_tfevents_flush(s->events);
    return CLI_OK;
}

int train_loop(const train_args *a, train_setup *s, train_result *r) {
    int64_t bpe = po_loader_batches_per_epoch(s->loader), batch = s->model->batch;
    bool tty = isatty(STDERR_FILENO);
    double train_s = 0.0, last_draw = 0.0, window_s = 0.0;
    int64_t timed = 0, window = 0;
    float loss = NAN;
    int64_t rebalances = po_trainer_rebalances(s->trainer);
    int nw = s->n_workers > 0 ? s->n_workers : 1;
    double compute_s[64] = {0}, step_only_s = 0.0;
    s->trace = open_trace(a, s);
    po_trace *trace = s->trace;
    int traced = 0;
    double last_j = 0.0, last_t = 0.0;
    po_energy_reading er = {0.0, 0.0, 0.0, NULL};
    for (int64_t step = s->start.step; step < a->steps; step++) {
        for (int e = 0; e < s->n_slow_events; e++)
            if (s->slow_events[e].step == step + 1) {
                po_trainer_set_slowdown(s->trainer, s->slow_events[e].worker, s->slow_events[e].factor);
                fprintf(stderr, "%sstep %lld: %s now runs %gx slower (emulated)\n", tty ? "\n" : "",
                        (long long)step + 1, s->device_id[s->slow_events[e].worker], s->slow_events[e].factor);
            }
        bool timing = step - s->start.step >= a->warmup;
        if (timing && timed == 0) {
            po_exec_set_profiling(po_trainer_exec(s->trainer), a->profile);
            s->meter = open_meter(s);
        }
        bool tracing = trace && trace_step(a, s, step + 1, traced);
        if (tracing) po_trace_begin_step(trace, step + 1), traced++;
        double t0 = now_s();
        po_status st = po_loader_next(s->loader, po_trainer_input(s->trainer, 0), po_trainer_input(s->trainer, 1));
        double ts = now_s();
        if (!st) st = po_trainer_step(s->trainer, &loss);
        double t1 = now_s(), dt = t1 - t0;
        if (tracing) {
            if (s->n_workers <= 1) po_trace_slice(trace, 0, "step", "step", ts, t1);
            po_trace_end_step(trace);
        }
        if (st) {
            cli_error("step %lld: %s", (long long)step + 1, po_last_error());
            return CLI_FAIL;
        }
        if (!isfinite(loss)) {
            cli_error("step %lld: the loss is %g; lower --lr or check the data", (long long)step + 1, loss);
            return CLI_FAIL;
        }
        if (timing) {
            train_s += dt;
            timed++;
            step_only_s += t1 - ts;
            for (int i = 0; i < s->n_workers && i < 64; i++) {
                po_worker_stats ws;
                if (!po_trainer_worker_stats(s->trainer, i, &ws)) compute_s[i] += ws.compute_s;
            }
        }
        window_s += dt;
        window++;
        int64_t done = step + 1, epoch = done / bpe;
        double now = now_s();
        bool logged = done % a->log_every == 0 || done == a->steps;
        if (logged) {
            json_t *o = json_object();
            json_object_set_new(o, "step", json_integer(done));
            json_object_set_new(o, "epoch", json_real((double)done / (double)bpe));
            json_object_set_new(o, "loss", json_real(loss));
            json_object_set_new(o, "samples_per_s", json_real(round((double)(window * batch) / window_s * 10) / 10));
            json_object_set_new(o, "step_ms", json_real(round(window_s / (double)window * 1e6) / 1e3));
            json_object_set_new(o, "rss_bytes", json_integer(rss_bytes()));
            tb_scalar(s, "train/loss", done, loss);
            tb_scalar(s, "train/samples_per_s", done, (double)(window * batch) / window_s);
            tb_scalar(s, "train/step_ms", done, window_s / (double)window * 1e3);
            if (s->meter && !po_meter_read(s->meter, &er) && er.seconds > last_t) {
                /* Every energy figure carries its source, in the tag here. */
                char tag[128];
                snprintf(tag, sizeof tag, "energy/power_w [%s]", er.source);
                tb_scalar(s, tag, done, (er.joules - last_j) / (er.seconds - last_t));
                snprintf(tag, sizeof tag, "energy/energy_j [%s]", er.source);
                tb_scalar(s, tag, done, er.joules);
                json_object_set_new(o, "power_w", json_real(round((er.joules - last_j) / (er.seconds - last_t) * 100) / 100));
                json_object_set_new(o, "energy_j", json_real(round(er.joules * 1000) / 1000));
                json_object_set_new(o, "energy_source", json_string(er.source));
                last_j = er.joules;
                last_t = er.seconds;
            }
            if (s->n_workers > 1) json_object_set_new(o, "workers", worker_json(s, dt));
            log_json(s->metrics, o);
            if (s->events) po_tfevents_flush(s->events);
        }
        if (tty ? now - last_draw > 0.2 || done == a->steps : logged) {
            double per_step = window_s / (double)window;
            char eta[32];
            format_duration(per_step * (double)(a->steps - done), eta, sizeof eta);
            fprintf(stderr, "%sepoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f samples/s  ETA %s%s", tty ? "\r" : "",
                    (long long)(step / bpe + 1), (long long)((a->steps + bpe - 1) / bpe), (long long)done,
                    (long long)a->steps, loss, (double)batch / per_step, eta, tty ? "   " : "\n");
            last_draw = now;
        }
        if (logged) window_s = 0.0, window = 0;
        if (po_trainer_rebalances(s->trainer) != rebalances) {
            rebalances = po_trainer_rebalances(s->trainer);
            json_t *o = json_object(), *w = worker_json(s, dt);
            json_object_set_new(o, "step", json_integer(done));
            json_object_set_new(o, "event", json_string("rebalance"));
            json_object_set_new(o, "workers", w);
            char *text = json_dumps(w, JSON_COMPACT | JSON_REAL_PRECISION(6));
            fprintf(stderr, "%sstep %lld: re-split the batch by measured speed: %s\n", tty ? "\n" : "", (long long)done,
                    text ? text : "");
            free(text);
            log_json(s->metrics, o);
        }
        if (s->test && (done % bpe == 0 || done == a->steps)) {
            if (tty) fputc('\n', stderr);
            int rc = evaluate(a, s, done, epoch, r);
            if (rc) return rc;
        }
        if (a->out && ((a->checkpoint_every && done % a->checkpoint_every == 0) || done == a->steps)) {
            po_train_position pos = {done, 0, 0, a->seed};
            po_loader_position(s->loader, &pos.epoch, &pos.batch_in_epoch);
            if (run_dir_checkpoint(a->out, po_trainer_params(s->trainer), &pos, s->model->spec)) {
                cli_error("checkpoint: %s", po_last_error());
                return CLI_FAIL;
            }
        }
    }
    if (tty && !s->test) fputc('\n', stderr);
    r->energy_j = NAN;
    if (s->meter && !po_meter_end(s->meter, &er)) {
        r->energy_j = er.joules;
        snprintf(r->energy_source, sizeof r->energy_source, "%s", er.source);
    }
    po_meter_free(s->meter);
    s->meter = NULL;
    for (int i = 0; i < nw && i < 64; i++)
        r->busy[i] = train_s > 0.0 ? (s->n_workers > 1 ? compute_s[i] : step_only_s) / train_s : 0.0;
    if (trace) {
        char path[4096];
        snprintf(path, sizeof path, "%s/trace.json", a->out);
        po_trainer_set_trace(s->trainer, NULL);
        po_status tst = po_trace_write(trace, path);
        po_trace_free(trace);
        s->trace = NULL;
        if (tst) {
            cli_error("--out: %s", po_last_error());
            return CLI_FAIL;
        }
    }
    r->final_loss = loss;
    r->timed_steps = timed;
    r->ms_per_step = timed ? train_s * 1e3 / (double)timed : 0.0;
    r->samples_per_s = timed ? (double)(timed * batch) / train_s : 0.0;
    /* A data-parallel run profiles worker 0 (re-splitting the batch starts its profile anew). */
    if (a->profile) {
        const po_exec *ex = po_trainer_exec(s->trainer);
        print_profile(po_exec_graph(ex), ex, r->ms_per_step);
    }
    return CLI_OK;
}

/* The training loop of paropt train: steps, progress, metrics, evaluation, checkpoints. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "run_dir.h"
#include "train_cmd.h"
#include "train_monitor.h"
#include "train_varlen.h"

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

/* Each worker's device, rows, compute time and busy fraction of the last step; a pipeline
 * stage's layer range too ("0-2"). */
static json_t *worker_json(const train_setup *s, double step_s) {
    json_t *arr = json_array();
    for (int i = 0; i < s->n_workers; i++) {
        po_worker_stats ws;
        if (po_trainer_worker_stats(s->trainer, i, &ws)) continue;
        json_t *w = json_object();
        json_object_set_new(w, "device", json_string(s->device_id[i]));
        int first, last;
        if (po_trainer_worker_layers(s->trainer, i, &first, &last) == PO_OK) {
            char range[32];
            snprintf(range, sizeof range, "%d-%d", first, last);
            json_object_set_new(w, "layers", json_string(range));
        } else {
            po_clear_error();
        }
        json_object_set_new(w, "rows", json_integer(ws.rows));
        json_object_set_new(w, "compute_ms", json_real(round(ws.compute_s * 1e6) / 1e3));
        json_object_set_new(w, "busy", json_real(step_s > 0 ? round(ws.compute_s / step_s * 1000) / 1000 : 0));
        json_array_append_new(arr, w);
    }
    return arr;
}

static int evaluate(const train_args *a, train_setup *s, int64_t step, int64_t epoch, train_result *r) {
    int rc = s->varlen ? varlen_for_eval(a, s) : CLI_OK; /* --seq-lens: at the longest length */
    if (rc) return rc;
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
    monitor_log_eval(s, step, &r->eval);
    return CLI_OK;
}

int train_loop(const train_args *a, train_setup *s, train_result *r) {
    int64_t bpe = po_loader_batches_per_epoch(s->loader), batch = s->model->batch;
    bool tty = isatty(STDERR_FILENO);
    double train_s = 0.0, last_draw = 0.0, window_s = 0.0;
    int64_t timed = 0, window = 0;
    float loss = NAN;
    int64_t rebalances = po_trainer_rebalances(s->trainer);
    const po_trainer *counted = s->trainer; /* the trainer `rebalances` counts */
    train_monitor mon;
    monitor_begin(a, s, &mon);
    for (int64_t step = s->start.step; step < a->steps; step++) {
        for (int e = 0; e < s->n_slow_events; e++)
            if (s->slow_events[e].step == step + 1) {
                po_trainer_set_slowdown(s->trainer, s->slow_events[e].worker, s->slow_events[e].factor);
                fprintf(stderr, "%sstep %lld: %s now runs %gx slower (emulated)\n", tty ? "\n" : "",
                        (long long)step + 1, s->device_id[s->slow_events[e].worker], s->slow_events[e].factor);
            }
        bool timing = step - s->start.step >= a->warmup;
        if (s->varlen) { /* --seq-lens: this step's length's trainer, state carried over */
            int rc = varlen_step(a, s, step);
            if (rc) return rc;
        }
        if (s->trainer != counted) { /* another graph's trainer (--seq-lens): its own counts */
            counted = s->trainer;
            rebalances = po_trainer_rebalances(s->trainer);
            if (timed > 0) po_exec_set_profiling(po_trainer_exec(s->trainer), a->profile);
        }
        if (timing && timed == 0) {
            po_exec_set_profiling(po_trainer_exec(s->trainer), a->profile);
            monitor_start_energy(s);
        }
        bool tracing = monitor_trace_step(a, s, &mon, step + 1);
        double t0 = now_s();
        po_status st =
            s->varlen ? varlen_next_batch(s)
                      : po_loader_next(s->loader, po_trainer_input(s->trainer, 0), po_trainer_input(s->trainer, 1));
        double ts = now_s();
        if (!st) st = po_trainer_step(s->trainer, &loss);
        double t1 = now_s(), dt = t1 - t0;
        if (tracing) monitor_trace_done(s, ts, t1);
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
            monitor_timed_step(s, &mon, t1 - ts);
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
            if (s->varlen) json_object_set_new(o, "seq", json_integer(varlen_current(s)));
            json_object_set_new(o, "samples_per_s", json_real(round((double)(window * batch) / window_s * 10) / 10));
            json_object_set_new(o, "step_ms", json_real(round(window_s / (double)window * 1e6) / 1e3));
            monitor_log_step(s, &mon, o, done, loss, (double)(window * batch) / window_s,
                             window_s / (double)window * 1e3);
            if (s->n_workers > 1) json_object_set_new(o, "workers", worker_json(s, dt));
            log_json(s->metrics, o);
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
            int first, last;
            bool pipeline = po_trainer_worker_layers(s->trainer, 0, &first, &last) == PO_OK;
            po_clear_error();
            bool opsplit = s->planned && s->plan.strategy == PO_STRATEGY_OPSPLIT;
            fprintf(stderr, "%sstep %lld: %s by measured speed: %s\n", tty ? "\n" : "", (long long)done,
                    pipeline  ? "re-partitioned the pipeline"
                    : opsplit ? "re-shared the split products (rows: each device's share of the batch)"
                              : "re-split the batch",
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
    int rc = monitor_finish(a, s, &mon, train_s, r);
    if (rc) return rc;
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

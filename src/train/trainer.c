#include "paropt/train.h"

#include <math.h>
#include <stdlib.h>

#include "paropt/hw.h"
#include "paropt/trace.h"
#include "runtime/dp.h"
#include "runtime/hybrid.h"
#include "runtime/opsplit.h"
#include "runtime/pp.h"
#include "runtime/pp_rebalance.h"

struct po_trainer {
    po_model *m;
    po_params *params;
    po_exec *exec;
    po_tensor *inputs[2];
    /* Forward-only copy for evaluation, made on first use. */
    po_model *eval_model;
    po_exec *eval_exec;
    po_tensor *eval_inputs[2];
    po_dp *dp;   /* data parallel: workers own the graphs; params and exec are worker 0's */
    po_pp *pp;   /* pipeline parallel: params and exec are the master copies */
    po_ppr *ppr; /* re-partitions pp by measured speed (it may replace pp; params stay) */
    po_hy *hy;   /* hybrid: params and exec are lane 0's master copies */
    po_os *os;   /* operator split: runs exec (the one copy) with a GEMM team */
};

/* Tensors over an executor's input buffers for m's samples and targets. */
static po_status wrap_inputs(po_model *m, po_exec *ex, po_tensor **inputs) {
    po_node *in[2] = {m->x, m->y};
    po_status st = PO_OK;
    for (int i = 0; i < 2 && !st; i++)
        st = po_tensor_wrap(po_node_dtype(in[i]), po_node_shape(in[i]), po_exec_input_data(ex, in[i]), &inputs[i]);
    return st;
}

po_status po_trainer_new(po_model *m, const po_optim_opts *o, uint64_t seed, po_trainer **out) {
    *out = NULL;
    po_trainer *t = calloc(1, sizeof *t);
    if (!t) return po_fail(PO_ERR_NO_MEMORY, "out of memory creating a trainer");
    t->m = m;
    po_status st = po_graph_backward(m->graph, m->loss);
    if (!st) st = po_graph_add_optimizer(m->graph, o);
    if (st) st = po_fail(st, "%s", po_graph_error(m->graph));
    if (!st) st = po_params_new(m->graph, &t->params);
    if (!st) {
        po_params_init(t->params, seed);
        st = po_exec_new(m->graph, t->params, &t->exec);
    }
    if (!st) st = wrap_inputs(m, t->exec, t->inputs);
    if (st) {
        po_trainer_free(t);
        return st;
    }
    *out = t;
    return PO_OK;
}

static void free_eval(po_trainer *t) {
    po_tensor_free(t->eval_inputs[0]);
    po_tensor_free(t->eval_inputs[1]);
    po_exec_free(t->eval_exec);
    po_model_free(t->eval_model);
    t->eval_inputs[0] = t->eval_inputs[1] = NULL;
    t->eval_exec = NULL;
    t->eval_model = NULL;
}

void po_trainer_free(po_trainer *t) {
    if (!t) return;
    free_eval(t);
    po_tensor_free(t->inputs[0]);
    po_tensor_free(t->inputs[1]);
    if (t->dp) {
        po__dp_free(t->dp);
    } else if (t->pp) {
        po__ppr_free(t->ppr);
        po__pp_free(t->pp);
    } else if (t->hy) {
        po__hy_free(t->hy);
    } else {
        po__os_free(t->os); /* its threads stop before the executor they run goes */
        po_exec_free(t->exec);
        po_params_free(t->params);
    }
    free(t);
}

/* Input buffers for the whole batch, for trainers whose workers copy their rows out of them. */
static po_status stage_batch(po_trainer *t) {
    po_status st = po_tensor_new(po_node_dtype(t->m->x), po_node_shape(t->m->x), &t->inputs[0]);
    if (!st) st = po_tensor_new(po_node_dtype(t->m->y), po_node_shape(t->m->y), &t->inputs[1]);
    return st;
}

/* The start of the engine-backed constructors (data parallel, pipeline, hybrid). */
static po_status new_shell(po_model *m, const po_optim_opts *o, po_trainer **t) {
    po_status st = po_optim_opts_check(o);
    if (st) return st;
    *t = calloc(1, sizeof **t);
    if (!*t) return po_fail(PO_ERR_NO_MEMORY, "out of memory creating a trainer");
    (*t)->m = m;
    return PO_OK;
}

/* Their end: the engine's parameters and whole-batch input buffers (the engine's threads copy
 * their rows out of them), or, when st says the engine failed, the trainer freed. */
static po_status adopt_engine(po_trainer *t, po_status st, po_trainer **out) {
    if (!st) {
        t->params = t->dp ? po__dp_params(t->dp) : t->pp ? po__pp_params(t->pp) : po__hy_params(t->hy);
        st = stage_batch(t);
    }
    if (st) {
        po_trainer_free(t);
        return st;
    }
    *out = t;
    return PO_OK;
}

po_status po_trainer_new_ex(po_model *m, const po_optim_opts *o, uint64_t seed, const po_trainer_opts *opts,
                            po_trainer **out) {
    if (!opts || opts->n_workers <= 1) return po_trainer_new(m, o, seed, out);
    *out = NULL;
    po_trainer *t;
    po_status st = new_shell(m, o, &t);
    if (st) return st;
    return adopt_engine(t, po__dp_new(m->spec, m->batch, o, seed, opts, &t->dp), out);
}

po_status po_trainer_new_pipeline(po_model *m, const po_optim_opts *o, uint64_t seed, const po_pipeline_opts *opts,
                                  po_trainer **out) {
    *out = NULL;
    po_trainer *t;
    po_status st = new_shell(m, o, &t);
    if (st) return st;
    st = po__pp_new(m->spec, m->batch, o, seed, opts, &t->pp);
    if (!st && opts->rebalance && opts->n_stages > 1) st = po__ppr_new(m->spec, m->batch, o, opts, t->pp, &t->ppr);
    return adopt_engine(t, st, out);
}

po_status po_trainer_new_hybrid(po_model *m, const po_optim_opts *o, uint64_t seed, const po_hybrid_opts *opts,
                                po_trainer **out) {
    *out = NULL;
    po_trainer *t;
    po_status st = new_shell(m, o, &t);
    if (st) return st;
    return adopt_engine(t, po__hy_new(m->spec, m->batch, o, seed, opts, &t->hy), out);
}

po_status po_trainer_new_opsplit(po_model *m, const po_optim_opts *o, uint64_t seed, const po_worker_spec *workers,
                                 int n, po_trainer **out) {
    *out = NULL;
    if (n < 1 || !workers) return po_fail(PO_ERR_INVALID_ARG, "operator split needs at least one worker");
    po_status st = po_trainer_new(m, o, seed, out);
    if (!st) st = po__os_new((*out)->exec, workers, n, &(*out)->os);
    if (st) {
        po_trainer_free(*out);
        *out = NULL;
    }
    return st;
}

po_os *po__trainer_os(po_trainer *t) { return t->os; }
po_pp *po__trainer_pp(po_trainer *t) { return t->pp; }

po_params *po_trainer_params(po_trainer *t) { return t->params; }
int64_t po_trainer_worker_rows(const po_trainer *t, int i) {
    if (t->pp) return i >= 0 && i < po__pp_stages(t->pp) ? po__pp_rows(t->pp) : 0;
    if (t->hy) return po__hy_rows(t->hy, i);
    if (t->os) { /* its share of each split product, in batch rows */
        po_worker_stats ws;
        return po_trainer_worker_stats(t, i, &ws) ? 0 : ws.rows;
    }
    return t->dp ? po__dp_rows(t->dp, i) : 0;
}
int po_trainer_n_workers(const po_trainer *t) {
    return t->dp   ? po__dp_workers(t->dp)
           : t->pp ? po__pp_stages(t->pp)
           : t->hy ? po__hy_workers(t->hy)
           : t->os ? po__os_members(t->os)
                   : 1;
}
int64_t po_trainer_rebalances(const po_trainer *t) {
    return t->dp    ? po__dp_rebalances(t->dp)
           : t->ppr ? po__ppr_rebalances(t->ppr)
           : t->os  ? po__os_rebalances(t->os)
                    : 0;
}

po_status po_trainer_worker_layers(const po_trainer *t, int i, int *first_layer, int *last_layer) {
    if (!t->pp) return po_fail(PO_ERR_INVALID_ARG, "not a pipeline: workers have no layer ranges");
    if (i < 0 || i >= po__pp_stages(t->pp)) return po_fail(PO_ERR_INVALID_ARG, "no pipeline stage %d", i);
    po__pp_stage_layers(t->pp, i, first_layer, last_layer);
    return PO_OK;
}

po_status po_trainer_worker_stats(const po_trainer *t, int i, po_worker_stats *out) {
    if (t->pp) {
        if (i < 0 || i >= po__pp_stages(t->pp)) return po_fail(PO_ERR_INVALID_ARG, "no pipeline stage %d", i);
        po__pp_stats(t->pp, i, out);
        return PO_OK;
    }
    if (t->hy) return po__hy_stats(t->hy, i, out);
    if (t->os) {
        if (i < 0 || i >= po__os_members(t->os)) return po_fail(PO_ERR_INVALID_ARG, "no worker %d", i);
        po__os_stats(t->os, i, out);
        out->rows = llround(out->share * (double)t->m->batch);
        return PO_OK;
    }
    if (!t->dp || i < 0 || i >= po__dp_workers(t->dp)) return po_fail(PO_ERR_INVALID_ARG, "no worker %d", i);
    po__dp_stats(t->dp, i, out);
    return PO_OK;
}

po_status po_trainer_set_slowdown(po_trainer *t, int worker, float factor) {
    if (t->pp) return po__pp_set_slowdown(t->pp, worker, factor);
    if (t->hy) return po__hy_set_slowdown(t->hy, worker, factor);
    if (t->os) return po__os_set_slowdown(t->os, worker, factor);
    if (!t->dp)
        return worker == 0 ? po_exec_set_slowdown(t->exec, factor)
                           : po_fail(PO_ERR_INVALID_ARG, "no worker %d", worker);
    return po__dp_set_slowdown(t->dp, worker, factor);
}
void po_trainer_set_trace(po_trainer *t, po_trace *tr) {
    if (t->dp)
        po__dp_set_trace(t->dp, tr);
    else if (t->pp)
        po__pp_set_trace(t->pp, tr);
    else if (t->hy)
        po__hy_set_trace(t->hy, tr);
    else if (t->os)
        po__os_set_trace(t->os, tr);
    else
        po_exec_set_trace(t->exec, tr, 0);
}

/* A data-parallel trainer rebuilds its workers' executors when it re-splits the batch, a
 * pipeline its stages' when it re-partitions. */
po_exec *po_trainer_exec(po_trainer *t) {
    return t->dp ? po__dp_exec(t->dp) : t->pp ? po__pp_exec(t->pp) : t->hy ? po__hy_exec(t->hy) : t->exec;
}
po_tensor *po_trainer_input(po_trainer *t, int which) { return which == 0 || which == 1 ? t->inputs[which] : NULL; }

po_status po_trainer_step(po_trainer *t, float *loss) {
    if (t->dp) return po__dp_step(t->dp, t->inputs[0], t->inputs[1], loss);
    if (t->pp) {
        po_status st = po__pp_step(t->pp, t->inputs[0], t->inputs[1], loss);
        return !st && t->ppr ? po__ppr_after_step(t->ppr, &t->pp) : st;
    }
    if (t->hy) return po__hy_step(t->hy, t->inputs[0], t->inputs[1], loss);
    po_status st = t->os ? po__os_step(t->os) : po_exec_run(t->exec);
    if (!st && loss) *loss = *(const float *)po_exec_output(t->exec, t->m->loss);
    return st;
}

static po_status prepare_eval(po_trainer *t, int64_t batch) {
    if (t->eval_model && t->eval_model->batch == batch) return PO_OK;
    free_eval(t);
    po_status st = po_model_build(t->m->spec, batch, &t->eval_model);
    if (!st) st = po_exec_new(t->eval_model->graph, t->params, &t->eval_exec);
    if (!st) st = wrap_inputs(t->eval_model, t->eval_exec, t->eval_inputs);
    if (st) free_eval(t);
    return st;
}

/* Adds the cross-entropy and correctness of `rows` rows of logits[.., C] to the sums. */
static void score(const float *logits, const int64_t *targets, int64_t rows, int64_t classes, double *loss,
                  int64_t *correct) {
    for (int64_t r = 0; r < rows; r++) {
        const float *l = logits + r * classes;
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (l[c] > l[best]) best = c;
        double sum = 0.0;
        for (int64_t c = 0; c < classes; c++)
            sum += exp((double)l[c] - (double)l[best]);
        *loss += log(sum) + (double)l[best] - (double)l[targets[r]];
        *correct += best == targets[r];
    }
}

po_status po_trainer_evaluate(po_trainer *t, const po_dataset *d, int64_t batch, po_eval_result *out) {
    if (batch < 1) return po_fail(PO_ERR_INVALID_ARG, "evaluation batch must be positive");
    po_status st = po_dataset_check(d, t->m);
    if (!st) st = prepare_eval(t, batch);
    po_loader *l = NULL;
    if (!st) st = po_loader_new_eval(d, batch, &l);
    po_shape ls = po_node_shape(t->eval_model ? t->eval_model->logits : t->m->logits);
    int64_t classes = ls.dim[ls.ndim - 1], per_sample = po_shape_numel(&ls) / (classes * batch);
    double loss = 0.0;
    int64_t correct = 0, count = 0;
    for (int64_t b = 0; !st && b < po_loader_batches_per_epoch(l); b++) {
        st = po_loader_next(l, t->eval_inputs[0], t->eval_inputs[1]);
        if (!st) st = po_exec_run(t->eval_exec);
        if (st) break;
        int64_t rows = po_loader_rows(l) * per_sample;
        score(po_exec_output(t->eval_exec, t->eval_model->logits), t->eval_inputs[1]->data, rows, classes, &loss,
              &correct);
        count += rows;
    }
    po_loader_free(l);
    if (st) return st;
    out->loss = loss / (double)count;
    out->accuracy = (double)correct / (double)count;
    out->targets = count;
    return PO_OK;
}

po_status po_trainer_new_parallel(po_model *m, const po_optim_opts *o, uint64_t seed, const char *devices,
                                  po_trainer **out) {
    *out = NULL;
    po_machine *mach;
    po_status st = po_machine_discover(NULL, &mach);
    if (st) return st;
    po_device_list list = {0, NULL};
    st = po_devices_parse_trainable(mach, devices ? devices : "auto", &list);
    po_machine_free(mach);
    if (st) return st;
    po_worker_spec workers[PO__DP_MAX_WORKERS];
    int n = 0;
    for (int i = 0; i < list.n && !st; i++) {
        if (list.dev[i].kind != PO_DEVICE_CPU)
            st = po_fail(PO_ERR_UNSUPPORTED, "%s: the runtime trains on CPU devices only so far", list.dev[i].id);
        else if (n == PO__DP_MAX_WORKERS)
            st = po_fail(PO_ERR_UNSUPPORTED, "at most %d devices", PO__DP_MAX_WORKERS);
        else
            workers[n++] = (po_worker_spec){list.dev[i].first_core, list.dev[i].n_cores, 0.0};
    }
    po_device_list_free(&list);
    if (st) return st;
    po_trainer_opts opts = {n, workers, true};
    return po_trainer_new_ex(m, o, seed, &opts, out);
}

/* paropt train --seq-lens: one trainer per sequence length, met in turn (train_varlen.h). */
#include "train_varlen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_LENS 64

/* One graph: the model at one length, its trainer and, with --devices, its plan. The setup's
 * fields (s->trainer, s->plan, s->planner, s->workload, the workers) borrow the current graph's;
 * the graphs own them. */
typedef struct graph {
    int64_t len;
    po_model *model;
    po_trainer *trainer;
    bool planned;
    po_plan plan;
    po_planner *planner;
    const po_workload *workload;
    int n_workers;
    po_worker_spec workers[64];
    char device_id[64][32];
} graph;

struct train_varlen {
    char spec[512];   /* the longest length's resolved spec; ",seq=L" appended gives length L's */
    int64_t window;   /* the data's sequence length: the longest length */
    graph *g;         /* graphs met so far, in the order met (at most one per distinct length) */
    int n;            /* graphs in g */
    int cur;          /* index of the graph s->trainer belongs to; -1 before the first */
    int64_t last_len; /* length of the previous training step; 0 before the first */
    po_tensor *x, *y; /* the loader's batch, [B, window] */
    /* The workers resolve_devices made (--devices, --shares): what each graph is planned from. */
    int n_workers0;
    po_worker_spec workers0[64];
    char device_id0[64][32];
};

bool varlen_parse(const char *text, train_args *a) {
    a->n_seq_lens = 0;
    const char *p = text;
    do {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end && *end != ',') || errno || v < 1 || v > (1LL << 30)) {
            cli_error("--seq-lens: expected positive integers separated by commas, e.g. 32,64,128; got \"%s\"", text);
            return false;
        }
        if (a->n_seq_lens == MAX_LENS) {
            cli_error("--seq-lens: at most %d lengths", MAX_LENS);
            return false;
        }
        a->seq_len[a->n_seq_lens++] = v;
        p = *end ? end + 1 : end;
    } while (*p || p[-1] == ',');
    return true;
}

static int64_t longest(const train_args *a) {
    int64_t m = 0;
    for (int i = 0; i < a->n_seq_lens; i++)
        m = a->seq_len[i] > m ? a->seq_len[i] : m;
    return m;
}

/* Whether the space-separated "key=default ..." list names key. */
static bool has_key(const char *keys, const char *key) {
    size_t n = strlen(key);
    for (const char *p = keys; p && *p;) {
        if (strncmp(p, key, n) == 0 && p[n] == '=') return true;
        p = strchr(p, ' ');
        if (p) p++;
    }
    return false;
}

int varlen_model_spec(const train_args *a, char *spec, size_t size) {
    const char *colon = strchr(a->model, ':');
    char name[64];
    snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - a->model) : (int)strlen(a->model), a->model);
    const char *keys = po_model_keys(name);
    if (!keys) {
        po_model *m = NULL;
        po_model_build(a->model, 1, &m); /* fails: its message names the models there are */
        po_model_free(m);
        cli_error("--model: %s", po_last_error());
        return CLI_USAGE;
    }
    if (!has_key(keys, "seq") || !has_key(keys, "max_seq")) {
        cli_error("--seq-lens: model %s takes no sequences of varying length (no seq and max_seq keys; tiny_gpt does)",
                  name);
        return CLI_USAGE;
    }
    /* The spec's own max_seq, if it sets one: built at seq=1, the config names max_seq only then. */
    char probe[1024];
    snprintf(probe, sizeof probe, "%s%cseq=1", a->model, colon ? ',' : ':');
    po_model *m = NULL;
    if (po_model_build(probe, 1, &m)) {
        cli_error("--model: %s", po_last_error());
        return CLI_USAGE;
    }
    json_t *config = json_loads(m->config, 0, NULL);
    json_t *ms = json_object_get(config, "max_seq");
    int64_t top = longest(a), max_seq = json_is_integer(ms) ? json_integer_value(ms) : top;
    json_decref(config);
    po_model_free(m);
    if (max_seq < top) {
        cli_error("--seq-lens: %lld exceeds the model's max_seq=%lld", (long long)top, (long long)max_seq);
        return CLI_USAGE;
    }
    int n = snprintf(spec, size, "%s%cseq=%lld,max_seq=%lld", a->model, colon ? ',' : ':', (long long)top,
                     (long long)max_seq);
    if (n < 0 || (size_t)n >= size) {
        cli_error("--model: spec too long");
        return CLI_USAGE;
    }
    return CLI_OK;
}

int varlen_check_data(const train_args *a, const po_dataset *train) {
    po_shape sh = po_dataset_sample_shape(train);
    if (po_dataset_sample_dtype(train) != PO_I64 || sh.ndim != 1) return CLI_OK; /* the model says why */
    int64_t w = sh.dim[0], top = longest(a);
    for (int i = 0; i < a->n_seq_lens; i++)
        if (a->seq_len[i] > w) {
            cli_error("--seq-lens: %lld is longer than the data's sequences (%lld tokens)", (long long)a->seq_len[i],
                      (long long)w);
            return CLI_USAGE;
        }
    if (top < w) {
        cli_error("--seq-lens: the longest length, %lld, must be the data's sequence length, %lld (evaluation runs at "
                  "it)",
                  (long long)top, (long long)w);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Parameters and optimizer state are one logical copy, held by the trainer that ran last: a
 * switch copies the values, the optimizer state and the step count from the previous trainer to
 * the next. Sharing the storage instead would need a trainer built over existing po_params
 * (every library trainer allocates its own, and data-parallel and pipeline trainers build their
 * workers' storage inside); the copy costs (1 + state slots) x the parameter bytes per switch,
 * small next to a step. Gradients are not carried: every step writes them anew. */
static void carry_state(po_trainer *from, po_trainer *to) {
    po_params *a = po_trainer_params(from), *b = po_trainer_params(to);
    size_t n = po_params_total(a);
    memcpy(po_params_values(b), po_params_values(a), n * sizeof(float));
    if (po_params_state(a))
        memcpy(po_params_state(b), po_params_state(a), n * (size_t)po_params_state_slots(a) * sizeof(float));
    po_exec_set_steps(po_trainer_exec(to), po_exec_steps(po_trainer_exec(from)));
}

/* Whether two trainers' parameters have one layout (names, sizes, offsets, optimizer state), so
 * carry_state may copy whole buffers. */
static bool same_layout(po_trainer *t1, po_trainer *t2) {
    po_params *a = po_trainer_params(t1), *b = po_trainer_params(t2);
    if (po_params_count(a) != po_params_count(b) || po_params_total(a) != po_params_total(b) ||
        po_params_state_slots(a) != po_params_state_slots(b) || !po_params_state(a) != !po_params_state(b))
        return false;
    for (int i = 0; i < po_params_count(a); i++) {
        const po_param_info *x = po_params_info(a, i), *y = po_params_info(b, i);
        if (strcmp(x->name, y->name) || x->numel != y->numel || x->offset != y->offset) return false;
    }
    return true;
}

/* The setup's fields borrow graph g's trainer, plan and workers. */
static void point(train_setup *s, const graph *g) {
    s->trainer = g->trainer;
    if (!g->planned) return;
    s->planned = true;
    s->plan = g->plan;
    s->planner = g->planner;
    s->workload = g->workload;
    s->n_workers = g->n_workers;
    memcpy(s->workers, g->workers, sizeof s->workers);
    memcpy(s->device_id, g->device_id, sizeof s->device_id);
    train_plan_pin(s);
}

static int find(const train_varlen *v, int64_t len) {
    for (int i = 0; i < v->n; i++)
        if (v->g[i].len == len) return i;
    return -1;
}

/* Plans length g->len's graph with the setup's devices: train_plan_resolve on g's model with
 * the workers resolve_devices made; what it makes moves into g. Counts a plan-cache hit or miss.
 * Exit code. */
static int plan_graph(const train_args *a, train_setup *s, graph *g) {
    train_varlen *v = s->varlen;
    train_args named = *a;
    if (!named.plan) named.plan = v->n_workers0 > 1 ? "dp" : "single";
    po_model *base = s->model;
    int64_t hits = s->plan_hits;
    s->model = g->model;
    s->planner = NULL;
    s->workload = NULL;
    memset(&s->plan, 0, sizeof s->plan);
    s->planned = false;
    s->n_workers = v->n_workers0;
    memcpy(s->workers, v->workers0, sizeof s->workers);
    memcpy(s->device_id, v->device_id0, sizeof s->device_id);
    s->plan_quiet = v->n > 1; /* the first graph's plan is printed in full, later ones in a line */
    int rc = train_plan_resolve(&named, s);
    s->model = base;
    g->planner = s->planner;
    g->plan = s->plan;
    g->workload = s->workload;
    g->planned = s->planned;
    g->n_workers = s->n_workers;
    memcpy(g->workers, s->workers, sizeof g->workers);
    memcpy(g->device_id, s->device_id, sizeof g->device_id);
    s->planner = NULL; /* g owns them; point() lends the current graph's again */
    s->workload = NULL;
    memset(&s->plan, 0, sizeof s->plan);
    s->planned = false;
    if (rc) return rc;
    fprintf(stderr, "graph seq=%lld: planned (%s), cache %s\n", (long long)g->len,
            po_plan_summary(&g->plan, g->workload, (char[256]){0}, 256), s->plan_hits > hits ? "hit" : "miss");
    return CLI_OK;
}

/* Builds the graph of length len, its plan (with devices) and its trainer; *index gets its
 * place. The setup's fields are left borrowing nothing new: the caller points them. Exit code. */
static int meet(const train_args *a, train_setup *s, int64_t len, int *index) {
    train_varlen *v = s->varlen;
    graph *g = &v->g[v->n];
    memset(g, 0, sizeof *g);
    g->len = len;
    char spec[640];
    snprintf(spec, sizeof spec, "%s,seq=%lld", v->spec, (long long)len);
    if (po_model_build(spec, s->model->batch, &g->model)) {
        cli_error("--seq-lens: %s", po_last_error());
        return CLI_FAIL;
    }
    v->n++; /* owned from here on: varlen_free frees it */
    if (a->devices) {
        int rc = plan_graph(a, s, g);
        if (v->cur >= 0) point(s, &v->g[v->cur]);
        if (rc) return rc;
    } else {
        s->plan_misses++; /* no plan to look up: the graph is built */
        fprintf(stderr, "graph seq=%lld: new trainer on the calling thread\n", (long long)len);
    }
    /* With devices the run is planned; shares follow measured speed unless the user fixed them. */
    po_status st = g->planned
                       ? po_trainer_new_plan(g->model, &a->optim, a->seed, &g->plan, &s->devs, !a->shares, &g->trainer)
                       : po_trainer_new(g->model, &a->optim, a->seed, &g->trainer);
    if (st) {
        cli_error("--seq-lens: seq=%lld: %s", (long long)len, po_last_error());
        return CLI_FAIL;
    }
    if (v->n > 1 && !same_layout(v->g[0].trainer, g->trainer)) {
        cli_error("--seq-lens: the seq=%lld graph's parameters differ from the seq=%lld graph's", (long long)len,
                  (long long)v->g[0].len);
        return CLI_FAIL;
    }
    *index = v->n - 1;
    return CLI_OK;
}

/* Makes graph idx's trainer s->trainer, carrying the state over from the current one. */
static void switch_to(train_setup *s, int idx) {
    train_varlen *v = s->varlen;
    if (idx == v->cur) return;
    graph *from = &v->g[v->cur], *to = &v->g[idx];
    carry_state(from->trainer, to->trainer);
    if (s->trace) {
        po_trainer_set_trace(from->trainer, NULL);
        po_trainer_set_trace(to->trainer, s->trace);
    }
    point(s, to);
    v->cur = idx;
}

int varlen_new(const train_args *a, train_setup *s) {
    train_varlen *v = calloc(1, sizeof *v);
    if (v) v->g = calloc((size_t)a->n_seq_lens, sizeof *v->g);
    if (!v || !v->g) {
        free(v);
        cli_error("out of memory");
        return CLI_FAIL;
    }
    s->varlen = v;
    v->cur = -1;
    snprintf(v->spec, sizeof v->spec, "%s", s->model->spec);
    v->window = po_node_shape(s->model->x).dim[1];
    int64_t b = s->model->batch;
    if (po_tensor_new(PO_I64, PO_SHAPE(b, v->window), &v->x) || po_tensor_new(PO_I64, PO_SHAPE(b, v->window), &v->y)) {
        cli_error("%s", po_last_error());
        return CLI_FAIL;
    }
    v->n_workers0 = s->n_workers;
    memcpy(v->workers0, s->workers, sizeof v->workers0);
    memcpy(v->device_id0, s->device_id, sizeof v->device_id0);
    int idx, rc = meet(a, s, a->seq_len[0], &idx);
    if (rc) return rc;
    point(s, &v->g[idx]);
    v->cur = idx;
    return CLI_OK;
}

int varlen_step(const train_args *a, train_setup *s, int64_t step) {
    train_varlen *v = s->varlen;
    int64_t len = a->seq_len[step % a->n_seq_lens];
    int idx = find(v, len);
    if (idx < 0) {
        int rc = meet(a, s, len, &idx);
        if (rc) return rc;
    } else if (v->last_len && len != v->last_len) {
        s->plan_hits++; /* a graph met before: its kept trainer runs the plan made then */
    }
    v->last_len = len;
    switch_to(s, idx);
    return CLI_OK;
}

int varlen_for_eval(const train_args *a, train_setup *s) {
    train_varlen *v = s->varlen;
    int idx = find(v, v->window);
    if (idx < 0) { /* evaluation before the loop met the longest length */
        int rc = meet(a, s, v->window, &idx);
        if (rc) return rc;
    }
    switch_to(s, idx);
    return CLI_OK;
}

po_status varlen_next_batch(train_setup *s) {
    train_varlen *v = s->varlen;
    po_status st = po_loader_next(s->loader, v->x, v->y);
    if (st) return st;
    int64_t len = v->g[v->cur].len, rows = v->x->shape.dim[0];
    const po_tensor *src[2] = {v->x, v->y};
    for (int k = 0; k < 2; k++) { /* each row's first len tokens */
        const int64_t *from = src[k]->data;
        int64_t *to = po_trainer_input(s->trainer, k)->data;
        for (int64_t r = 0; r < rows; r++)
            memcpy(to + r * len, from + r * v->window, (size_t)len * sizeof *to);
    }
    return PO_OK;
}

int64_t varlen_current(const train_setup *s) { return s->varlen->g[s->varlen->cur].len; }

void varlen_summary(const train_args *a, const train_setup *s, json_t *o) {
    json_t *lens = json_array();
    for (int i = 0; i < a->n_seq_lens; i++)
        json_array_append_new(lens, json_integer(a->seq_len[i]));
    json_object_set_new(o, "seq_lens", lens);
    json_object_set_new(o, "graphs", json_integer(s->varlen ? s->varlen->n : 1));
    const train_varlen *v = s->varlen;
    if (!v || !v->n || !v->g[0].planned) return;
    /* "plan" is the last graph's; each graph's plan is listed here, and the run's prediction is
     * the mean over its timed steps of each step's graph's predicted step. */
    json_t *plans = json_array();
    for (int i = 0; i < v->n; i++) {
        json_t *g = json_object();
        char sum[256];
        json_object_set_new(g, "seq", json_integer(v->g[i].len));
        json_object_set_new(g, "plan", json_string(po_plan_summary(&v->g[i].plan, v->g[i].workload, sum, sizeof sum)));
        json_object_set_new(g, "predicted_step_ms", json_real(round(v->g[i].plan.predicted.step_ms * 1e3) / 1e3));
        json_array_append_new(plans, g);
    }
    json_object_set_new(o, "graph_plans", plans);
    int64_t lo = s->start.step + a->warmup, n = a->steps > lo ? a->steps - lo : 0, cycles = n / a->n_seq_lens;
    double total = 0.0;
    for (int j = 0; j < a->n_seq_lens; j++) { /* steps lo .. steps-1: whole cycles, then the rest */
        int i = find(v, a->seq_len[(lo + j) % a->n_seq_lens]);
        double ms = i >= 0 ? v->g[i].plan.predicted.step_ms : 0.0;
        total += ms * (double)(cycles + (j < n % a->n_seq_lens));
    }
    double pred = n ? total / (double)n : 0.0, measured = json_number_value(json_object_get(o, "measured_step_ms"));
    json_object_set_new(o, "predicted_step_ms", pred > 0.0 ? json_real(round(pred * 1e3) / 1e3) : json_null());
    json_object_set_new(o, "prediction_error",
                        pred > 0.0 && measured > 0.0 ? json_real(round((measured / pred - 1.0) * 1e4) / 1e4)
                                                     : json_null());
}

void varlen_free(train_setup *s) {
    train_varlen *v = s->varlen;
    if (!v) return;
    if (s->trainer) po_trainer_set_trace(s->trainer, NULL);
    for (int i = 0; i < v->n; i++) {
        po_trainer_free(v->g[i].trainer);
        po_model_free(v->g[i].model);
        po_plan_free(&v->g[i].plan);
        po_planner_free(v->g[i].planner);
    }
    po_tensor_free(v->x);
    po_tensor_free(v->y);
    free(v->g);
    free(v);
    s->varlen = NULL;
    s->trainer = NULL;
    s->planner = NULL;
    s->workload = NULL;
    s->planned = false;
    memset(&s->plan, 0, sizeof s->plan);
}

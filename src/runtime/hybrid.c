#include "runtime/hybrid.h"

#include "paropt/trace.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/optim_split.h"
#include "runtime/pp.h"

#define MAX_LANES 64

/* The update after the backward pass runs on the workers, stage by stage: the g workers of
 * stage s (one per lane) wait for each other, then each averages a stretch of stage s's
 * gradients across the lanes, waits again, and applies a stretch of stage s's optimizer
 * updates, in proportion to the lanes' rows (runtime/optim_split.h). A stage whose backward pass
 * ends early (the last, under 1F1B) updates while the others still compute. */
typedef struct stage_update {
    pthread_barrier_t barrier; /* the stage's g workers */
    atomic_int failed;         /* a lane failed this step: nobody updates */
    po__opt_piece *avg;        /* gradient stretches: .node is a parameter index */
    int *avg_first;            /* lane r averages avg[avg_first[r] .. avg_first[r + 1]) */
    po__opt_piece *opt;        /* optimizer stretches (po__optim_split_exec) */
    int *opt_first;
} stage_update;

typedef struct lane_ctx {
    struct po_hy *hy;
    int r;
} lane_ctx;

struct po_hy {
    int k, g; /* stages, lanes (replicas per stage) */
    int64_t batch;
    int64_t rows[MAX_LANES], first[MAX_LANES]; /* each lane's slice of the batch */
    double weight[MAX_LANES];                  /* rows / batch */
    po_pp *lane[MAX_LANES];
    po_tensor *x[MAX_LANES], *y[MAX_LANES]; /* views of each lane's slice, re-pointed each step */
    lane_ctx ctx[MAX_LANES];
    stage_update up[PO__PP_MAX_STAGES];
    int barriers_made;
    po_trace *trace;
};

/* Lane rows in whole micro-batches, in proportion to the shares (even when NULL), rounded so
 * they add up to the batch, the leftovers to the last lane. */
static po_status split_lanes(po_hy *hy, const po_hybrid_opts *opts) {
    int m = opts->pipeline.micro_batches, g = hy->g;
    int64_t units = hy->batch / m, given = 0;
    double total = 0.0;
    for (int r = 0; opts->shares && r < g; r++) {
        if (!(opts->shares[r] > 0.0))
            return po_fail(PO_ERR_INVALID_ARG, "hybrid: lane %d's share %g is not positive", r, opts->shares[r]);
        total += opts->shares[r];
    }
    for (int r = 0; r < g; r++) {
        double share = opts->shares ? opts->shares[r] / total : 1.0 / g;
        hy->rows[r] = (int64_t)llround(share * (double)units);
        given += hy->rows[r];
    }
    hy->rows[g - 1] += units - given;
    int64_t first = 0;
    for (int r = 0; r < g; r++) {
        if (hy->rows[r] < 1)
            return po_fail(PO_ERR_INVALID_ARG,
                           "hybrid: batch %lld in %d micro-batches is too small to give each of %d replicas a row "
                           "of every micro-batch",
                           (long long)hy->batch, m, g);
        hy->rows[r] *= m;
        hy->first[r] = first;
        hy->weight[r] = (double)hy->rows[r] / (double)hy->batch;
        first += hy->rows[r];
    }
    return PO_OK;
}

/* Lane r's worker of stage s: the weighted average of its stretch of the gradients into lane
 * 0's (lane 0's times its weight, then each other lane's times its weight added in lane order:
 * the same sums, in the same order, as data parallel's), then its stretch of the updates. */
static po_status update_stage(void *ctx, int s, bool ok) {
    lane_ctx *c = ctx;
    po_hy *hy = c->hy;
    stage_update *u = &hy->up[s];
    int r = c->r, track = r + s * hy->g;
    if (!ok) atomic_store(&u->failed, 1);
    pthread_barrier_wait(&u->barrier);
    ok = ok && !atomic_load(&u->failed);
    double t0 = po_trace_now();
    po_params *p0 = po__pp_params(hy->lane[0]);
    float *g0 = po_params_grads(p0);
    for (int q = u->avg_first[r]; ok && hy->g > 1 && q < u->avg_first[r + 1]; q++) {
        size_t off = po_params_info(p0, u->avg[q].node)->offset;
        size_t b = off + (size_t)u->avg[q].begin, e = off + (size_t)u->avg[q].end;
        float w0 = (float)hy->weight[0];
        for (size_t i = b; i < e; i++)
            g0[i] *= w0;
        for (int l = 1; l < hy->g; l++) {
            const float *gl = po_params_grads(po__pp_params(hy->lane[l]));
            float w = (float)hy->weight[l];
            for (size_t i = b; i < e; i++)
                g0[i] += w * gl[i];
        }
    }
    double t1 = po_trace_now();
    pthread_barrier_wait(&u->barrier);
    if (!ok) return PO_OK;
    double t2 = po_trace_now();
    po_status st = po__optim_apply(po__pp_exec(hy->lane[0]), u->opt, u->opt_first, r);
    if (po_trace_recording(hy->trace)) {
        if (hy->g > 1) po_trace_slice(hy->trace, track, "all-reduce", "communication", t0, t1);
        po_trace_slice(hy->trace, track, "optimizer", "optimizer", t2, po_trace_now());
    }
    return st;
}

/* Stage s's stretches, its barrier, and every lane's update hook. */
static po_status plan_updates(po_hy *hy) {
    po_pp *p0 = hy->lane[0];
    for (int s = 0; s < hy->k; s++) {
        stage_update *u = &hy->up[s];
        const int *ids;
        int n = po__pp_stage_params(p0, s, &ids);
        int64_t *sizes = malloc(((size_t)n + 1) * sizeof *sizes);
        bool *whole = malloc(((size_t)n + 1) * sizeof *whole);
        u->avg = malloc(((size_t)n + (size_t)hy->g) * sizeof *u->avg);
        u->avg_first = malloc(((size_t)hy->g + 1) * sizeof *u->avg_first);
        po_status st = sizes && whole && u->avg && u->avg_first ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; !st && i < n; i++) {
            sizes[i] = po_params_info(po__pp_params(p0), ids[i])->numel;
            whole[i] = true; /* any boundary will do: the average is by element */
        }
        if (!st) po__optim_split(ids, sizes, whole, n, hy->weight, hy->g, u->avg, u->avg_first);
        free(sizes);
        free(whole);
        if (!st) {
            n = po__pp_stage_optimizer(p0, s, &ids);
            st = po__optim_split_exec(po__pp_exec(p0), ids, n, hy->weight, hy->g, &u->opt, &u->opt_first);
        }
        if (!st && pthread_barrier_init(&u->barrier, NULL, (unsigned)hy->g) != 0)
            st = po_fail(PO_ERR_NO_MEMORY, "hybrid: cannot make a barrier");
        if (st) return st;
        hy->barriers_made = s + 1;
    }
    for (int r = 0; r < hy->g; r++) {
        hy->ctx[r] = (lane_ctx){hy, r};
        po__pp_set_update(hy->lane[r], update_stage, &hy->ctx[r]);
    }
    return PO_OK;
}

po_status po__hy_new(const char *spec, int64_t batch, const po_optim_opts *o, uint64_t seed,
                     const po_hybrid_opts *opts, po_hy **out) {
    *out = NULL;
    if (!opts || opts->n_replicas < 1 || opts->n_replicas > MAX_LANES || !opts->workers)
        return po_fail(PO_ERR_INVALID_ARG, "hybrid: 1 to %d replicas per stage, each with a worker", MAX_LANES);
    const po_pipeline_opts *pl = &opts->pipeline;
    if (pl->n_stages < 1 || pl->n_stages > PO__PP_MAX_STAGES || !pl->stages)
        return po_fail(PO_ERR_INVALID_ARG, "hybrid: 1 to %d stages", PO__PP_MAX_STAGES);
    if (pl->micro_batches < 1 || batch % pl->micro_batches)
        return po_fail(PO_ERR_INVALID_ARG, "hybrid: micro_batches %d must be positive and divide the batch %lld",
                       pl->micro_batches, (long long)batch);
    po_hy *hy = calloc(1, sizeof *hy);
    if (!hy) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    hy->k = pl->n_stages;
    hy->g = opts->n_replicas;
    hy->batch = batch;
    po_status st = split_lanes(hy, opts);
    po_pipeline_stage stages[PO__PP_MAX_STAGES];
    for (int r = 0; r < hy->g && !st; r++) {
        for (int s = 0; s < hy->k; s++) {
            stages[s] = pl->stages[s];
            stages[s].worker = opts->workers[s * hy->g + r];
        }
        po_pipeline_opts lane = *pl;
        lane.stages = stages;
        st = po__pp_new_lane(spec, hy->rows[r], o, seed, &lane, r ? po__pp_params(hy->lane[0]) : NULL, &hy->lane[r]);
        if (!st) po__pp_set_tracks(hy->lane[r], r, hy->g);
    }
    if (!st) st = plan_updates(hy);
    if (st) {
        po__hy_free(hy);
        return st;
    }
    *out = hy;
    return PO_OK;
}

void po__hy_free(po_hy *hy) {
    if (!hy) return;
    /* Lanes past 0 borrow lane 0's values: free them first. */
    for (int r = hy->g - 1; r >= 0; r--) {
        po__pp_free(hy->lane[r]);
        po_tensor_free(hy->x[r]);
        po_tensor_free(hy->y[r]);
    }
    for (int s = 0; s < PO__PP_MAX_STAGES; s++) {
        if (s < hy->barriers_made) pthread_barrier_destroy(&hy->up[s].barrier);
        free(hy->up[s].avg);
        free(hy->up[s].avg_first);
        free(hy->up[s].opt);
        free(hy->up[s].opt_first);
    }
    free(hy);
}

/* A view of rows [first, first + rows) of t, reusing *view's allocation when it has one. */
static po_status slice_rows(const po_tensor *t, int64_t first, int64_t rows, po_tensor **view) {
    size_t row = (size_t)(po_tensor_numel(t) / t->shape.dim[0]) * po_dtype_size(t->dtype);
    po_shape shape = t->shape;
    shape.dim[0] = rows;
    void *data = (char *)t->data + (size_t)first * row;
    if (*view && (*view)->data == data) return PO_OK;
    po_tensor_free(*view);
    *view = NULL;
    return po_tensor_wrap(t->dtype, shape, data, view);
}

po_status po__hy_step(po_hy *hy, const po_tensor *x, const po_tensor *y, float *loss) {
    po_status st = PO_OK;
    for (int r = 0; r < hy->g && !st; r++) {
        st = slice_rows(x, hy->first[r], hy->rows[r], &hy->x[r]);
        if (!st) st = slice_rows(y, hy->first[r], hy->rows[r], &hy->y[r]);
    }
    if (st) return st;
    for (int s = 0; s < hy->k; s++)
        atomic_store(&hy->up[s].failed, 0);
    for (int r = 0; r < hy->g; r++)
        po__pp_start(hy->lane[r], hy->x[r], hy->y[r]);
    /* Wait for every lane, even after one fails: none may still be reading the batch. The lanes'
     * workers have averaged the gradients and updated the parameters (update_stage). */
    double total = 0.0;
    for (int r = 0; r < hy->g; r++) {
        float lane_loss = 0.0f;
        po_status ls = po__pp_finish(hy->lane[r], &lane_loss);
        if (ls && !st) st = ls;
        total += hy->weight[r] * (double)lane_loss;
    }
    if (st) return st;
    int64_t steps = po_exec_steps(po__pp_exec(hy->lane[0])) + 1;
    for (int r = 0; r < hy->g; r++)
        po_exec_set_steps(po__pp_exec(hy->lane[r]), steps);
    if (loss) *loss = (float)total;
    return PO_OK;
}

po_params *po__hy_params(po_hy *hy) { return po__pp_params(hy->lane[0]); }
po_exec *po__hy_exec(po_hy *hy) { return po__pp_exec(hy->lane[0]); }
int po__hy_workers(const po_hy *hy) { return hy->k * hy->g; }

int64_t po__hy_rows(const po_hy *hy, int w) {
    return w >= 0 && w < hy->k * hy->g ? po__pp_rows(hy->lane[w % hy->g]) : 0;
}

po_status po__hy_set_slowdown(po_hy *hy, int w, float factor) {
    if (w < 0 || w >= hy->k * hy->g) return po_fail(PO_ERR_INVALID_ARG, "no hybrid worker %d", w);
    return po__pp_set_slowdown(hy->lane[w % hy->g], w / hy->g, factor);
}

po_status po__hy_stats(const po_hy *hy, int w, po_worker_stats *out) {
    if (w < 0 || w >= hy->k * hy->g) return po_fail(PO_ERR_INVALID_ARG, "no hybrid worker %d", w);
    po__pp_stats(hy->lane[w % hy->g], w / hy->g, out);
    out->share = (double)out->rows / (double)hy->batch; /* of the whole batch, not the lane's */
    return PO_OK;
}

void po__hy_set_trace(po_hy *hy, po_trace *tr) {
    hy->trace = tr;
    for (int r = 0; r < hy->g; r++)
        po__pp_set_trace(hy->lane[r], tr);
}

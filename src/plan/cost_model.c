/* The cost model: per-op times from a history of measurements keyed by (op, shapes, device), a
 * roofline where there is none; transfers, ring all-reduce and energy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"
#include "paropt/analyze.h"
#include "paropt/runtime.h"
#include "paropt/trace.h"
#include "plan/plan_internal.h"

typedef struct {
    uint64_t key, dev;
    double sum;
    int count;
    bool used;
} hist_entry;

struct po_cost_model {
    const po_cluster *c;
    hist_entry *hist;
    size_t cap, n;
    double *contention; /* per cluster device (NULL: all 1) */
};

po_status po_cost_model_new(const po_cluster *c, po_cost_model **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    (*out)->c = c;
    return PO_OK;
}

void po_cost_model_free(po_cost_model *cm) {
    if (!cm) return;
    free(cm->hist);
    free(cm->contention);
    free(cm);
}

const po_cluster *po_cost_model_cluster(const po_cost_model *cm) { return cm->c; }

size_t po__cost_model_history_size(const po_cost_model *cm) { return cm->n; }

po_status po_cost_model_set_contention(po_cost_model *cm, const char *device, double factor) {
    int d = po_cluster_find(cm->c, device);
    if (d < 0) return po_fail(PO_ERR_NOT_FOUND, "contention: device \"%s\" is not in the cluster", device);
    if (!(factor >= 1.0) || factor > 100.0)
        return po_fail(PO_ERR_INVALID_ARG, "contention: factor must be between 1 and 100, got %g", factor);
    if (!cm->contention) {
        int n = po_cluster_size(cm->c);
        cm->contention = malloc((size_t)n * sizeof *cm->contention);
        if (!cm->contention) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; i < n; i++)
            cm->contention[i] = 1.0;
    }
    cm->contention[d] = factor;
    return PO_OK;
}

double po_cost_model_contention(const po_cost_model *cm, int device) {
    return cm->contention && device >= 0 && device < po_cluster_size(cm->c) ? cm->contention[device] : 1.0;
}

bool po__cost_model_has_device(const po_cost_model *cm, int dev) {
    for (size_t i = 0; i < cm->cap; i++)
        if (cm->hist[i].used && cm->hist[i].dev == cm->c->id_hash[dev]) return true;
    return false;
}

static size_t slot(uint64_t key, uint64_t dev, size_t cap) {
    return (size_t)((key ^ (dev * 0x9E3779B97F4A7C15ull)) & (cap - 1));
}

static hist_entry *find(const po_cost_model *cm, uint64_t key, uint64_t dev) {
    if (!cm->cap) return NULL;
    for (size_t i = slot(key, dev, cm->cap);; i = (i + 1) & (cm->cap - 1)) {
        hist_entry *e = &cm->hist[i];
        if (!e->used) return NULL;
        if (e->key == key && e->dev == dev) return e;
    }
}

static po_status insert(po_cost_model *cm, uint64_t key, uint64_t dev, double seconds) {
    hist_entry *e = find(cm, key, dev);
    if (e) {
        e->sum += seconds;
        e->count++;
        return PO_OK;
    }
    if (2 * (cm->n + 1) > cm->cap) {
        size_t cap = cm->cap ? 2 * cm->cap : 256;
        hist_entry *h = calloc(cap, sizeof *h);
        if (!h) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (size_t i = 0; i < cm->cap; i++) {
            if (!cm->hist[i].used) continue;
            size_t j = slot(cm->hist[i].key, cm->hist[i].dev, cap);
            while (h[j].used)
                j = (j + 1) & (cap - 1);
            h[j] = cm->hist[i];
        }
        free(cm->hist);
        cm->hist = h;
        cm->cap = cap;
    }
    size_t j = slot(key, dev, cm->cap);
    while (cm->hist[j].used)
        j = (j + 1) & (cm->cap - 1);
    cm->hist[j] = (hist_entry){key, dev, seconds, 1, true};
    cm->n++;
    return PO_OK;
}

po_status po_cost_model_record_key(po_cost_model *cm, uint64_t key, const char *device, double seconds) {
    if (!(seconds >= 0.0 && isfinite(seconds)))
        return po_fail(PO_ERR_INVALID_ARG, "cost model: a measured time must be finite and not negative");
    int d = po_cluster_find(cm->c, device);
    if (d < 0) return po_fail(PO_ERR_NOT_FOUND, "cost model: device \"%s\" is not in the cluster", device);
    return insert(cm, key, cm->c->id_hash[d], seconds);
}

po_status po_cost_model_record(po_cost_model *cm, const po_node *n, const char *device, double seconds) {
    return po_cost_model_record_key(cm, po_op_key(n), device, seconds);
}

po_status po_cost_model_lookup(const po_cost_model *cm, uint64_t key, const char *device, double *seconds, int *count) {
    int d = po_cluster_find(cm->c, device);
    const hist_entry *e = d >= 0 ? find(cm, key, cm->c->id_hash[d]) : NULL;
    if (!e) return po_fail(PO_ERR_NOT_FOUND, "no measurement of this op on \"%s\"", device);
    if (seconds) *seconds = e->sum / e->count;
    if (count) *count = e->count;
    return PO_OK;
}

const char *po_bound_name(po_bound b) {
    return b == PO_BOUND_COMPUTE ? "compute" : b == PO_BOUND_MEMORY ? "memory" : "overhead";
}

/* Attainable GEMM FLOP/s for one product of `flops`: the curve interpolated on log FLOPs (points
 * sorted by size; the end values beyond them), or the flat headline figure. */
static double gemm_rate(const po_device_perf *p, double flops) {
    if (p->n_gemm <= 0) return p->gemm_gflops * 1e9;
    double x[PO_GEMM_CURVE_MAX], y[PO_GEMM_CURVE_MAX];
    int n = 0;
    for (int i = 0; i < p->n_gemm && i < PO_GEMM_CURVE_MAX; i++) {
        double f = 2.0 * (double)p->gemm[i].m * (double)p->gemm[i].n * (double)p->gemm[i].k;
        int k = n++;
        while (k > 0 && x[k - 1] > f) {
            x[k] = x[k - 1];
            y[k] = y[k - 1];
            k--;
        }
        x[k] = f;
        y[k] = p->gemm[i].gflops;
    }
    if (flops <= x[0]) return y[0] * 1e9;
    if (flops >= x[n - 1]) return y[n - 1] * 1e9;
    for (int i = 1; i < n; i++)
        if (flops <= x[i]) {
            double t = x[i] > x[i - 1] ? (log(flops) - log(x[i - 1])) / (log(x[i]) - log(x[i - 1])) : 1.0;
            return (y[i - 1] + t * (y[i] - y[i - 1])) * 1e9;
        }
    return y[n - 1] * 1e9;
}

/* Roofline of `flops` and `bytes` as calls of `call_flops` each (gemm) or element-wise work. */
static double roofline(const po_cluster_device *d, double flops, double bytes, double call_flops, bool gemm,
                       po__tparts *parts) {
    const po_device_perf *p = &d->perf;
    double over = p->dispatch_us * 1e-6 + (gemm ? p->gemm_call_us * 1e-6 : 0.0);
    double rate = gemm ? gemm_rate(p, call_flops) : 2.0 * p->elementwise_gelems * 1e9;
    double bw = bytes <= d->cache_bytes ? 8.0 * p->elementwise_gelems * 1e9 : p->mem_bandwidth_gbs * 1e9;
    if (bw < p->mem_bandwidth_gbs * 1e9) bw = p->mem_bandwidth_gbs * 1e9;
    double tf = flops / rate, tb = bytes / bw;
    if (parts) {
        parts->t = over + fmax(tf, tb);
        parts->over_s = over;
        parts->flop_s = tf >= tb ? fmax(tf, tb) : 0.0;
        parts->byte_s = tf >= tb ? 0.0 : tb;
    }
    return over + fmax(tf, tb);
}

double po_cost_model_roofline(const po_cost_model *cm, int device, double flops, double bytes, bool gemm,
                              po_bound *bound) {
    const po_cluster_device *d = po_cluster_device_at(cm->c, device);
    if (!d) return NAN;
    po__tparts parts;
    double t = roofline(d, flops, bytes, flops, gemm, &parts);
    if (bound)
        *bound = parts.over_s >= parts.flop_s + parts.byte_s ? PO_BOUND_OVERHEAD
                 : parts.flop_s > 0.0                        ? PO_BOUND_COMPUTE
                                                             : PO_BOUND_MEMORY;
    return t;
}

po_status po_cost_model_node_time(const po_cost_model *cm, const po_node *n, int device, po_op_estimate *out) {
    memset(out, 0, sizeof *out);
    const po_cluster_device *d = po_cluster_device_at(cm->c, device);
    if (!d) return po_fail(PO_ERR_RANGE, "cost model: device %d out of range", device);
    po_cost c = po_node_cost(n);
    const hist_entry *e = find(cm, po_op_key(n), cm->c->id_hash[device]);
    po_op estimate_op = po_node_op(n);
    bool gemm = estimate_op == PO_OP_MATMUL || estimate_op == PO_OP_LINEAR || estimate_op == PO_OP_CONV2D ||
                estimate_op == PO_OP_CONV2D_GRAD_INPUT || estimate_op == PO_OP_CONV2D_GRAD_WEIGHT ||
                estimate_op == PO_OP_CAUSAL_ATTENTION || estimate_op == PO_OP_CAUSAL_ATTENTION_GRAD;
    if (c.flops == 0.0 && c.bytes_read + c.bytes_written == 0.0 && !e) return PO_OK;
    po__tparts parts;
    double t = roofline(d, c.flops, c.bytes_read + c.bytes_written, c.flops, gemm, &parts);
    out->bound = parts.over_s >= parts.flop_s + parts.byte_s ? PO_BOUND_OVERHEAD
                 : parts.flop_s > 0.0                        ? PO_BOUND_COMPUTE
                                                             : PO_BOUND_MEMORY;
    out->seconds = e ? e->sum / e->count : t;
    out->measured = e != NULL;
    return PO_OK;
}

double po__node_roofline(const po_cost_model *cm, const po__wnode *n, int dev, double rows, double frac) {
    /* A block keeps its calls' size where the split cuts the number of calls, not the calls: a
     * weight gradient's rows (MATMUL), attention's (sample, head) pairs. A convolution's slice of
     * the batch is one smaller call. */
    bool keeps_calls =
        n->op == PO_OP_MATMUL || n->op == PO_OP_CAUSAL_ATTENTION || n->op == PO_OP_CAUSAL_ATTENTION_GRAD;
    double call = po__aff(n->call_flops, rows) * (keeps_calls ? 1.0 : frac);
    return roofline(&cm->c->dev[dev], po__aff(n->flops, rows) * frac, po__aff(n->bytes, rows) * frac, call, n->gemm,
                    NULL);
}

double po__node_seconds(const po_cost_model *cm, const po_workload *w, const po__wnode *n, int dev, double rows,
                        po__tparts *parts) {
    const po_cluster_device *d = &cm->c->dev[dev];
    double f = po__aff(n->flops, rows), y = po__aff(n->bytes, rows);
    if (f == 0.0 && y == 0.0) {
        if (parts) memset(parts, 0, sizeof *parts);
        return 0.0;
    }
    double call = po__aff(n->call_flops, rows);
    po__tparts mine;
    double t = roofline(d, f, y, call, n->gemm, &mine);
    /* Measured history. Measured at both batches (a whole node): the affine fit through the two
     * measurements, so fixed costs and the lower efficiency of small products carry over to
     * micro-batches smaller than either (a roofline ratio from the nearer one was 25-75% optimistic
     * for pipeline micro-batches), never below that ratio estimate (a smaller product is not more
     * efficient per row). Otherwise the mean at the nearest measured batch, scaled by the
     * roofline's ratio. */
    double best = INFINITY;
    double scaled = t;
    const hist_entry *e0 = cm->n ? find(cm, n->key[0], cm->c->id_hash[dev]) : NULL;
    const hist_entry *e1 = e0 ? find(cm, n->key[1], cm->c->id_hash[dev]) : NULL;
    if (e0 && e1 && w->batch != w->batch2) {
        double r0 = (double)w->batch, r1 = (double)w->batch2, t0 = e0->sum / e0->count, t1 = e1->sum / e1->count;
        double fit = t1 + (rows - r1) * (t0 - t1) / (r0 - r1);
        double near = rows >= 0.5 * (r0 + r1) ? t0 : t1, rnear = rows >= 0.5 * (r0 + r1) ? r0 : r1;
        double tk = roofline(d, po__aff(n->flops, rnear), po__aff(n->bytes, rnear), po__aff(n->call_flops, rnear),
                             n->gemm, NULL);
        double ratio = near * (tk > 0.0 ? t / tk : 1.0);
        scaled = fit > ratio ? fit : ratio;
        best = -1.0; /* done: skip the nearest-batch rule */
    }
    for (int k = 0; k < 2 && cm->n && best >= 0.0; k++) {
        const hist_entry *e = find(cm, n->key[k], cm->c->id_hash[dev]);
        if (!e) continue;
        double rk = (double)(k ? w->batch2 : w->batch);
        double dist = fabs(log(rows / rk));
        if (dist >= best) continue;
        best = dist;
        double tk =
            roofline(d, po__aff(n->flops, rk), po__aff(n->bytes, rk), po__aff(n->call_flops, rk), n->gemm, NULL);
        scaled = e->sum / e->count * (tk > 0.0 ? t / tk : 1.0);
    }
    if (parts) {
        double s = t > 0.0 ? scaled / t : 1.0;
        parts->t = scaled;
        parts->flop_s = mine.flop_s * s;
        parts->byte_s = mine.byte_s * s;
        parts->over_s = mine.over_s * s;
    }
    return scaled;
}

double po_cost_model_transfer_s(const po_cost_model *cm, int from, int to, double bytes) {
    if (from == to || bytes <= 0.0) return 0.0;
    po_link l = po_cluster_link(cm->c, from, to);
    return l.latency_us * 1e-6 + bytes / (l.bandwidth_gbs * 1e9);
}

double po_cost_model_reclaim_s(const po_cost_model *cm, const int *readers, int n, int writer, double bytes) {
    double ns = 0.0;
    for (int i = 0; i < n; i++)
        if (readers[i] != writer) ns = fmax(ns, po_cluster_link(cm->c, readers[i], writer).reclaim_ns_per_byte);
    return bytes > 0.0 ? ns * 1e-9 * bytes : 0.0;
}

double po_cost_model_wake_s(const po_cost_model *cm, const int *devices, int n) {
    double us = 0.0;
    for (int k = 1; k < n; k++)
        if (devices[k] != devices[0])
            us = fmax(us, fmax(po_cluster_link(cm->c, devices[0], devices[k]).wake_us,
                               po_cluster_link(cm->c, devices[k], devices[0]).wake_us));
    return us * 1e-6;
}

double po_cost_model_allreduce_s(const po_cost_model *cm, const int *devices, int n, double bytes) {
    if (n < 2 || bytes <= 0.0) return 0.0;
    double bw = INFINITY, lat = 0.0;
    for (int i = 0; i < n; i++) {
        po_link l = po_cluster_link(cm->c, devices[i], devices[(i + 1) % n]);
        bw = fmin(bw, l.bandwidth_gbs);
        lat = fmax(lat, l.latency_us);
    }
    return 2.0 * (n - 1) / n * bytes / (bw * 1e9) + 2.0 * (n - 1) * lat * 1e-6;
}

double po_cost_model_energy_j(const po_cost_model *cm, int device, double busy_s, double window_s) {
    const po_cluster_device *d = po_cluster_device_at(cm->c, device);
    if (!d) return NAN;
    double idle = window_s - busy_s;
    return d->active_w * busy_s + d->idle_w * (idle > 0.0 ? idle : 0.0);
}

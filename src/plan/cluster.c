/* The cluster the planner plans for: devices with their figures and power, and the links between
 * them; built by hand, from this machine's measured profile, or from a file (cluster_json.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

po_status po_cluster_new(po_cluster **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    (*out)->def = (po_link){.bandwidth_gbs = 10.0, .latency_us = 10.0};
    return PO_OK;
}

void po_cluster_free(po_cluster *c) {
    if (!c) return;
    free(c->dev);
    free(c->id_hash);
    free(c->links);
    free(c);
}

static po_status grow(po_cluster *c) {
    if (c->n < c->cap) return PO_OK;
    int cap = c->cap ? 2 * c->cap : 8;
    po_cluster_device *dev = realloc(c->dev, (size_t)cap * sizeof *dev);
    if (dev) c->dev = dev;
    uint64_t *ih = realloc(c->id_hash, (size_t)cap * sizeof *ih);
    if (ih) c->id_hash = ih;
    po_link *lk = malloc((size_t)cap * (size_t)cap * sizeof *lk);
    if (!dev || !ih || !lk) {
        free(lk);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < cap * cap; i++)
        lk[i] = (po_link){.bandwidth_gbs = NAN, .latency_us = NAN};
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++)
            lk[i * cap + j] = c->links[i * c->cap + j];
    free(c->links);
    c->links = lk;
    c->cap = cap;
    return PO_OK;
}

static bool positive(double v) { return isfinite(v) && v > 0.0; }

po_status po_cluster_add(po_cluster *c, const po_cluster_device *d) {
    if (!d->dev.id[0]) return po_fail(PO_ERR_INVALID_ARG, "cluster: a device needs an id");
    if (po_cluster_find(c, d->dev.id) >= 0)
        return po_fail(PO_ERR_INVALID_ARG, "cluster: device id \"%s\" appears twice", d->dev.id);
    const po_device_perf *p = &d->perf;
    if (!(positive(p->gemm_gflops) || p->n_gemm > 0))
        return po_fail(PO_ERR_INVALID_ARG, "cluster: device \"%s\" needs a positive GEMM GFLOP/s figure", d->dev.id);
    for (int i = 0; i < p->n_gemm; i++)
        if (!positive(p->gemm[i].gflops) || p->gemm[i].m < 1 || p->gemm[i].n < 1 || p->gemm[i].k < 1)
            return po_fail(PO_ERR_INVALID_ARG, "cluster: device \"%s\": GEMM curve point %d is not positive", d->dev.id,
                           i);
    if (!positive(p->mem_bandwidth_gbs))
        return po_fail(PO_ERR_INVALID_ARG, "cluster: device \"%s\" needs a positive memory bandwidth", d->dev.id);
    if (d->dev.memory_bytes <= 0)
        return po_fail(PO_ERR_INVALID_ARG, "cluster: device \"%s\" needs a positive memory size", d->dev.id);
    if (!isnan(d->active_w) && !(d->active_w >= 0.0 && d->idle_w >= 0.0 && isfinite(d->active_w)))
        return po_fail(PO_ERR_INVALID_ARG, "cluster: device \"%s\": power must be finite and not negative", d->dev.id);
    if (c->n >= 512) return po_fail(PO_ERR_RANGE, "cluster: at most 512 devices");
    po_status st = grow(c);
    if (st) return st;
    po_cluster_device *x = &c->dev[c->n];
    *x = *d;
    bool gpu = d->dev.kind == PO_DEVICE_CUDA;
    if (!positive(x->perf.gemm_gflops)) x->perf.gemm_gflops = x->perf.gemm[x->perf.n_gemm - 1].gflops;
    if (!positive(x->perf.elementwise_gelems)) x->perf.elementwise_gelems = x->perf.mem_bandwidth_gbs / 8.0;
    if (!(x->perf.dispatch_us >= 0.0)) x->perf.dispatch_us = gpu ? 5.0 : 0.05;
    if (!(x->perf.gemm_call_us >= 0.0)) x->perf.gemm_call_us = gpu ? 5.0 : 0.2;
    if (!(x->cache_bytes >= 0.0)) x->cache_bytes = 0.0;
    if (isnan(x->active_w)) x->idle_w = NAN;
    c->id_hash[c->n] = po__fnv_str(PO__FNV_OFFSET, x->dev.id);
    c->n++;
    return PO_OK;
}

po_status po_cluster_add_catalog(po_cluster *c, const char *id, const char *type) {
    const po_catalog_entry *e = po_catalog_find(type);
    po_cluster_device d;
    memset(&d, 0, sizeof d);
    po_status st = po_catalog_virtual_device(type, &d.dev, &d.perf);
    if (st) return st;
    snprintf(d.dev.id, sizeof d.dev.id, "%s", id);
    if (e->kind == PO_DEVICE_CPU && d.dev.memory_bytes <= 0) d.dev.memory_bytes = 16ll << 30;
    d.active_w = e->tdp_w;
    d.idle_w = e->idle_w;
    d.memory_group = -1;
    d.cache_bytes = e->kind == PO_DEVICE_CPU ? 1 << 20 : 0;
    snprintf(d.power_source, sizeof d.power_source, "catalog:%s", e->id);
    return po_cluster_add(c, &d);
}

int po_cluster_size(const po_cluster *c) { return c->n; }

const po_cluster_device *po_cluster_device_at(const po_cluster *c, int i) {
    return i >= 0 && i < c->n ? &c->dev[i] : NULL;
}

int po_cluster_find(const po_cluster *c, const char *id) {
    uint64_t h = po__fnv_str(PO__FNV_OFFSET, id);
    for (int i = 0; i < c->n; i++)
        if (c->id_hash[i] == h && strcmp(c->dev[i].dev.id, id) == 0) return i;
    return -1;
}

static po_status check_link(po_link l) {
    if (!positive(l.bandwidth_gbs) || !(l.latency_us >= 0.0 && isfinite(l.latency_us)) ||
        !(l.reclaim_ns_per_byte >= 0.0 && isfinite(l.reclaim_ns_per_byte)) ||
        !(l.wake_us >= 0.0 && isfinite(l.wake_us)))
        return po_fail(PO_ERR_INVALID_ARG, "cluster: a link needs a positive bandwidth, and a latency, a reclaim "
                                           "cost and a wake-up time >= 0");
    return PO_OK;
}

po_status po_cluster_set_link_directed(po_cluster *c, const char *from, const char *to, po_link l) {
    po_status st = check_link(l);
    if (st) return st;
    int a = po_cluster_find(c, from), b = po_cluster_find(c, to);
    if (a < 0 || b < 0)
        return po_fail(PO_ERR_NOT_FOUND, "cluster: link names unknown device \"%s\"", a < 0 ? from : to);
    if (a == b) return po_fail(PO_ERR_INVALID_ARG, "cluster: a link joins two different devices (\"%s\" twice)", from);
    c->links[a * c->cap + b] = l;
    return PO_OK;
}

po_status po_cluster_set_link(po_cluster *c, const char *a, const char *b, po_link l) {
    po_status st = po_cluster_set_link_directed(c, a, b, l);
    return st ? st : po_cluster_set_link_directed(c, b, a, l);
}

po_status po_cluster_set_default_link(po_cluster *c, po_link l) {
    po_status st = check_link(l);
    if (!st) c->def = l;
    return st;
}

po_link po_cluster_link(const po_cluster *c, int from, int to) {
    if (from < 0 || to < 0 || from >= c->n || to >= c->n || from == to) return c->def;
    po_link l = c->links[from * c->cap + to];
    return isnan(l.bandwidth_gbs) ? c->def : l;
}

static uint64_t fig(uint64_t h, double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    return po__fnv_str(h, buf);
}

/* Measured figures to the 6 significant digits the hardware cache stores: a plan made right after
 * measuring and one made from the cache later see the same cluster (and plan cache key). */
static double six(double v) {
    if (!isfinite(v)) return v;
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", v);
    return strtod(buf, NULL);
}

uint64_t po_cluster_signature(const po_cluster *c) {
    uint64_t h = po__fnv_u64(PO__FNV_OFFSET, (uint64_t)c->n);
    for (int i = 0; i < c->n; i++) {
        const po_cluster_device *d = &c->dev[i];
        h = po__fnv_str(h, d->dev.id);
        h = po__fnv_u64(h, (uint64_t)d->dev.kind);
        h = po__fnv_u64(h, (uint64_t)d->dev.memory_bytes);
        h = po__fnv_u64(h, (uint64_t)(d->memory_group + 1));
        const po_device_perf *p = &d->perf;
        for (int k = 0; k < p->n_gemm; k++)
            h = fig(po__fnv_u64(h, (uint64_t)(p->gemm[k].m * 31 + p->gemm[k].n * 7 + p->gemm[k].k)), p->gemm[k].gflops);
        double v[] = {p->gemm_gflops,  p->mem_bandwidth_gbs, p->elementwise_gelems, p->dispatch_us,
                      p->gemm_call_us, d->cache_bytes,       d->active_w,           d->idle_w};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            h = fig(h, v[k]);
    }
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++) {
            if (i == j) continue;
            po_link l = po_cluster_link(c, i, j);
            h = fig(fig(fig(fig(h, l.bandwidth_gbs), l.latency_us), l.reclaim_ns_per_byte), l.wake_us);
        }
    return h;
}

po_status po_cluster_from_profile(const po_machine *m, const po_hw_profile *p, po_cluster **out) {
    po_status st = po_cluster_new(out);
    if (st) return st;
    po_cluster *c = *out;
    const po_cpu_info *cpu = po_machine_cpu(m);
    const po_catalog_entry *ce = po_catalog_cpu(cpu);
    for (int i = 0; !st && i < p->n_devices; i++) {
        po_cluster_device d;
        memset(&d, 0, sizeof d);
        d.dev = p->devices[i];
        d.perf = p->perf[i];
        po_device_perf *f = &d.perf;
        for (int k = 0; k < f->n_gemm; k++)
            f->gemm[k].gflops = six(f->gemm[k].gflops);
        f->gemm_gflops = six(f->gemm_gflops);
        f->mem_bandwidth_gbs = six(f->mem_bandwidth_gbs);
        f->elementwise_gelems = six(f->elementwise_gelems);
        f->dispatch_us = six(f->dispatch_us);
        f->gemm_call_us = six(f->gemm_call_us);
        if (d.dev.kind == PO_DEVICE_CPU) {
            int cores = d.dev.n_cores > 0 ? d.dev.n_cores : 1;
            d.active_w = ce->tdp_w * cores;
            d.idle_w = ce->idle_w * cores;
            d.cache_bytes = (double)cpu->l2_bytes * cores;
            d.memory_group = 0;
            snprintf(d.power_source, sizeof d.power_source, "catalog:%s", ce->id);
        } else {
            const po_catalog_entry *e = po_catalog_find(d.dev.name);
            d.active_w = e ? e->tdp_w : NAN;
            d.idle_w = e ? e->idle_w : NAN;
            d.memory_group = -1;
            snprintf(d.power_source, sizeof d.power_source, "%s%s", e ? "catalog:" : "unknown", e ? e->id : "");
        }
        st = po_cluster_add(c, &d);
    }
    for (int i = 0; !st && i < p->n_links; i++) {
        const po_link_perf *l = &p->links[i];
        double reclaim = l->reclaim_ns_per_byte >= 0.0 ? six(l->reclaim_ns_per_byte) : 0.0; /* NaN: none known */
        double wake = l->wake_us >= 0.0 ? six(l->wake_us) : 0.0;
        if (positive(l->bandwidth_gbs) && l->latency_us >= 0.0)
            st = po_cluster_set_link_directed(c, l->from, l->to,
                                              (po_link){.bandwidth_gbs = six(l->bandwidth_gbs),
                                                        .latency_us = six(l->latency_us),
                                                        .reclaim_ns_per_byte = reclaim,
                                                        .wake_us = wake});
    }
    if (st) {
        po_cluster_free(c);
        *out = NULL;
    }
    return st;
}

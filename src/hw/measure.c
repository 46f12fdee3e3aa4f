/* Measuring a device list: figures from the cache where it has them, measurement for the rest,
 * the merged result written back. Devices are measured one at a time so that each figure is the
 * device's own, not what is left of it while a neighbour competes for memory bandwidth. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"

po_measure_opts po_measure_opts_default(void) { return (po_measure_opts){.level = PO_BENCH_QUICK}; }

po_status po_bench_level_parse(const char *name, po_bench_level *out) {
    if (name && strcmp(name, "quick") == 0) {
        *out = PO_BENCH_QUICK;
        return PO_OK;
    }
    if (name && strcmp(name, "full") == 0) {
        *out = PO_BENCH_FULL;
        return PO_OK;
    }
    return po_fail(PO_ERR_INVALID_ARG, "unknown benchmark level \"%s\" (expected quick or full)", name ? name : "");
}

const char *po_bench_level_name(po_bench_level l) { return l == PO_BENCH_FULL ? "full" : "quick"; }

void po__progress(const po__measure_cfg *c, const char *fmt, ...) {
    if (!c->progress) return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->progress(buf, c->progress_ctx);
}

static int find_device(const po_hw_profile *p, const char *id) {
    for (int i = 0; i < p->n_devices; i++)
        if (strcmp(p->devices[i].id, id) == 0) return i;
    return -1;
}

static int find_link(const po_hw_profile *p, const char *from, const char *to) {
    for (int i = 0; i < p->n_links; i++)
        if (strcmp(p->links[i].from, from) == 0 && strcmp(p->links[i].to, to) == 0) return i;
    return -1;
}

const po_device_perf *po_hw_profile_perf(const po_hw_profile *p, const char *device_id) {
    int i = find_device(p, device_id);
    return i < 0 ? NULL : &p->perf[i];
}

const po_link_perf *po_hw_profile_link(const po_hw_profile *p, const char *from, const char *to) {
    int i = find_link(p, from, to);
    return i < 0 ? NULL : &p->links[i];
}

void po_hw_profile_free(po_hw_profile *p) {
    if (!p) return;
    po__profile_clear(p);
    free(p);
}

static po_status measure_device(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p) {
    if (d->kind == PO_DEVICE_CUDA) {
        /* No CUDA compute backend yet: the planner gets the datasheet (source "catalog"). */
        const po_catalog_entry *e = po_catalog_find(d->name);
        if (e && e->kind == PO_DEVICE_CUDA)
            po__perf_from_catalog(e, p);
        else
            po__perf_unknown(p, "none");
        p->level = c->level;
        return PO_OK;
    }
    po__perf_unknown(p, "measured");
    p->level = c->level;
    po_status st = po__measure_gemm(m, d, c, p);
    if (!st) st = po__measure_memory(m, d, c, p);
    if (!st) st = po__measure_dispatch(m, d, c, p);
    return st;
}

/* How two core groups are connected: sharing an L3, a NUMA node, a socket, or none. Links of the
 * same class and group sizes behave alike, so QUICK measures one of each on large machines. */
static int link_class(const po_machine *m, const po_device *a, const po_device *b) {
    const po_cpu_core *x = &m->cores[a->first_core], *y = &m->cores[b->first_core];
    int rel = x->l3 >= 0 && x->l3 == y->l3 ? 0 : x->numa_node == y->numa_node ? 1 : x->package == y->package ? 2 : 3;
    return rel * 1000000 + a->n_cores * 1000 + b->n_cores;
}

/* Below this many CPU pairs QUICK measures every one (two cores: 2 pairs, eight: 56). */
#define QUICK_ALL_PAIRS 64

static po_status measure_links(const po_machine *m, const po_hw_profile *cached, const po__measure_cfg *c,
                               po_hw_profile *p, bool refresh) {
    const po_device *host = NULL;
    for (int i = 0; i < p->n_devices && !host; i++)
        if (p->devices[i].kind == PO_DEVICE_CPU) host = &p->devices[i];
    po_device core0 = {.id = "cpu:0", .kind = PO_DEVICE_CPU, .first_core = 0, .n_cores = 1, .gpu = -1};
    int cpu_pairs = 0;
    for (int i = 0; i < p->n_devices; i++)
        for (int j = 0; j < p->n_devices; j++)
            cpu_pairs += i != j && p->devices[i].kind == PO_DEVICE_CPU && p->devices[j].kind == PO_DEVICE_CPU;
    bool sample = c->level == PO_BENCH_QUICK && cpu_pairs > QUICK_ALL_PAIRS;

    int k = 0;
    for (int i = 0; i < p->n_devices; i++)
        for (int j = 0; j < p->n_devices; j++) {
            if (i == j) continue;
            const po_device *a = &p->devices[i], *b = &p->devices[j];
            po_link_perf *l = &p->links[k++];
            memset(l, 0, sizeof *l);
            snprintf(l->from, sizeof l->from, "%s", a->id);
            snprintf(l->to, sizeof l->to, "%s", b->id);
            l->bandwidth_gbs = l->latency_us = l->reclaim_ns_per_byte = l->wake_us = NAN;
            l->level = c->level;
            int ci = cached && !refresh ? find_link(cached, a->id, b->id) : -1;
            if (ci >= 0 && cached->links[ci].level >= c->level) {
                *l = cached->links[ci];
                continue;
            }
            po_status st = PO_OK;
            if (a->kind == PO_DEVICE_CPU && b->kind == PO_DEVICE_CPU) {
                /* A measured link of the same class, when sampling. */
                int like = -1;
                for (int q = 0; sample && q < k - 1 && like < 0; q++) {
                    const po_link_perf *o = &p->links[q];
                    if (!o->measured) continue;
                    int oa = find_device(p, o->from), ob = find_device(p, o->to);
                    if (p->devices[oa].kind == PO_DEVICE_CPU && p->devices[ob].kind == PO_DEVICE_CPU &&
                        link_class(m, &p->devices[oa], &p->devices[ob]) == link_class(m, a, b))
                        like = q;
                }
                if (like >= 0) {
                    l->bandwidth_gbs = p->links[like].bandwidth_gbs;
                    l->latency_us = p->links[like].latency_us;
                    l->reclaim_ns_per_byte = p->links[like].reclaim_ns_per_byte;
                    l->wake_us = p->links[like].wake_us;
                    continue;
                }
                st = po__measure_cpu_link(m, a, b, c, l);
                p->measured++;
            } else if (!po__cuda_can_transfer(&m->cuda)) {
                continue; /* unknown: no driver copy functions */
            } else if (a->kind == PO_DEVICE_CPU && host && a != host) {
                continue; /* filled from the host's link below */
            } else if (b->kind == PO_DEVICE_CPU && host && b != host) {
                continue;
            } else {
                st = po__measure_gpu_link(m, a, b, host ? host : &core0, c, l);
                p->measured++;
            }
            l->level = c->level;
            if (st) return st;
        }
    /* Host-GPU links of the other CPU devices: the first CPU device's figures (the PCIe link is
     * the bottleneck, not the core). */
    for (int q = 0; q < p->n_links; q++) {
        po_link_perf *l = &p->links[q];
        if (isfinite(l->bandwidth_gbs) || !host) continue;
        int a = find_device(p, l->from), b = find_device(p, l->to);
        const char *from = p->devices[a].kind == PO_DEVICE_CPU ? host->id : l->from;
        const char *to = p->devices[b].kind == PO_DEVICE_CPU ? host->id : l->to;
        int src = find_link(p, from, to);
        if (src >= 0 && src != q && p->links[src].measured) {
            l->bandwidth_gbs = p->links[src].bandwidth_gbs;
            l->latency_us = p->links[src].latency_us;
            l->measured = false;
        }
    }
    return PO_OK;
}

/* The cache file's new content: everything it had, with this call's figures replacing the old. */
static po_status merged(const po_hw_profile *old, const po_hw_profile *p, po_hw_profile *out) {
    memset(out, 0, sizeof *out);
    int nd = (old ? old->n_devices : 0) + p->n_devices, nl = (old ? old->n_links : 0) + p->n_links;
    out->devices = calloc((size_t)(nd ? nd : 1), sizeof *out->devices);
    out->perf = calloc((size_t)(nd ? nd : 1), sizeof *out->perf);
    out->links = calloc((size_t)(nl ? nl : 1), sizeof *out->links);
    if (!out->devices || !out->perf || !out->links) {
        po__profile_clear(out);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    memcpy(out->fingerprint, p->fingerprint, sizeof out->fingerprint);
    memcpy(out->gemm_library, p->gemm_library, sizeof out->gemm_library);
    for (int i = 0; i < p->n_devices; i++) {
        out->devices[out->n_devices] = p->devices[i];
        out->devices[out->n_devices].n_opts = 0; /* options are the runtime's, not the hardware's */
        out->perf[out->n_devices++] = p->perf[i];
    }
    for (int i = 0; old && i < old->n_devices; i++)
        if (find_device(p, old->devices[i].id) < 0) {
            out->devices[out->n_devices] = old->devices[i];
            out->perf[out->n_devices++] = old->perf[i];
        }
    for (int i = 0; i < p->n_links; i++)
        out->links[out->n_links++] = p->links[i];
    for (int i = 0; old && i < old->n_links; i++)
        if (find_link(p, old->links[i].from, old->links[i].to) < 0) out->links[out->n_links++] = old->links[i];
    return PO_OK;
}

po_status po_hw_profile_get(const po_machine *m, const po_device_list *devs, const po_measure_opts *o,
                            po_hw_profile **out) {
    *out = NULL;
    po_measure_opts def = po_measure_opts_default();
    if (!o) o = &def;
    po__measure_cfg c = {o->level,         o->gemm_max, o->stream_bytes, o->link_bytes,
                         o->point_seconds, o->progress, o->progress_ctx};
    if (!(c.point_seconds > 0)) c.point_seconds = c.level == PO_BENCH_FULL ? 0.6 : 0.12;
    bool overrides = o->gemm_max > 0 || o->stream_bytes > 0 || o->link_bytes > 0 || o->point_seconds > 0;
    for (int i = 0; i < devs->n; i++)
        if (devs->dev[i].is_virtual)
            return po_fail(PO_ERR_INVALID_ARG, "device \"%s\" is virtual: its figures come from the catalog",
                           devs->dev[i].id);

    po_hw_profile *p = calloc(1, sizeof *p);
    int n = devs->n, nl = n * (n - 1);
    if (p) {
        p->devices = calloc((size_t)(n ? n : 1), sizeof *p->devices);
        p->perf = calloc((size_t)(n ? n : 1), sizeof *p->perf);
        p->links = calloc((size_t)(nl > 0 ? nl : 1), sizeof *p->links);
    }
    if (!p || !p->devices || !p->perf || !p->links) {
        po_hw_profile_free(p);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    snprintf(p->fingerprint, sizeof p->fingerprint, "%s", m->fingerprint);
    snprintf(p->gemm_library, sizeof p->gemm_library, "%s", po_gemm_provider_name(po_get_gemm_provider()));
    p->level = o->level;
    p->n_devices = n;
    p->n_links = nl > 0 ? nl : 0;
    memcpy(p->devices, devs->dev, (size_t)n * sizeof *p->devices);

    /* The cache: unusable (no HOME) or unreadable means measuring, never failing. */
    char dir[4096], path[4200];
    bool use_cache = !(o->cache_dir && !o->cache_dir[0]);
    if (use_cache && o->cache_dir)
        snprintf(dir, sizeof dir, "%s", o->cache_dir);
    else if (use_cache && po_hw_cache_dir(dir, sizeof dir) != PO_OK)
        use_cache = false;
    po_hw_profile cached = {0};
    bool have_cached = false;
    if (use_cache) {
        snprintf(path, sizeof path, "%s/hw-%s.json", dir, m->fingerprint);
        p->cache_path = strdup(path);
        have_cached = po__cache_load(path, m->fingerprint, p->gemm_library, &cached);
    }

    po_status st = PO_OK;
    for (int i = 0; i < n && !st; i++) {
        int ci = have_cached && !o->refresh ? find_device(&cached, p->devices[i].id) : -1;
        if (ci >= 0 && cached.perf[ci].level >= o->level) {
            p->perf[i] = cached.perf[ci];
            continue;
        }
        if (!m->real) {
            st =
                po_fail(PO_ERR_UNSUPPORTED, "device \"%s\": a synthetic topology cannot be measured", p->devices[i].id);
            break;
        }
        st = measure_device(m, &p->devices[i], &c, &p->perf[i]);
        p->measured++;
    }
    if (!st && !m->real) {
        for (int i = 0; i < p->n_links && !st; i++)
            if (!have_cached || find_link(&cached, p->links[i].from, p->links[i].to) < 0)
                st = po_fail(PO_ERR_UNSUPPORTED, "a synthetic topology cannot be measured");
    }
    if (!st) st = measure_links(m, have_cached ? &cached : NULL, &c, p, o->refresh);
    p->from_cache = p->measured == 0 && have_cached;
    if (!st && use_cache && p->measured > 0 && !overrides) {
        po_hw_profile all;
        if (merged(have_cached ? &cached : NULL, p, &all) == PO_OK) {
            /* A cache that cannot be written costs the next run a measurement, nothing more. */
            po__cache_save(path, &all);
            po__profile_clear(&all);
        }
        po_clear_error();
    }
    po__profile_clear(&cached);
    if (st) {
        po_hw_profile_free(p);
        return st;
    }
    *out = p;
    return PO_OK;
}

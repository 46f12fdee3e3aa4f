/* Cluster files (po_cluster_parse): devices that need not be present, by catalog entry or by
 * figures, and the links between them. Every error names the file, line and column. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

typedef struct {
    const char *text, *origin;
} jctx;

/* path: up to 4 elements; "#N" is an array index. */
static po_status jfail(const jctx *x, const char *const *path, int depth, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static po_status jfail(const jctx *x, const char *const *path, int depth, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    po_status st = po__json_failv(x->text, x->origin, path, depth, fmt, ap);
    va_end(ap);
    return st;
}

static bool allowed(const char *key, const char *const *keys) {
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0) return true;
    return false;
}

/* A number at obj[key] (path prefix p of depth d): PO_OK with *v, or *v unchanged when absent. */
static po_status num(const jctx *x, json_t *obj, const char *key, const char **p, int d, bool positive, double *v) {
    json_t *j = json_object_get(obj, key);
    if (!j) return PO_OK;
    p[d] = key;
    if (!json_is_number(j)) return jfail(x, p, d + 1, "must be a number");
    double n = json_number_value(j);
    if (!isfinite(n) || n < 0.0 || (positive && n <= 0.0))
        return jfail(x, p, d + 1, "must be %s", positive ? "positive" : "zero or more");
    *v = n;
    return PO_OK;
}

static const char *const device_keys[] = {"id",
                                          "type",
                                          "kind",
                                          "name",
                                          "count",
                                          "peak_gflops",
                                          "mem_bandwidth_gbs",
                                          "memory_gb",
                                          "tdp_w",
                                          "idle_w",
                                          "elementwise_gelems",
                                          "dispatch_us",
                                          "cache_mb",
                                          "memory_group",
                                          NULL};

static po_status parse_device(const jctx *x, po_cluster *c, json_t *o, int index) {
    char idx[16];
    snprintf(idx, sizeof idx, "#%d", index);
    const char *p[4] = {"devices", idx, NULL, NULL};
    if (!json_is_object(o)) return jfail(x, p, 2, "a device is an object");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (!allowed(key, device_keys)) {
            p[2] = key;
            return jfail(x, p, 3,
                         "unknown key (a device takes id, type or peak_gflops, mem_bandwidth_gbs, "
                         "memory_gb, tdp_w, idle_w; optional kind, name, count, elementwise_gelems, "
                         "dispatch_us, cache_mb, memory_group)");
        }
    }
    json_t *jid = json_object_get(o, "id");
    p[2] = "id";
    if (!jid) return jfail(x, p, 2, "a device needs an \"id\"");
    if (!json_is_string(jid) || !json_string_value(jid)[0] || strlen(json_string_value(jid)) > 24)
        return jfail(x, p, 3, "must be a non-empty string of at most 24 characters");
    po_cluster_device d;
    memset(&d, 0, sizeof d);
    d.memory_group = -1;
    d.active_w = d.idle_w = NAN;
    d.perf.gemm_gflops = d.perf.mem_bandwidth_gbs = d.perf.elementwise_gelems = NAN;
    d.perf.dispatch_us = d.perf.gemm_call_us = NAN;
    snprintf(d.perf.source, sizeof d.perf.source, "cluster");
    d.dev.kind = PO_DEVICE_CUDA;
    d.dev.gpu = -1;
    d.dev.is_virtual = true;
    json_t *jtype = json_object_get(o, "type");
    if (jtype) {
        p[2] = "type";
        if (!json_is_string(jtype)) return jfail(x, p, 3, "must be a string (a catalog entry)");
        const po_catalog_entry *e = po_catalog_find(json_string_value(jtype));
        if (!e || po_catalog_virtual_device(json_string_value(jtype), &d.dev, &d.perf))
            return jfail(x, p, 3,
                         "\"%s\" is not in the hardware catalog (paropt devices --help lists the catalog; "
                         "or give peak_gflops, mem_bandwidth_gbs, memory_gb, tdp_w and idle_w)",
                         json_string_value(jtype));
        d.active_w = e->tdp_w;
        d.idle_w = e->idle_w;
        if (e->kind == PO_DEVICE_CPU) d.cache_bytes = 1 << 20;
        snprintf(d.power_source, sizeof d.power_source, "catalog:%s", e->id);
    } else {
        static const char *const need[] = {"peak_gflops", "mem_bandwidth_gbs", "memory_gb", "tdp_w", "idle_w"};
        for (int k = 0; k < 5; k++)
            if (!json_object_get(o, need[k]))
                return jfail(x, p, 2,
                             "a device without \"type\" needs \"%s\" (and peak_gflops, mem_bandwidth_gbs, "
                             "memory_gb, tdp_w, idle_w)",
                             need[k]);
        snprintf(d.power_source, sizeof d.power_source, "cluster file");
        snprintf(d.dev.name, sizeof d.dev.name, "%s", json_string_value(jid));
    }
    json_t *jk = json_object_get(o, "kind");
    if (jk) {
        p[2] = "kind";
        const char *k = json_string_value(jk);
        if (!k || (strcmp(k, "cuda") && strcmp(k, "cpu"))) return jfail(x, p, 3, "must be \"cuda\" or \"cpu\"");
        d.dev.kind = strcmp(k, "cpu") == 0 ? PO_DEVICE_CPU : PO_DEVICE_CUDA;
    }
    json_t *jn = json_object_get(o, "name");
    if (jn) {
        p[2] = "name";
        if (!json_is_string(jn)) return jfail(x, p, 3, "must be a string");
        snprintf(d.dev.name, sizeof d.dev.name, "%s", json_string_value(jn));
    }
    double gb = NAN, cache_mb = NAN, group = NAN, count = 1;
    po_status st = num(x, o, "peak_gflops", p, 2, true, &d.perf.gemm_gflops);
    if (!st && json_object_get(o, "peak_gflops")) d.perf.n_gemm = 0;
    if (!st) st = num(x, o, "mem_bandwidth_gbs", p, 2, true, &d.perf.mem_bandwidth_gbs);
    if (!st) st = num(x, o, "memory_gb", p, 2, true, &gb);
    if (!st) st = num(x, o, "tdp_w", p, 2, false, &d.active_w);
    if (!st) st = num(x, o, "idle_w", p, 2, false, &d.idle_w);
    if (!st) st = num(x, o, "elementwise_gelems", p, 2, true, &d.perf.elementwise_gelems);
    if (!st) st = num(x, o, "dispatch_us", p, 2, false, &d.perf.dispatch_us);
    if (!st) st = num(x, o, "cache_mb", p, 2, false, &cache_mb);
    if (!st) st = num(x, o, "memory_group", p, 2, false, &group);
    if (!st) st = num(x, o, "count", p, 2, true, &count);
    if (st) return st;
    if (json_object_get(o, "mem_bandwidth_gbs") && !json_object_get(o, "elementwise_gelems"))
        d.perf.elementwise_gelems = d.perf.mem_bandwidth_gbs / 8.0;
    if (!isnan(gb)) d.dev.memory_bytes = (int64_t)(gb * 1e9);
    if (d.dev.memory_bytes <= 0) {
        p[2] = "memory_gb";
        return jfail(x, p, 2, "this device needs \"memory_gb\" (the catalog entry has no memory size)");
    }
    if (!isnan(cache_mb)) d.cache_bytes = cache_mb * 1e6;
    if (!isnan(group)) d.memory_group = (int)group;
    if (d.idle_w > d.active_w) {
        p[2] = "idle_w";
        return jfail(x, p, 3, "idle power %.4g W exceeds the active power %.4g W", d.idle_w, d.active_w);
    }
    if (count != floor(count) || count > 4096) {
        p[2] = "count";
        return jfail(x, p, 3, "must be a whole number from 1 to 4096");
    }
    const char *id = json_string_value(jid);
    for (int k = 0; k < (int)count; k++) {
        if (count > 1)
            snprintf(d.dev.id, sizeof d.dev.id, "%s%d", id, k);
        else
            snprintf(d.dev.id, sizeof d.dev.id, "%s", id);
        if (po_cluster_find(c, d.dev.id) >= 0) {
            p[2] = "id";
            return jfail(x, p, 3, "device id \"%s\" appears twice", d.dev.id);
        }
        st = po_cluster_add(c, &d);
        if (st) return jfail(x, p, 2, "%s", po_last_error());
    }
    return PO_OK;
}

static po_status parse_link_figures(const jctx *x, json_t *o, const char **p, int d, po_link *l) {
    static const char *const keys[] = {"between", "bandwidth_gbs", "latency_us", "reclaim_ns_per_byte", "wake_us",
                                       NULL};
    if (!json_is_object(o)) return jfail(x, p, d, "a link is an object");
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (!allowed(key, keys) || (d == 1 && strcmp(key, "between") == 0)) {
            p[d] = key;
            return jfail(x, p, d + 1,
                         "unknown key (a link takes %sbandwidth_gbs, latency_us and optionally reclaim_ns_per_byte "
                         "and wake_us)",
                         d == 1 ? "" : "between, ");
        }
    }
    if (!json_object_get(o, "bandwidth_gbs") || !json_object_get(o, "latency_us"))
        return jfail(x, p, d, "a link needs \"bandwidth_gbs\" and \"latency_us\"");
    po_status st = num(x, o, "bandwidth_gbs", p, d, true, &l->bandwidth_gbs);
    if (!st) st = num(x, o, "latency_us", p, d, false, &l->latency_us);
    l->reclaim_ns_per_byte = 0.0;
    if (!st && json_object_get(o, "reclaim_ns_per_byte"))
        st = num(x, o, "reclaim_ns_per_byte", p, d, false, &l->reclaim_ns_per_byte);
    l->wake_us = 0.0;
    if (!st && json_object_get(o, "wake_us")) st = num(x, o, "wake_us", p, d, false, &l->wake_us);
    return st;
}

static po_status parse_link(const jctx *x, po_cluster *c, json_t *o, int index) {
    char idx[16];
    snprintf(idx, sizeof idx, "#%d", index);
    const char *p[4] = {"links", idx, NULL, NULL};
    po_link l;
    po_status st = parse_link_figures(x, o, p, 2, &l);
    if (st) return st;
    json_t *b = json_object_get(o, "between");
    p[2] = "between";
    if (!b) return jfail(x, p, 2, "a link needs \"between\": [device, device]");
    if (!json_is_array(b) || json_array_size(b) != 2 || !json_is_string(json_array_get(b, 0)) ||
        !json_is_string(json_array_get(b, 1)))
        return jfail(x, p, 3, "must be two device ids (\"*\" for every device)");
    const char *end[2];
    int at[2];
    for (int k = 0; k < 2; k++) {
        end[k] = json_string_value(json_array_get(b, (size_t)k));
        at[k] = strcmp(end[k], "*") == 0 ? -2 : po_cluster_find(c, end[k]);
        if (at[k] == -1) {
            p[3] = k ? "#1" : "#0";
            return jfail(x, p, 4, "unknown device \"%s\"", end[k]);
        }
    }
    if (at[0] >= 0 && at[0] == at[1]) return jfail(x, p, 3, "a link joins two different devices");
    for (int i = 0; i < po_cluster_size(c); i++)
        for (int j = 0; j < po_cluster_size(c); j++) {
            if (i == j) continue;
            bool fwd = (at[0] == -2 || at[0] == i) && (at[1] == -2 || at[1] == j);
            bool rev = (at[0] == -2 || at[0] == j) && (at[1] == -2 || at[1] == i);
            if (fwd || rev) {
                const char *a = po_cluster_device_at(c, i)->dev.id, *bb = po_cluster_device_at(c, j)->dev.id;
                if ((st = po_cluster_set_link_directed(c, a, bb, l))) return jfail(x, p, 2, "%s", po_last_error());
            }
        }
    return PO_OK;
}

po_status po_cluster_parse(const char *text, const char *origin, po_cluster **out) {
    *out = NULL;
    jctx x = {text, origin ? origin : "cluster"};
    json_error_t err;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!root) return po__json_parse_fail(x.origin, &err);
    const char *p[4] = {NULL, NULL, NULL, NULL};
    po_cluster *c = NULL;
    po_status st = PO_OK;
    if (!json_is_object(root)) st = jfail(&x, p, 0, "a cluster file is a JSON object with \"devices\"");
    const char *key;
    json_t *v;
    if (!st) json_object_foreach(root, key, v) {
            if (!st && strcmp(key, "devices") && strcmp(key, "links") && strcmp(key, "default_link")) {
                p[0] = key;
                st = jfail(&x, p, 1, "unknown key (a cluster has devices, links and default_link)");
            }
        }
    json_t *devs = st ? NULL : json_object_get(root, "devices");
    if (!st && (!json_is_array(devs) || json_array_size(devs) == 0)) {
        p[0] = "devices";
        st = jfail(&x, p, devs ? 1 : 0, "a cluster needs \"devices\": a non-empty array");
    }
    if (!st) st = po_cluster_new(&c);
    for (size_t i = 0; !st && i < json_array_size(devs); i++)
        st = parse_device(&x, c, json_array_get(devs, i), (int)i);
    json_t *dl = st ? NULL : json_object_get(root, "default_link");
    if (dl) {
        po_link l;
        p[0] = "default_link";
        st = parse_link_figures(&x, dl, p, 1, &l);
        if (!st) st = po_cluster_set_default_link(c, l);
    }
    json_t *links = st ? NULL : json_object_get(root, "links");
    if (links && !json_is_array(links)) {
        p[0] = "links";
        st = jfail(&x, p, 1, "must be an array of links");
    }
    for (size_t i = 0; !st && links && i < json_array_size(links); i++)
        st = parse_link(&x, c, json_array_get(links, i), (int)i);
    json_decref(root);
    if (st) {
        po_cluster_free(c);
        return st;
    }
    *out = c;
    return PO_OK;
}

po_status po__read_text_file(const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return po_fail(PO_ERR_IO, "cannot open \"%s\": %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n + 1 >= cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) return po_fail(PO_ERR_NO_MEMORY, "\"%s\": out of memory (or larger than 64 MiB)", path);
    if (bad) {
        free(buf);
        return po_fail(PO_ERR_IO, "cannot read \"%s\"", path);
    }
    buf[n] = 0;
    *out = buf;
    return PO_OK;
}

po_status po_cluster_load(const char *path, po_cluster **out) {
    char *text;
    po_status st = po__read_text_file(path, &text);
    if (st) return st;
    st = po_cluster_parse(text, path, out);
    free(text);
    return st;
}

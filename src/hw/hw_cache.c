/* The hardware cache: measured figures as JSON, one file per hardware fingerprint
 * ($XDG_CACHE_HOME/paropt/hw-<fingerprint>.json). Reading is forgiving — a file that is
 * missing, damaged, from another machine or another paropt is simply not used — because the
 * cache only saves time: the worst a bad file may cost is a measurement. Writing is atomic,
 * so two paropt processes or a crash never leave half a file. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hw/hw_internal.h"
#include "io/atomic_file.h"

/* 2: links between CPU devices carry reclaim_ns_per_byte; 3: and wake_us */
#define CACHE_FORMAT "paropt hw cache 3"

po_status po_hw_cache_dir(char *buf, size_t size) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    /* The XDG spec: a relative XDG_CACHE_HOME is invalid and must be ignored. */
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, size, "%s/paropt", xdg);
    else if (home && home[0])
        n = snprintf(buf, size, "%s/.cache/paropt", home);
    else
        return po_fail(PO_ERR_NOT_FOUND, "no cache directory: neither XDG_CACHE_HOME nor HOME is set");
    if (n < 0 || (size_t)n >= size) return po_fail(PO_ERR_RANGE, "cache directory path too long");
    return PO_OK;
}

void po__profile_clear(po_hw_profile *p) {
    free(p->devices);
    free(p->perf);
    free(p->links);
    free(p->cache_path);
    p->devices = NULL;
    p->perf = NULL;
    p->links = NULL;
    p->cache_path = NULL;
    p->n_devices = p->n_links = 0;
}

/* --- writing --------------------------------------------------------------------------------- */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *device_json(const po_device *d, const po_device_perf *p) {
    json_t *curve = json_array();
    for (int i = 0; i < p->n_gemm; i++)
        json_array_append_new(curve,
                              json_pack("{sI sI sI so}", "m", (json_int_t)p->gemm[i].m, "n", (json_int_t)p->gemm[i].n,
                                        "k", (json_int_t)p->gemm[i].k, "gflops", num(p->gemm[i].gflops)));
    return json_pack(
        "{ss ss si si si ss sI ss ss so so so so so so}", "id", d->id, "kind", po_device_kind_name(d->kind),
        "first_core", d->first_core, "n_cores", d->n_cores, "gpu", d->gpu, "name", d->name, "memory_bytes",
        (json_int_t)d->memory_bytes, "bench", po_bench_level_name(p->level), "source", p->source, "gemm", curve,
        "gemm_gflops", num(p->gemm_gflops), "mem_bandwidth_gbs", num(p->mem_bandwidth_gbs), "elementwise_gelems",
        num(p->elementwise_gelems), "dispatch_us", num(p->dispatch_us), "gemm_call_us", num(p->gemm_call_us));
}

static po_status mkdirs(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return po_fail(PO_ERR_RANGE, "cache directory path too long");
    for (char *p = path + 1;; p++) {
        bool end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return po_fail(PO_ERR_IO, "cannot create %s: %s", path, strerror(errno));
            if (end) break;
            *p = '/';
        }
    }
    return PO_OK;
}

po_status po__cache_save(const char *path, const po_hw_profile *p) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        po_status st = mkdirs(dir);
        if (st) return st;
    }
    json_t *devices = json_array(), *links = json_array();
    for (int i = 0; i < p->n_devices; i++)
        if (strcmp(p->perf[i].source, "none") != 0)
            json_array_append_new(devices, device_json(&p->devices[i], &p->perf[i]));
    for (int i = 0; i < p->n_links; i++) {
        const po_link_perf *l = &p->links[i];
        if (!isfinite(l->bandwidth_gbs)) continue;
        json_t *o = json_pack("{ss ss so so sb ss}", "from", l->from, "to", l->to, "bandwidth_gbs",
                              num(l->bandwidth_gbs), "latency_us", num(l->latency_us), "measured", l->measured, "bench",
                              po_bench_level_name(l->level));
        if (o && isfinite(l->reclaim_ns_per_byte))
            json_object_set_new(o, "reclaim_ns_per_byte", json_real(l->reclaim_ns_per_byte));
        if (o && isfinite(l->wake_us)) json_object_set_new(o, "wake_us", json_real(l->wake_us));
        json_array_append_new(links, o);
    }
    json_t *root = json_pack("{ss ss ss ss so so}", "format", CACHE_FORMAT, "paropt_version", PO_VERSION, "fingerprint",
                             p->fingerprint, "gemm_library", p->gemm_library, "devices", devices, "links", links);
    if (!root) return po_fail(PO_ERR_NO_MEMORY, "out of memory writing %s", path);
    po_atomic_file af;
    po_status st = po_atomic_begin(path, &af);
    if (!st) {
        if (json_dumpf(root, af.fp, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0 || fputc('\n', af.fp) == EOF) {
            po_atomic_abort(&af);
            st = po_fail(PO_ERR_IO, "cannot write %s", path);
        } else {
            st = po_atomic_commit(&af);
        }
    }
    json_decref(root);
    return st;
}

/* --- reading --------------------------------------------------------------------------------- */

/* A number, or null for unknown (NaN). false for anything else. */
static bool get_num(json_t *o, const char *key, double *out) {
    json_t *v = json_object_get(o, key);
    if (json_is_null(v)) {
        *out = NAN;
        return true;
    }
    if (!json_is_number(v)) return false;
    *out = json_number_value(v);
    return isfinite(*out) && *out >= 0;
}

static bool get_str(json_t *o, const char *key, char *buf, size_t size) {
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || strlen(s) >= size || !s[0]) return false;
    memcpy(buf, s, strlen(s) + 1);
    return true;
}

static bool get_level(json_t *o, po_bench_level *out) {
    const char *s = json_string_value(json_object_get(o, "bench"));
    return s && po_bench_level_parse(s, out) == PO_OK;
}

static bool read_device(json_t *o, po_device *d, po_device_perf *p) {
    memset(d, 0, sizeof *d);
    po__perf_unknown(p, "none");
    char kind[8];
    json_t *curve = json_object_get(o, "gemm");
    if (!json_is_object(o) || !get_str(o, "id", d->id, sizeof d->id) || !get_str(o, "kind", kind, sizeof kind) ||
        !get_str(o, "source", p->source, sizeof p->source) || !get_level(o, &p->level) || !json_is_array(curve) ||
        json_array_size(curve) > PO_GEMM_CURVE_MAX)
        return false;
    d->kind = strcmp(kind, "cuda") == 0 ? PO_DEVICE_CUDA : PO_DEVICE_CPU;
    d->first_core = (int)json_integer_value(json_object_get(o, "first_core"));
    d->n_cores = (int)json_integer_value(json_object_get(o, "n_cores"));
    d->gpu = (int)json_integer_value(json_object_get(o, "gpu"));
    d->memory_bytes = json_integer_value(json_object_get(o, "memory_bytes"));
    const char *name = json_string_value(json_object_get(o, "name"));
    snprintf(d->name, sizeof d->name, "%s", name ? name : "");
    p->n_gemm = (int)json_array_size(curve);
    for (int i = 0; i < p->n_gemm; i++) {
        json_t *pt = json_array_get(curve, (size_t)i);
        p->gemm[i].m = json_integer_value(json_object_get(pt, "m"));
        p->gemm[i].n = json_integer_value(json_object_get(pt, "n"));
        p->gemm[i].k = json_integer_value(json_object_get(pt, "k"));
        if (p->gemm[i].m <= 0 || p->gemm[i].n <= 0 || p->gemm[i].k <= 0 || !get_num(pt, "gflops", &p->gemm[i].gflops))
            return false;
    }
    return get_num(o, "gemm_gflops", &p->gemm_gflops) && get_num(o, "mem_bandwidth_gbs", &p->mem_bandwidth_gbs) &&
           get_num(o, "elementwise_gelems", &p->elementwise_gelems) && get_num(o, "dispatch_us", &p->dispatch_us) &&
           get_num(o, "gemm_call_us", &p->gemm_call_us);
}

static bool read_link(json_t *o, po_link_perf *l) {
    memset(l, 0, sizeof *l);
    json_t *measured = json_object_get(o, "measured");
    if (!json_is_object(o) || !get_str(o, "from", l->from, sizeof l->from) || !get_str(o, "to", l->to, sizeof l->to) ||
        !json_is_boolean(measured) || !get_level(o, &l->level))
        return false;
    l->measured = json_is_true(measured);
    /* Optional: links to or from a GPU have none. */
    json_t *reclaim = json_object_get(o, "reclaim_ns_per_byte");
    l->reclaim_ns_per_byte = json_is_number(reclaim) ? json_number_value(reclaim) : NAN;
    if (reclaim && !(json_is_number(reclaim) && l->reclaim_ns_per_byte >= 0.0)) return false;
    json_t *wake = json_object_get(o, "wake_us");
    l->wake_us = json_is_number(wake) ? json_number_value(wake) : NAN;
    if (wake && !(json_is_number(wake) && l->wake_us >= 0.0)) return false;
    return get_num(o, "bandwidth_gbs", &l->bandwidth_gbs) && get_num(o, "latency_us", &l->latency_us);
}

bool po__cache_load(const char *path, const char *fingerprint, const char *gemm_library, po_hw_profile *out) {
    memset(out, 0, sizeof *out);
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!root) return false;
    const char *format = json_string_value(json_object_get(root, "format"));
    const char *version = json_string_value(json_object_get(root, "paropt_version"));
    const char *fp = json_string_value(json_object_get(root, "fingerprint"));
    const char *gemm = json_string_value(json_object_get(root, "gemm_library"));
    json_t *devices = json_object_get(root, "devices"), *links = json_object_get(root, "links");
    bool ok = format && strcmp(format, CACHE_FORMAT) == 0 && version && strcmp(version, PO_VERSION) == 0 && fp &&
              strcmp(fp, fingerprint) == 0 && gemm && strcmp(gemm, gemm_library) == 0 && json_is_array(devices) &&
              json_is_array(links);
    if (ok) {
        size_t nd = json_array_size(devices), nl = json_array_size(links);
        out->devices = calloc(nd ? nd : 1, sizeof *out->devices);
        out->perf = calloc(nd ? nd : 1, sizeof *out->perf);
        out->links = calloc(nl ? nl : 1, sizeof *out->links);
        ok = out->devices && out->perf && out->links;
        for (size_t i = 0; ok && i < nd; i++)
            ok = read_device(json_array_get(devices, i), &out->devices[i], &out->perf[i]);
        for (size_t i = 0; ok && i < nl; i++)
            ok = read_link(json_array_get(links, i), &out->links[i]);
        out->n_devices = (int)nd;
        out->n_links = (int)nl;
        snprintf(out->fingerprint, sizeof out->fingerprint, "%s", fingerprint);
        snprintf(out->gemm_library, sizeof out->gemm_library, "%s", gemm_library);
    }
    json_decref(root);
    if (!ok) po__profile_clear(out);
    return ok;
}

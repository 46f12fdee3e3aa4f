/* The hardware catalog: datasheet figures of known GPUs and CPU cores. The data lives in
 * data/hw_catalog.json (each entry cites its source: vendor datasheets and architecture
 * whitepapers; idle powers are estimates) and is compiled into the library by
 * cmake/embed_text.cmake, so no file is needed at run time. It is parsed once, on first use. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hw/hw_internal.h"

static const char *const prec_names[PO_PREC_COUNT] = {"fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8"};

const char *po_precision_name(po_precision p) { return (unsigned)p < PO_PREC_COUNT ? prec_names[p] : "?"; }

typedef struct {
    po_catalog_entry e;
    char **match; /* patterns, each a space-separated list of words */
    int n_match;
} entry;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static entry *entries;
static int n_entries;

/* Used when the embedded catalog cannot be parsed (a build defect the catalog test catches),
 * so that callers promised an entry still get one. */
static const po_catalog_entry fallback_cpu = {"generic-x86-64",
                                              "Generic x86-64 core (assumed figures)",
                                              PO_DEVICE_CPU,
                                              "unknown",
                                              true,
                                              1,
                                              {25, 50, 0, 0, 0, 0, 0},
                                              5,
                                              0,
                                              5,
                                              1.5,
                                              "an assumption, not a datasheet"};

static char *dup_str(json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return strdup(s ? s : "");
}

static void load(void) {
    json_error_t err;
    json_t *root = json_loads((const char *)po__hw_catalog_json, 0, &err);
    json_t *list = json_object_get(root, "entries");
    size_t n = json_array_size(list);
    entries = calloc(n ? n : 1, sizeof *entries);
    if (!entries) n = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(list, i);
        entry *x = &entries[n_entries];
        po_catalog_entry *e = &x->e;
        e->id = dup_str(o, "id");
        e->name = dup_str(o, "name");
        e->uarch = dup_str(o, "uarch");
        e->source = dup_str(o, "source");
        const char *kind = json_string_value(json_object_get(o, "kind"));
        e->kind = kind && strcmp(kind, "cpu") == 0 ? PO_DEVICE_CPU : PO_DEVICE_CUDA;
        e->per_core = json_is_true(json_object_get(o, "per_core"));
        e->cores = (int)json_integer_value(json_object_get(o, "cores"));
        json_t *peak = json_object_get(o, "peak_tflops");
        double scale = 1000.0;
        if (!peak) {
            peak = json_object_get(o, "peak_gflops");
            scale = 1.0;
        }
        for (int p = 0; p < PO_PREC_COUNT; p++)
            e->peak_gflops[p] = json_number_value(json_object_get(peak, prec_names[p])) * scale;
        e->mem_bandwidth_gbs = json_number_value(json_object_get(o, "mem_bandwidth_gbs"));
        e->memory_bytes = (int64_t)(json_number_value(json_object_get(o, "memory_gib")) * 1073741824.0);
        e->tdp_w = json_number_value(json_object_get(o, "tdp_w"));
        e->idle_w = json_number_value(json_object_get(o, "idle_w"));
        json_t *match = json_object_get(o, "match");
        x->n_match = (int)json_array_size(match);
        x->match = calloc((size_t)(x->n_match ? x->n_match : 1), sizeof *x->match);
        for (int k = 0; x->match && k < x->n_match; k++) {
            const char *pat = json_string_value(json_array_get(match, (size_t)k));
            x->match[k] = strdup(pat ? pat : "");
        }
        if (!x->match) x->n_match = 0;
        if (e->id && e->name && e->uarch && e->source) n_entries++;
    }
    json_decref(root);
}

int po_catalog_count(void) {
    pthread_once(&once, load);
    return n_entries;
}

const po_catalog_entry *po_catalog_get(int i) {
    pthread_once(&once, load);
    return i >= 0 && i < n_entries ? &entries[i].e : NULL;
}

/* Splits s into lower-case words at every character that is not a letter or digit
 * ("NVIDIA A100-SXM4-40GB" -> nvidia a100 sxm4 40gb). Returns the count. */
static int words(const char *s, char out[][32], int max) {
    int n = 0;
    while (*s && n < max) {
        while (*s && !isalnum((unsigned char)*s))
            s++;
        int len = 0;
        while (isalnum((unsigned char)*s)) {
            if (len < 31) out[n][len++] = (char)tolower((unsigned char)*s);
            s++;
        }
        if (len) out[n++][len] = 0;
    }
    return n;
}

/* Number of words of pattern when each appears among the name's words, else 0. */
static int pattern_score(const char *pattern, char name_words[][32], int n_name) {
    char pw[8][32];
    if (!pattern) return 0;
    int np = words(pattern, pw, 8);
    for (int i = 0; i < np; i++) {
        bool found = false;
        for (int j = 0; j < n_name && !found; j++)
            found = strcmp(pw[i], name_words[j]) == 0;
        if (!found) return 0;
    }
    return np;
}

const po_catalog_entry *po_catalog_find(const char *name) {
    pthread_once(&once, load);
    if (!name) return NULL;
    for (int i = 0; i < n_entries; i++)
        if (strcasecmp(entries[i].e.id, name) == 0 || strcasecmp(entries[i].e.name, name) == 0) return &entries[i].e;
    char nw[32][32];
    int nn = words(name, nw, 32);
    const po_catalog_entry *best = NULL;
    int best_score = 0;
    for (int i = 0; i < n_entries; i++)
        for (int k = 0; k < entries[i].n_match; k++) {
            int s = pattern_score(entries[i].match[k], nw, nn);
            if (s > best_score) {
                best_score = s;
                best = &entries[i].e;
            }
        }
    return best;
}

const po_catalog_entry *po_catalog_cpu(const po_cpu_info *cpu) {
    pthread_once(&once, load);
    const po_catalog_entry *by_name = po_catalog_find(cpu->model);
    if (by_name && by_name->kind == PO_DEVICE_CPU) return by_name;
    const po_catalog_entry *generic = NULL;
    for (int i = 0; i < n_entries; i++) {
        const po_catalog_entry *e = &entries[i].e;
        if (e->kind != PO_DEVICE_CPU) continue;
        if (strcmp(e->uarch, cpu->uarch) == 0 && strcmp(e->uarch, "unknown") != 0) return e;
        if (strcmp(e->id, "generic-x86-64") == 0) generic = e;
    }
    return generic ? generic : &fallback_cpu;
}

void po__perf_unknown(po_device_perf *p, const char *source) {
    memset(p, 0, sizeof *p);
    snprintf(p->source, sizeof p->source, "%s", source);
    p->gemm_gflops = p->mem_bandwidth_gbs = p->elementwise_gelems = p->dispatch_us = p->gemm_call_us = NAN;
}

void po__perf_from_catalog(const po_catalog_entry *e, po_device_perf *p) {
    po__perf_unknown(p, "catalog");
    p->gemm_gflops = e->peak_gflops[PO_PREC_FP32];
    p->mem_bandwidth_gbs = e->mem_bandwidth_gbs;
    /* An element-wise op reads and writes 4 bytes per element: bandwidth-bound on any device. */
    p->elementwise_gelems = e->mem_bandwidth_gbs / 8.0;
}

po_status po_catalog_virtual_device(const char *name, po_device *dev, po_device_perf *perf) {
    const po_catalog_entry *e = po_catalog_find(name);
    if (!e) {
        char ids[1024];
        size_t used = 0;
        ids[0] = 0;
        for (int i = 0; i < n_entries && used < sizeof ids; i++)
            used += (size_t)snprintf(ids + used, sizeof ids - used, "%s%s", i ? ", " : "", entries[i].e.id);
        return po_fail(PO_ERR_NOT_FOUND, "\"%s\" is not in the hardware catalog (known: %s)", name ? name : "", ids);
    }
    memset(dev, 0, sizeof *dev);
    dev->kind = e->kind;
    dev->is_virtual = true;
    dev->gpu = -1;
    if (e->kind == PO_DEVICE_CPU) dev->n_cores = 1;
    snprintf(dev->id, sizeof dev->id, "virtual:%s", e->id);
    snprintf(dev->name, sizeof dev->name, "%s", e->name);
    dev->memory_bytes = e->memory_bytes;
    po__perf_from_catalog(e, perf);
    return PO_OK;
}

/* Plans cached by what they depend on: the graph (ops and shapes), the devices with their figures
 * and links, the measurements, the options. A model whose graph changes between steps (another
 * sequence length, another branch) is planned once per graph and reuses that plan after. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plan/plan_internal.h"

typedef struct {
    uint64_t key;
    po_plan plan;
} slot;

struct po_plan_cache {
    char *dir;
    slot *v;
    int n, cap;
};

po_status po_plan_cache_new(const char *dir, po_plan_cache **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    if (dir && !((*out)->dir = strdup(dir))) {
        free(*out);
        *out = NULL;
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    return PO_OK;
}

void po_plan_cache_free(po_plan_cache *pc) {
    if (!pc) return;
    for (int i = 0; i < pc->n; i++)
        po_plan_free(&pc->v[i].plan);
    free(pc->v);
    free(pc->dir);
    free(pc);
}

uint64_t po_plan_cache_key(const po_workload *w, const po_cost_model *cm, const po_plan_opts *o) {
    po_plan_opts d = po_plan_opts_default();
    if (!o) o = &d;
    uint64_t h = po__fnv_u64(PO__FNV_OFFSET, po_workload_signature(w));
    h = po__fnv_u64(h, po_cluster_signature(po_cost_model_cluster(cm)));
    h = po__fnv_u64(h, (uint64_t)po__cost_model_history_size(cm));
    for (int d = 0; d < po_cluster_size(po_cost_model_cluster(cm)); d++)
        h = po__fnv_f64(h, po_cost_model_contention(cm, d));
    h = po__fnv_u64(h, (uint64_t)o->objective);
    h = po__fnv_f64(h, isnan(o->max_slowdown_pct) ? -1.0 : o->max_slowdown_pct);
    h = po__fnv_u64(h, (uint64_t)o->strategies);
    h = po__fnv_u64(h, (uint64_t)o->top_k);
    h = po__fnv_u64(h, (uint64_t)o->recompute);
    h = po__fnv_u64(h, (uint64_t)o->max_micro_batches);
    return po__fnv_str(h, PO_VERSION);
}

static void file_of(const po_plan_cache *pc, uint64_t key, char *buf, size_t size) {
    snprintf(buf, size, "%s/plan-%016llx.json", pc->dir, (unsigned long long)key);
}

po_status po_plan_cache_get(po_plan_cache *pc, uint64_t key, po_plan *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < pc->n; i++)
        if (pc->v[i].key == key) return po_plan_copy(&pc->v[i].plan, out);
    if (pc->dir) {
        char path[4096];
        file_of(pc, key, path, sizeof path);
        po_plan p;
        if (po_plan_load(path, &p) == PO_OK) {
            po_status st = po_plan_cache_put(pc, key, &p);
            if (!st) st = po_plan_copy(&p, out);
            po_plan_free(&p);
            return st;
        }
    }
    return po_fail(PO_ERR_NOT_FOUND, "no cached plan");
}

po_status po_plan_cache_put(po_plan_cache *pc, uint64_t key, const po_plan *p) {
    int at = -1;
    for (int i = 0; i < pc->n; i++)
        if (pc->v[i].key == key) at = i;
    if (at < 0) {
        if (pc->n == pc->cap) {
            int cap = pc->cap ? 2 * pc->cap : 8;
            slot *nv = realloc(pc->v, (size_t)cap * sizeof *nv);
            if (!nv) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
            pc->v = nv;
            pc->cap = cap;
        }
        at = pc->n++;
        memset(&pc->v[at], 0, sizeof pc->v[at]);
    } else {
        po_plan_free(&pc->v[at].plan);
    }
    pc->v[at].key = key;
    po_status st = po_plan_copy(p, &pc->v[at].plan);
    if (st) {
        pc->v[at] = pc->v[--pc->n];
        return st;
    }
    if (pc->dir) {
        char path[4096];
        file_of(pc, key, path, sizeof path);
        mkdir(pc->dir, 0777); /* a failure shows in the save below, which is not an error either */
        po_plan_save(p, NULL, path);
        po_clear_error();
    }
    return PO_OK;
}

po_status po_plan_cached(po_plan_cache *pc, const po_workload *w, const po_cost_model *cm, const po_plan_opts *o,
                         po_plan *out, bool *hit) {
    uint64_t key = po_plan_cache_key(w, cm, o);
    *hit = false;
    if (po_plan_cache_get(pc, key, out) == PO_OK) {
        *hit = true;
        return PO_OK;
    }
    po_clear_error();
    po_status st = po_plan_search(w, cm, o, out);
    if (!st) st = po_plan_cache_put(pc, key, out);
    return st;
}

/* Parameter storage: one values buffer, one gradients buffer, one optimizer-state buffer. */
#include "paropt/params.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "graph/node.h"

struct po_params {
    int n;
    po_param_info *info;
    size_t total;
    float *values, *grads, *state;
    int state_slots;
    bool replica; /* values and state belong to another po_params */
};

/* Offsets are rounded to 16 floats so each parameter starts on a cache line: kernels and a
 * future all-reduce can use aligned vector loads on any parameter. */
#define PARAM_ALIGN_FLOATS 16

po_status po_params_new(const po_graph *g, po_params **out) {
    *out = NULL;
    if (g->status) return po_fail(g->status, "%s", g->error);
    po_params *p = calloc(1, sizeof *p);
    if (!p) return po_fail(PO_ERR_NO_MEMORY, "out of memory allocating parameters");
    p->n = g->n_params;
    p->info = calloc((size_t)(p->n ? p->n : 1), sizeof *p->info);
    if (!p->info) {
        free(p);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory allocating parameters");
    }
    size_t off = 0;
    for (int i = 0; i < p->n; i++) {
        const po_node *n = g->params[i];
        po_param_info *pi = &p->info[i];
        pi->name = strdup(n->name);
        pi->shape = n->shape;
        pi->numel = po__numel(n);
        pi->offset = off;
        pi->init = n->init;
        off += ((size_t)pi->numel + PARAM_ALIGN_FLOATS - 1) / PARAM_ALIGN_FLOATS * PARAM_ALIGN_FLOATS;
        if (!pi->name) {
            po_params_free(p);
            return po_fail(PO_ERR_NO_MEMORY, "out of memory allocating parameters");
        }
    }
    p->total = off;
    p->state_slots = g->optim_slots;
    p->values = po_aligned_calloc(off * sizeof(float));
    p->grads = po_aligned_calloc(off * sizeof(float));
    p->state = p->state_slots ? po_aligned_calloc(off * (size_t)p->state_slots * sizeof(float)) : NULL;
    if (!p->values || !p->grads || (p->state_slots && !p->state)) {
        po_params_free(p);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory allocating %zu parameter floats", off);
    }
    *out = p;
    return PO_OK;
}

void po_params_free(po_params *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++)
        free((char *)p->info[i].name);
    free(p->info);
    if (!p->replica) {
        po_aligned_free(p->values);
        po_aligned_free(p->state);
    }
    po_aligned_free(p->grads);
    free(p);
}

po_status po_params_new_replica(const po_params *base, po_params **out) {
    *out = NULL;
    po_params *p = calloc(1, sizeof *p);
    po_param_info *info = calloc((size_t)(base->n ? base->n : 1), sizeof *info);
    float *grads = po_aligned_calloc(base->total * sizeof(float));
    if (!p || !info || !grads) {
        free(p);
        free(info);
        po_aligned_free(grads);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for a parameter replica");
    }
    *p = *base;
    p->info = info;
    p->grads = grads;
    p->replica = true;
    for (int i = 0; i < p->n; i++) {
        info[i] = base->info[i];
        info[i].name = strdup(base->info[i].name);
        if (!info[i].name) {
            p->n = i;
            po_params_free(p);
            return po_fail(PO_ERR_NO_MEMORY, "out of memory for a parameter replica");
        }
    }
    *out = p;
    return PO_OK;
}

int po_params_count(const po_params *p) { return p->n; }
const po_param_info *po_params_info(const po_params *p, int i) { return i >= 0 && i < p->n ? &p->info[i] : NULL; }

int po_params_find(const po_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->info[i].name, name) == 0) return i;
    return -1;
}

size_t po_params_total(const po_params *p) { return p->total; }
float *po_params_values(po_params *p) { return p->values; }
float *po_params_grads(po_params *p) { return p->grads; }
float *po_params_state(po_params *p) { return p->state; }
int po_params_state_slots(const po_params *p) { return p->state_slots; }

size_t po_params_allocated_bytes(const po_params *p) {
    return p->total * sizeof(float) * (p->replica ? 1 : (size_t)(2 + p->state_slots));
}

void po_params_init(po_params *p, uint64_t seed) {
    po_rng rng;
    po_rng_seed(&rng, seed);
    for (int i = 0; i < p->n; i++) {
        const po_param_info *pi = &p->info[i];
        float *v = p->values + pi->offset;
        for (int64_t k = 0; k < pi->numel; k++) {
            switch (pi->init.kind) {
            case PO_INIT_ZEROS: v[k] = 0.0f; break;
            case PO_INIT_ONES: v[k] = 1.0f; break;
            case PO_INIT_UNIFORM: v[k] = (2.0f * po_rng_uniform(&rng) - 1.0f) * pi->init.scale; break;
            case PO_INIT_NORMAL: v[k] = po_rng_normal(&rng) * pi->init.scale; break;
            }
        }
    }
}

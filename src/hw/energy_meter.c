/* po_meter: one window interface over the energy sources — NVML for GPUs, RAPL for the CPU,
 * the model where no counter can be read — each part keeping its own source string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/energy_internal.h"

typedef enum { PART_GPU, PART_RAPL, PART_MODEL } part_kind;

typedef struct {
    part_kind kind;
    int index; /* GPU or zone */
    char name[64];
} domain;

struct po_meter {
    po__gpu_meter *gpu;
    po__rapl_zone *zones;
    int n_zones;
    bool model_on;
    po__model_meter model;
    domain *dom;
    int n_dom;
    char source[64];
    char note[512];
    double t_begin;
    bool open;
};

static const char *const SRC_NVML = "measured:nvml", *const SRC_RAPL = "measured:rapl",
                         *const SRC_MODEL = "estimated:model";

po_meter_opts po_meter_opts_default(void) { return (po_meter_opts){.kind = PO_METER_AUTO, .sample_period_s = 0.05}; }

static void add_note(po_meter *m, const char *fmt, const char *detail) {
    size_t used = strlen(m->note);
    snprintf(m->note + used, sizeof m->note - used, fmt, used ? "; " : "", detail);
}

static const char *part_source(part_kind k) { return k == PART_GPU ? SRC_NVML : k == PART_RAPL ? SRC_RAPL : SRC_MODEL; }

static po_status build_domains(po_meter *m) {
    int n = (m->gpu ? po__gpu_meter_count(m->gpu) : 0) + m->n_zones + (m->model_on ? 1 : 0);
    m->dom = calloc((size_t)(n ? n : 1), sizeof *m->dom);
    if (!m->dom) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; m->gpu && i < po__gpu_meter_count(m->gpu); i++) {
        domain *d = &m->dom[m->n_dom++];
        *d = (domain){PART_GPU, i, ""};
        snprintf(d->name, sizeof d->name, "gpu%d", i);
    }
    for (int i = 0; i < m->n_zones; i++) {
        domain *d = &m->dom[m->n_dom++];
        *d = (domain){PART_RAPL, i, ""};
        snprintf(d->name, sizeof d->name, "%s", m->zones[i].name);
    }
    if (m->model_on) m->dom[m->n_dom++] = (domain){PART_MODEL, 0, "cpu"};
    /* "measured:nvml+measured:rapl": each kind once, in that order. */
    const char *kinds[3] = {m->gpu ? SRC_NVML : NULL, m->n_zones ? SRC_RAPL : NULL, m->model_on ? SRC_MODEL : NULL};
    for (int k = 0; k < 3; k++)
        if (kinds[k]) {
            size_t used = strlen(m->source);
            snprintf(m->source + used, sizeof m->source - used, "%s%s", used ? "+" : "", kinds[k]);
        }
    return PO_OK;
}

po_status po_meter_new(const po_meter_opts *o, po_meter **out) {
    *out = NULL;
    po_meter_opts def = po_meter_opts_default();
    if (!o) o = &def;
    if ((unsigned)o->kind > PO_METER_MODEL)
        return po_fail(PO_ERR_INVALID_ARG, "unknown energy meter kind %d", (int)o->kind);
    po_meter *m = calloc(1, sizeof *m);
    if (!m) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    const char *root = o->root ? o->root : "";
    po_status st = PO_OK;

    if (o->kind == PO_METER_AUTO || o->kind == PO_METER_NVML) {
        st = po__gpu_meter_open(o->nvml_lib, o->sample_period_s, &m->gpu);
        if (st && o->kind == PO_METER_AUTO) {
            add_note(m, "%sGPUs: %s", po_last_error());
            st = PO_OK;
        }
    }
    if (!st && (o->kind == PO_METER_AUTO || o->kind == PO_METER_RAPL)) {
        st = po__rapl_open(root, &m->zones, &m->n_zones);
        if (st && o->kind == PO_METER_AUTO) {
            add_note(m, "%sRAPL: %s", po_last_error());
            st = PO_OK;
        }
    }
    if (!st && (o->kind == PO_METER_MODEL || (o->kind == PO_METER_AUTO && m->n_zones == 0))) {
        st = po__model_open(o, &m->model);
        m->model_on = st == PO_OK;
    }
    if (!st) st = build_domains(m);
    if (st) {
        po_meter_free(m);
        return st;
    }
    po_clear_error();
    *out = m;
    return PO_OK;
}

void po_meter_free(po_meter *m) {
    if (!m) return;
    po__gpu_meter_free(m->gpu);
    free(m->zones);
    if (m->model_on) po__model_free(&m->model);
    free(m->dom);
    free(m);
}

const char *po_meter_source(const po_meter *m) { return m->source; }
const char *po_meter_note(const po_meter *m) { return m->note; }

po_status po_meter_begin(po_meter *m) {
    /* One clock reading for every part: each integrates over exactly the reported window. */
    double t = po__hw_now();
    po_status st = m->gpu ? po__gpu_meter_begin(m->gpu, t) : PO_OK;
    for (int i = 0; i < m->n_zones && !st; i++) {
        st = po__rapl_sample(&m->zones[i]); /* sets the counter's starting point */
        m->zones[i].joules = 0;
    }
    if (!st && m->model_on) st = po__model_begin(&m->model, t);
    m->t_begin = t;
    m->open = st == PO_OK;
    return st;
}

static po_status sample_at(po_meter *m, double t) {
    if (!m->open) return po_fail(PO_ERR_INVALID_ARG, "energy meter: no window open (call po_meter_begin)");
    po_status st = m->gpu ? po__gpu_meter_sample(m->gpu, t) : PO_OK;
    for (int i = 0; i < m->n_zones && !st; i++)
        st = po__rapl_sample(&m->zones[i]);
    if (!st && m->model_on) st = po__model_sample(&m->model, t);
    return st;
}

po_status po_meter_sample(po_meter *m) { return sample_at(m, po__hw_now()); }

static double domain_joules(const po_meter *m, const domain *d) {
    switch (d->kind) {
    case PART_GPU: return po__gpu_meter_joules(m->gpu, d->index);
    case PART_RAPL: return m->zones[d->index].joules;
    default: return m->model.joules;
    }
}

static po_status read_at(po_meter *m, double t, po_energy_reading *out) {
    memset(out, 0, sizeof *out);
    out->source = m->source;
    po_status st = sample_at(m, t);
    if (st) return st;
    for (int i = 0; i < m->n_dom; i++)
        out->joules += domain_joules(m, &m->dom[i]);
    out->seconds = t - m->t_begin;
    out->watts = out->seconds > 0 ? out->joules / out->seconds : 0.0;
    return PO_OK;
}

po_status po_meter_read(po_meter *m, po_energy_reading *out) { return read_at(m, po__hw_now(), out); }

po_status po_meter_end(po_meter *m, po_energy_reading *out) {
    double t = po__hw_now();
    /* Stopping the sampler takes its last power reading: the window's right edge. */
    if (m->open && m->gpu) po__gpu_meter_stop(m->gpu, t);
    po_status st = read_at(m, t, out);
    m->open = false;
    return st;
}

int po_meter_n_domains(const po_meter *m) { return m->n_dom; }

po_status po_meter_domain(const po_meter *m, int i, po_energy_domain *out) {
    if (i < 0 || i >= m->n_dom)
        return po_fail(PO_ERR_RANGE, "energy domain %d: no such domain (%d present)", i, m->n_dom);
    out->name = m->dom[i].name;
    out->source = part_source(m->dom[i].kind);
    out->joules = domain_joules(m, &m->dom[i]);
    return PO_OK;
}

/* po_machine: discovery of the CPU and the GPUs, and the fingerprint the cache is keyed by. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/hw_internal.h"

po_hw_opts po_hw_opts_default(void) { return (po_hw_opts){0}; }

double po__hw_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

uint64_t po__fnv1a(const void *data, size_t len, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

const char *po_device_kind_name(po_device_kind k) { return k == PO_DEVICE_CUDA ? "cuda" : "cpu"; }

/* GPUs through the CUDA driver; NVML only adds figures to those. A GPU NVML sees but CUDA does
 * not cannot run anything, so it is not a device. */
static po_status discover_gpus(po_machine *m, const po_hw_opts *o) {
    char why[128];
    m->have_cuda = po__cuda_open(o->cuda_lib, &m->cuda, why, sizeof why);
    if (!m->have_cuda) {
        snprintf(m->cuda_status, sizeof m->cuda_status, "not present (%s)", why);
    } else {
        int n = 0;
        if (m->cuda.device_get_count(&n) != 0 || n < 0) n = 0;
        m->gpus = calloc((size_t)(n ? n : 1), sizeof *m->gpus);
        m->cu_dev = calloc((size_t)(n ? n : 1), sizeof *m->cu_dev);
        m->nvml_dev = calloc((size_t)(n ? n : 1), sizeof *m->nvml_dev);
        m->peer = calloc((size_t)(n ? n * n : 1), sizeof *m->peer);
        if (!m->gpus || !m->cu_dev || !m->nvml_dev || !m->peer) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        for (int i = 0; i < n; i++) {
            po_gpu_info *g = &m->gpus[m->n_gpus];
            po__cu_device d;
            if (m->cuda.device_get(&d, i) != 0) continue;
            m->cu_dev[m->n_gpus] = d;
            g->index = m->n_gpus;
            if (m->cuda.device_get_name(g->name, (int)sizeof g->name, d) != 0) snprintf(g->name, sizeof g->name, "GPU");
            g->name[sizeof g->name - 1] = 0;
            /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16, COMPUTE_CAPABILITY_MAJOR/MINOR = 75/76. */
            m->cuda.device_get_attribute(&g->sms, 16, d);
            m->cuda.device_get_attribute(&g->cc_major, 75, d);
            m->cuda.device_get_attribute(&g->cc_minor, 76, d);
            size_t bytes = 0;
            if (m->cuda.device_total_mem(&bytes, d) == 0) g->memory_bytes = (int64_t)bytes;
            if (m->cuda.device_get_pci_bus_id(g->pci_bus_id, (int)sizeof g->pci_bus_id, d) != 0) g->pci_bus_id[0] = 0;
            g->pci_bus_id[sizeof g->pci_bus_id - 1] = 0;
            m->n_gpus++;
        }
        for (int i = 0; i < m->n_gpus; i++)
            for (int j = 0; j < m->n_gpus; j++) {
                int can = 0;
                if (i != j && m->cuda.device_can_access_peer(&can, m->cu_dev[i], m->cu_dev[j]) == 0)
                    m->peer[i * m->n_gpus + j] = can != 0;
            }
        snprintf(m->cuda_status, sizeof m->cuda_status, "driver %d.%d, %d GPU%s", m->cuda.driver_version / 1000,
                 m->cuda.driver_version % 1000 / 10, m->n_gpus, m->n_gpus == 1 ? "" : "s");
    }

    m->have_nvml = po__nvml_open(o->nvml_lib, &m->nvml, why, sizeof why);
    if (!m->have_nvml) {
        snprintf(m->nvml_status, sizeof m->nvml_status, "not present (%s)", why);
        for (int i = 0; i < m->n_gpus; i++)
            po__nvml_fill(m, i); /* sets the unknowns */
        return PO_OK;
    }
    unsigned count = 0;
    if (m->nvml.device_get_count(&count) != 0) count = 0;
    for (int i = 0; i < m->n_gpus; i++) {
        po__nvml_device d = NULL;
        /* CUDA orders GPUs fastest first, NVML by PCI bus: match on the bus id where we can. */
        if (m->nvml.device_get_handle_by_pci_bus_id && m->gpus[i].pci_bus_id[0]) {
            if (m->nvml.device_get_handle_by_pci_bus_id(m->gpus[i].pci_bus_id, &d) != 0) d = NULL;
        } else if ((unsigned)i < count && m->nvml.device_get_handle_by_index((unsigned)i, &d) != 0) {
            d = NULL;
        }
        m->nvml_dev[i] = d;
        po__nvml_fill(m, i);
    }
    char version[80] = "?";
    if (!m->nvml.system_get_driver_version || m->nvml.system_get_driver_version(version, sizeof version) != 0)
        snprintf(version, sizeof version, "?");
    snprintf(m->nvml_status, sizeof m->nvml_status, "driver %s, %u GPU%s", version, count, count == 1 ? "" : "s");
    return PO_OK;
}

static void make_fingerprint(po_machine *m) {
    const po_cpu_info *c = &m->cpu;
    char text[512];
    int64_t mem_units = (c->memory_bytes + (128ll << 20)) / (256ll << 20);
    int len = snprintf(text, sizeof text, "paropt %s|%s|%s|%d.%d.%d|s%d c%d t%d n%d|%lld %lld %lld|m%lld|f%d%d%d%d%d",
                       PO_VERSION, c->vendor, c->model, c->family, c->model_id, c->stepping, c->sockets, c->cores,
                       c->pus, c->numa_nodes, (long long)c->l1d_bytes, (long long)c->l2_bytes, (long long)c->l3_bytes,
                       (long long)mem_units, c->features.avx2, c->features.fma, c->features.avx512f,
                       c->features.avx512_bf16, c->features.amx);
    uint64_t h = po__fnv1a(text, (size_t)len, PO__FNV_INIT);
    for (int i = 0; i < m->n_gpus; i++) {
        const po_gpu_info *g = &m->gpus[i];
        len = snprintf(text, sizeof text, "|%s|%lld|%s", g->name, (long long)g->memory_bytes, g->pci_bus_id);
        h = po__fnv1a(text, (size_t)len, h);
    }
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx", (unsigned long long)h);
}

po_status po_machine_discover(const po_hw_opts *o, po_machine **out) {
    *out = NULL;
    po_hw_opts def = po_hw_opts_default();
    if (!o) o = &def;
    po_machine *m = calloc(1, sizeof *m);
    if (!m) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    m->real = o->topology == NULL;
    po__cpu_identify(&m->cpu);
    po_status st = po__cpu_topology(m, o->topology);
    if (!st) st = discover_gpus(m, o);
    if (st) {
        po_machine_free(m);
        return st;
    }
    make_fingerprint(m);
    *out = m;
    return PO_OK;
}

void po_machine_free(po_machine *m) {
    if (!m) return;
    if (m->have_nvml) po__nvml_close(&m->nvml);
    if (m->have_cuda) po__cuda_close(&m->cuda);
    free(m->cores);
    free(m->gpus);
    free(m->cu_dev);
    free(m->nvml_dev);
    free(m->peer);
    free(m);
}

const po_cpu_info *po_machine_cpu(const po_machine *m) { return &m->cpu; }
int po_machine_n_gpus(const po_machine *m) { return m->n_gpus; }
const po_gpu_info *po_machine_gpu(const po_machine *m, int i) { return i >= 0 && i < m->n_gpus ? &m->gpus[i] : NULL; }
bool po_machine_gpu_peer(const po_machine *m, int from, int to) {
    if (from < 0 || to < 0 || from >= m->n_gpus || to >= m->n_gpus) return false;
    return m->peer[from * m->n_gpus + to];
}
const char *po_machine_cuda_status(const po_machine *m) { return m->cuda_status; }
const char *po_machine_nvml_status(const po_machine *m) { return m->nvml_status; }
const char *po_machine_fingerprint(const po_machine *m) { return m->fingerprint; }
bool po_machine_is_real(const po_machine *m) { return m->real; }

po_status po_machine_gpu_sample(const po_machine *m, int i, po_gpu_sample *out) {
    *out = (po_gpu_sample){NAN, -1, -1, -1};
    if (i < 0 || i >= m->n_gpus) return po_fail(PO_ERR_RANGE, "GPU %d: no such GPU (%d present)", i, m->n_gpus);
    po__nvml_device d = m->nvml_dev ? m->nvml_dev[i] : NULL;
    if (!m->have_nvml || !d) return PO_OK;
    const po__nvml *n = &m->nvml;
    unsigned v;
    if (n->device_get_power_usage(d, &v) == 0) out->power_w = v / 1000.0;
    po__nvml_utilization u;
    if (n->device_get_utilization && n->device_get_utilization(d, &u) == 0) {
        out->util_gpu_pct = (int)u.gpu;
        out->util_mem_pct = (int)u.memory;
    }
    if (n->device_get_clock_info && n->device_get_clock_info(d, PO__NVML_CLOCK_SM, &v) == 0) out->sm_clock_mhz = (int)v;
    return PO_OK;
}

/* NVML (libnvidia-ml.so.1), loaded at run time: power, power limits, clocks, utilization and
 * the energy counter. Like the CUDA driver it ships with the NVIDIA driver; its absence means
 * "not present", never an error. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hw/hw_internal.h"

static bool sym(void *lib, const char *name, void *fn_ptr) {
    void *p = dlsym(lib, name);
    memcpy(fn_ptr, &p, sizeof p);
    return p != NULL;
}

bool po__nvml_open(const char *lib, po__nvml *n, char *why, size_t why_size) {
    memset(n, 0, sizeof *n);
    if (!lib) lib = "libnvidia-ml.so.1";
    if (!*lib) {
        snprintf(why, why_size, "not looked for");
        return false;
    }
    n->lib = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        const char *e = dlerror();
        snprintf(why, why_size, "%s", e ? e : lib);
        return false;
    }
    static const char *const required[] = {"nvmlInit_v2",           "nvmlShutdown",
                                           "nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2",
                                           "nvmlDeviceGetName",     "nvmlDeviceGetPowerUsage"};
    void *const slots[] = {&n->init,
                           &n->shutdown,
                           &n->device_get_count,
                           &n->device_get_handle_by_index,
                           &n->device_get_name,
                           &n->device_get_power_usage};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!sym(n->lib, required[i], slots[i])) {
            snprintf(why, why_size, "%s lacks %s", lib, required[i]);
            dlclose(n->lib);
            memset(n, 0, sizeof *n);
            return false;
        }
    sym(n->lib, "nvmlErrorString", &n->error_string);
    sym(n->lib, "nvmlSystemGetDriverVersion", &n->system_get_driver_version);
    sym(n->lib, "nvmlDeviceGetHandleByPciBusId_v2", &n->device_get_handle_by_pci_bus_id);
    sym(n->lib, "nvmlDeviceGetEnforcedPowerLimit", &n->device_get_enforced_power_limit);
    sym(n->lib, "nvmlDeviceGetPowerManagementLimitConstraints", &n->device_get_power_limit_constraints);
    sym(n->lib, "nvmlDeviceGetPowerManagementDefaultLimit", &n->device_get_power_default_limit);
    sym(n->lib, "nvmlDeviceGetClockInfo", &n->device_get_clock_info);
    sym(n->lib, "nvmlDeviceGetMaxClockInfo", &n->device_get_max_clock_info);
    sym(n->lib, "nvmlDeviceGetTotalEnergyConsumption", &n->device_get_total_energy);
    sym(n->lib, "nvmlDeviceGetUtilizationRates", &n->device_get_utilization);
    sym(n->lib, "nvmlDeviceGetMemoryInfo", &n->device_get_memory_info);
    po__nvml_return r = n->init();
    if (r != 0) {
        snprintf(why, why_size, "nvmlInit: %s", po__nvml_error(n, r));
        dlclose(n->lib);
        memset(n, 0, sizeof *n);
        return false;
    }
    return true;
}

void po__nvml_close(po__nvml *n) {
    if (n->lib) {
        n->shutdown();
        dlclose(n->lib);
    }
    memset(n, 0, sizeof *n);
}

const char *po__nvml_error(const po__nvml *n, po__nvml_return r) {
    static _Thread_local char buf[96];
    const char *s = n->error_string ? n->error_string(r) : NULL;
    snprintf(buf, sizeof buf, "%s (%d)", s ? s : "NVML error", r);
    return buf;
}

void po__nvml_fill(po_machine *m, int i) {
    po_gpu_info *g = &m->gpus[i];
    const po__nvml *n = &m->nvml;
    po__nvml_device d = m->nvml_dev[i];
    g->power_w = g->power_limit_w = g->power_limit_min_w = g->power_limit_max_w = g->power_limit_default_w = NAN;
    if (!d) return;
    g->nvml = true;
    unsigned v, lo, hi;
    if (n->device_get_power_usage(d, &v) == 0) g->power_w = v / 1000.0;
    if (n->device_get_enforced_power_limit && n->device_get_enforced_power_limit(d, &v) == 0)
        g->power_limit_w = v / 1000.0;
    if (n->device_get_power_limit_constraints && n->device_get_power_limit_constraints(d, &lo, &hi) == 0) {
        g->power_limit_min_w = lo / 1000.0;
        g->power_limit_max_w = hi / 1000.0;
    }
    if (n->device_get_power_default_limit && n->device_get_power_default_limit(d, &v) == 0)
        g->power_limit_default_w = v / 1000.0;
    if (n->device_get_clock_info) {
        if (n->device_get_clock_info(d, PO__NVML_CLOCK_SM, &v) == 0) g->sm_clock_mhz = (int)v;
        if (n->device_get_clock_info(d, PO__NVML_CLOCK_MEM, &v) == 0) g->mem_clock_mhz = (int)v;
    }
    if (n->device_get_max_clock_info) {
        if (n->device_get_max_clock_info(d, PO__NVML_CLOCK_SM, &v) == 0) g->max_sm_clock_mhz = (int)v;
        if (n->device_get_max_clock_info(d, PO__NVML_CLOCK_MEM, &v) == 0) g->max_mem_clock_mhz = (int)v;
    }
    unsigned long long mj;
    g->energy_counter = n->device_get_total_energy && n->device_get_total_energy(d, &mj) == 0;
}

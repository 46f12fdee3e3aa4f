/* A stand-in for NVML (libnvidia-ml.so.1), loaded by the hardware and energy tests through
 * po_hw_opts.nvml_lib / po_meter_opts.nvml_lib. It reports scripted values: the tests set each
 * GPU's power, energy counter (or its absence, as on pre-Volta GPUs) and utilization with the
 * fake_nvml_* functions, reached with dlsym on the same library. Thread-safe: the meter's
 * sampler thread reads power while a test changes it. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char name[64], pci[32];
    unsigned power_mw, limit_mw, min_mw, max_mw, default_mw, sm_mhz, mem_mhz, max_sm_mhz, max_mem_mhz, util;
    int has_counter;
    unsigned long long energy_mj, mem_total;
} fake_gpu;

typedef struct {
    unsigned gpu, memory;
} utilization;
typedef struct {
    unsigned long long total, free, used;
} memory;

enum { SUCCESS = 0, ERROR_INVALID_ARGUMENT = 2, ERROR_NOT_SUPPORTED = 3, ERROR_NOT_FOUND = 6 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int count = 2, init_result = 0, inits;
static fake_gpu gpus[2] = {
    {"NVIDIA H100 80GB HBM3", "00000000:65:00.0", 120000, 700000, 200000, 700000, 700000, 1755, 2619, 1980, 2619, 35, 1,
     1000000, 80ull << 30},
    {"Tesla T4", "00000000:66:00.0", 50000, 70000, 60000, 70000, 70000, 585, 5000, 1590, 5001, 80, 0, 0, 16ull << 30},
};

/* --- the script ---------------------------------------------------------------------------- */

void fake_nvml_configure(int n, int init) {
    pthread_mutex_lock(&lock);
    count = n;
    init_result = init;
    pthread_mutex_unlock(&lock);
}
void fake_nvml_set_power(int i, unsigned mw) {
    pthread_mutex_lock(&lock);
    gpus[i].power_mw = mw;
    pthread_mutex_unlock(&lock);
}
void fake_nvml_set_energy(int i, int has_counter, unsigned long long mj) {
    pthread_mutex_lock(&lock);
    gpus[i].has_counter = has_counter;
    gpus[i].energy_mj = mj;
    pthread_mutex_unlock(&lock);
}
void fake_nvml_add_energy(int i, unsigned long long mj) {
    pthread_mutex_lock(&lock);
    gpus[i].energy_mj += mj;
    pthread_mutex_unlock(&lock);
}
/* nvmlInit calls minus nvmlShutdown calls: a test checks the library closes what it opens. */
int fake_nvml_open_count(void) { return inits; }

/* --- NVML ---------------------------------------------------------------------------------- */

typedef fake_gpu *device;

static int get(device d, unsigned *out, size_t offset) {
    if (!d) return ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&lock);
    *out = *(const unsigned *)((const char *)d + offset);
    pthread_mutex_unlock(&lock);
    return SUCCESS;
}

int nvmlInit_v2(void) {
    if (init_result == 0) inits++;
    return init_result;
}
int nvmlShutdown(void) {
    inits--;
    return SUCCESS;
}
const char *nvmlErrorString(int r) { return r == ERROR_NOT_SUPPORTED ? "Not Supported" : "fake NVML error"; }
int nvmlSystemGetDriverVersion(char *v, unsigned len) {
    snprintf(v, len, "550.54.15");
    return SUCCESS;
}
int nvmlDeviceGetCount_v2(unsigned *n) {
    *n = (unsigned)count;
    return SUCCESS;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned i, device *d) {
    if (i >= (unsigned)count) return ERROR_INVALID_ARGUMENT;
    *d = &gpus[i];
    return SUCCESS;
}
/* NVML accepts the bus id with a 4- or 8-digit domain; so does the fake. */
int nvmlDeviceGetHandleByPciBusId_v2(const char *id, device *d) {
    unsigned dom, bus, dev, fn, dom2, bus2, dev2, fn2;
    if (sscanf(id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) return ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < count; i++)
        if (sscanf(gpus[i].pci, "%x:%x:%x.%x", &dom2, &bus2, &dev2, &fn2) == 4 && dom == dom2 && bus == bus2 &&
            dev == dev2 && fn == fn2) {
            *d = &gpus[i];
            return SUCCESS;
        }
    return ERROR_NOT_FOUND;
}
int nvmlDeviceGetName(device d, char *name, unsigned len) {
    snprintf(name, len, "%s", d->name);
    return SUCCESS;
}
int nvmlDeviceGetPowerUsage(device d, unsigned *mw) { return get(d, mw, offsetof(fake_gpu, power_mw)); }
int nvmlDeviceGetEnforcedPowerLimit(device d, unsigned *mw) { return get(d, mw, offsetof(fake_gpu, limit_mw)); }
int nvmlDeviceGetPowerManagementLimitConstraints(device d, unsigned *lo, unsigned *hi) {
    get(d, lo, offsetof(fake_gpu, min_mw));
    return get(d, hi, offsetof(fake_gpu, max_mw));
}
int nvmlDeviceGetPowerManagementDefaultLimit(device d, unsigned *mw) {
    return get(d, mw, offsetof(fake_gpu, default_mw));
}
int nvmlDeviceGetClockInfo(device d, int type, unsigned *mhz) {
    return get(d, mhz, type == 2 ? offsetof(fake_gpu, mem_mhz) : offsetof(fake_gpu, sm_mhz));
}
int nvmlDeviceGetMaxClockInfo(device d, int type, unsigned *mhz) {
    return get(d, mhz, type == 2 ? offsetof(fake_gpu, max_mem_mhz) : offsetof(fake_gpu, max_sm_mhz));
}
int nvmlDeviceGetTotalEnergyConsumption(device d, unsigned long long *mj) {
    pthread_mutex_lock(&lock);
    int r = d->has_counter ? SUCCESS : ERROR_NOT_SUPPORTED;
    if (d->has_counter) *mj = d->energy_mj;
    pthread_mutex_unlock(&lock);
    return r;
}
int nvmlDeviceGetUtilizationRates(device d, utilization *u) {
    pthread_mutex_lock(&lock);
    u->gpu = d->util;
    u->memory = d->util / 2;
    pthread_mutex_unlock(&lock);
    return SUCCESS;
}
int nvmlDeviceGetMemoryInfo(device d, memory *m) {
    m->total = d->mem_total;
    m->used = 1ull << 30;
    m->free = m->total - m->used;
    return SUCCESS;
}

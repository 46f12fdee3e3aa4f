/* GPU energy through NVML: the total-energy counter (millijoules since the driver loaded, Volta
 * and newer), or where it is missing power readings integrated over time by a sampler thread.
 * The counter is exact over any window; sampling misses what happens between samples, so it
 * is only the fallback. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/energy_internal.h"

typedef struct {
    po__nvml_device dev;
    bool counter;
    unsigned long long e0_mj; /* counter at the window's start */
    double joules;
    double last_w, last_t; /* sampling: the previous reading */
} gpu;

struct po__gpu_meter {
    po__nvml nvml;
    int n;
    gpu *g;
    double period_s;
    bool need_sampler;
    pthread_t thread;
    bool running, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

po_status po__gpu_meter_open(const char *lib, double period_s, po__gpu_meter **out) {
    *out = NULL;
    po__gpu_meter *g = calloc(1, sizeof *g);
    if (!g) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    char why[160];
    if (!po__nvml_open(lib, &g->nvml, why, sizeof why)) {
        free(g);
        return po_fail(PO_ERR_NOT_FOUND, "NVML not present (%s)", why);
    }
    unsigned count = 0;
    if (g->nvml.device_get_count(&count) != 0 || count == 0) {
        po__nvml_close(&g->nvml);
        free(g);
        return po_fail(PO_ERR_NOT_FOUND, "NVML reports no GPU");
    }
    g->g = calloc(count, sizeof *g->g);
    if (!g->g) {
        po__nvml_close(&g->nvml);
        free(g);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    for (unsigned i = 0; i < count; i++) {
        gpu *x = &g->g[g->n];
        if (g->nvml.device_get_handle_by_index(i, &x->dev) != 0) continue;
        unsigned long long mj;
        x->counter = g->nvml.device_get_total_energy && g->nvml.device_get_total_energy(x->dev, &mj) == 0;
        if (!x->counter) g->need_sampler = true;
        g->n++;
    }
    g->period_s = period_s > 0 ? period_s : 0.05;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    *out = g;
    return PO_OK;
}

int po__gpu_meter_count(const po__gpu_meter *g) { return g->n; }
bool po__gpu_meter_has_counter(const po__gpu_meter *g, int i) { return g->g[i].counter; }

/* Adds the trapezoid from the previous reading of each sampled GPU to time `now`. The sampler
 * thread and the meter's caller both sample, with times taken at slightly different moments:
 * a reading older than the last one only updates the power. Caller holds the lock. */
static void sample_power(po__gpu_meter *g, double now) {
    for (int i = 0; i < g->n; i++) {
        gpu *x = &g->g[i];
        unsigned mw;
        if (x->counter || g->nvml.device_get_power_usage(x->dev, &mw) != 0) continue;
        double w = mw / 1000.0;
        if (x->last_t > 0 && now > x->last_t) x->joules += 0.5 * (w + x->last_w) * (now - x->last_t);
        x->last_w = w;
        if (now > x->last_t) x->last_t = now;
    }
}

static void *sampler(void *arg) {
    po__gpu_meter *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ns = until.tv_nsec + (long)(g->period_s * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        int e = 0;
        while (!g->stop && e != ETIMEDOUT)
            e = pthread_cond_timedwait(&g->cond, &g->lock, &until);
        if (!g->stop) sample_power(g, po__hw_now());
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

void po__gpu_meter_stop(po__gpu_meter *g, double t) {
    if (!g->running) return;
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    g->running = false;
    pthread_mutex_lock(&g->lock);
    sample_power(g, t > 0 ? t : po__hw_now());
    pthread_mutex_unlock(&g->lock);
}

po_status po__gpu_meter_begin(po__gpu_meter *g, double t) {
    po__gpu_meter_stop(g, 0);
    for (int i = 0; i < g->n; i++) {
        gpu *x = &g->g[i];
        x->joules = 0;
        x->last_t = 0;
        if (x->counter && g->nvml.device_get_total_energy(x->dev, &x->e0_mj) != 0)
            return po_fail(PO_ERR_BACKEND, "gpu%d: nvmlDeviceGetTotalEnergyConsumption failed", i);
    }
    if (!g->need_sampler) return PO_OK;
    pthread_mutex_lock(&g->lock);
    sample_power(g, t); /* the first reading: the window's left edge */
    g->stop = false;
    pthread_mutex_unlock(&g->lock);
    if (pthread_create(&g->thread, NULL, sampler, g) != 0)
        return po_fail(PO_ERR_BACKEND, "cannot start the GPU power sampling thread");
    g->running = true;
    return PO_OK;
}

po_status po__gpu_meter_sample(po__gpu_meter *g, double t) {
    pthread_mutex_lock(&g->lock);
    po_status st = PO_OK;
    for (int i = 0; i < g->n && !st; i++) {
        gpu *x = &g->g[i];
        unsigned long long mj;
        if (!x->counter) continue;
        if (g->nvml.device_get_total_energy(x->dev, &mj) != 0)
            st = po_fail(PO_ERR_BACKEND, "gpu%d: nvmlDeviceGetTotalEnergyConsumption failed", i);
        else
            x->joules = mj >= x->e0_mj ? (double)(mj - x->e0_mj) / 1000.0 : 0.0;
    }
    if (g->running) sample_power(g, t);
    pthread_mutex_unlock(&g->lock);
    return st;
}

double po__gpu_meter_joules(const po__gpu_meter *g, int i) { return g->g[i].joules; }

void po__gpu_meter_free(po__gpu_meter *g) {
    if (!g) return;
    po__gpu_meter_stop(g, 0);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    po__nvml_close(&g->nvml);
    free(g->g);
    free(g);
}

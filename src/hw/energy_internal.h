/* The parts an energy meter (energy_meter.c) is made of: GPUs through NVML, the CPU model.
 * (RAPL zones are declared in hw_internal.h.) */
#ifndef PO_HW_ENERGY_INTERNAL_H
#define PO_HW_ENERGY_INTERNAL_H

#include "hw/hw_internal.h"

/* Every GPU NVML reports, each through its energy counter or, lacking one, power samples taken
 * every period seconds on a background thread while a window is open. */
typedef struct po__gpu_meter po__gpu_meter;

/* PO_ERR_NOT_FOUND (with the reason) when NVML is missing or reports no GPU. */
po_status po__gpu_meter_open(const char *lib, double period_s, po__gpu_meter **out);
void po__gpu_meter_free(po__gpu_meter *g);
int po__gpu_meter_count(const po__gpu_meter *g);
bool po__gpu_meter_has_counter(const po__gpu_meter *g, int i);
/* Times are po__hw_now() values taken by the meter, so that every part integrates over exactly
 * the window the reading reports. */
/* Starts a window at time t (the sampler thread too, when a GPU needs one). */
po_status po__gpu_meter_begin(po__gpu_meter *g, double t);
/* Brings every GPU's joules up to time t. */
po_status po__gpu_meter_sample(po__gpu_meter *g, double t);
double po__gpu_meter_joules(const po__gpu_meter *g, int i);
/* Stops the sampler thread, with a final power reading at time t (t <= 0: now). */
void po__gpu_meter_stop(po__gpu_meter *g, double t);

/* The model estimate: per-processor busy time from /proc/stat, each counted processor drawing
 * idle_w + (tdp_w - idle_w) * utilization between samples. */
typedef struct po__model_meter {
    char root[4096];
    int *cpus; /* counted processors (OS numbers); NULL = all */
    int n_cpus;
    double idle_w, tdp_w; /* per processor (a core's share divided by its hardware threads) */
    po_cpu_times *last;
    int n_last;
    double t_last;
    double joules;
} po__model_meter;

po_status po__model_open(const po_meter_opts *o, po__model_meter *mm);
void po__model_free(po__model_meter *mm);
po_status po__model_begin(po__model_meter *mm, double t);
po_status po__model_sample(po__model_meter *mm, double t);

#endif

/* Energy meters: how many joules a window of work took, and where that figure came from.
 *
 *     po_meter *m;
 *     po_meter_new(NULL, &m);                 // AUTO: the best sources this machine has
 *     po_meter_begin(m);
 *     ... work ...
 *     po_energy_reading r;
 *     po_meter_end(m, &r);                     // r.joules, r.seconds, r.source
 *     po_meter_free(m);
 *
 * Sources, each reading says which:
 *   measured:nvml     NVIDIA GPUs: the total-energy counter (nvmlDeviceGetTotalEnergyConsumption,
 *                     millijoules since the driver loaded), or where a GPU lacks it (before Volta)
 *                     nvmlDeviceGetPowerUsage sampled on a background thread and integrated
 *                     (trapezoids; sample_period_s apart).
 *   measured:rapl     CPU packages (and their DRAM) through powercap sysfs:
 *                     /sys/class/powercap/intel-rapl:N[/intel-rapl:N:M]/energy_uj (AMD Zen CPUs
 *                     appear there too), counters that wrap at max_energy_range_uj; or AMD's
 *                     amd_energy hwmon driver (Esocket* energyN_input, microjoules).
 *   estimated:model   where nothing can be measured: per-core busy time from /proc/stat and a
 *                     power model from the hardware catalog: each counted core draws
 *                     idle_w + (tdp_w - idle_w) * utilization (its catalog shares).
 * A meter combining several sources (AUTO on a machine with GPUs) reports them joined with '+'
 * ("measured:nvml+measured:rapl"); po_meter_domain gives each part.
 *
 * Resolution: RAPL about 1 ms, NVML's counter about 10-100 ms, /proc/stat one clock tick (10 ms):
 * windows should be much longer than that. Counters are folded in at every po_meter_sample,
 * po_meter_read and po_meter_end; a RAPL counter can wrap once between two of those, so call
 * po_meter_sample at least every few minutes on long windows (a package counter wraps after
 * max_energy_range_uj, commonly 262 kJ: about an hour at 70 W).
 *
 * Tests point a meter at fake trees: `root` prefixes every /sys and /proc path, and nvml_lib
 * names the library to dlopen. */
#ifndef PAROPT_ENERGY_H
#define PAROPT_ENERGY_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PO_METER_AUTO,  /* NVML for GPUs (if any) + RAPL for the CPU, the model where RAPL is unusable */
    PO_METER_NVML,  /* GPUs only; fails without NVML or GPUs */
    PO_METER_RAPL,  /* CPU only; fails when no zone exists or one cannot be read (permissions) */
    PO_METER_MODEL, /* the estimate only */
} po_meter_kind;

typedef struct po_meter_opts {
    po_meter_kind kind;
    const char *root;       /* prefix for /sys and /proc paths; NULL or "" = the real ones */
    const char *nvml_lib;   /* NULL = "libnvidia-ml.so.1"; "" = do not use NVML */
    double sample_period_s; /* NVML power sampling where the counter is missing (default 0.05) */
    /* Model: which processors count (OS numbers, as /proc/stat's cpuN lines; NULL = all of
     * them) and each one's power. Zero watts = the catalog figures for this CPU (generic
     * x86-64 figures for an unknown one). */
    const int *cpus;
    int n_cpus;
    double core_idle_w, core_tdp_w;
} po_meter_opts;
po_meter_opts po_meter_opts_default(void);

typedef struct po_energy_reading {
    double joules;      /* energy of the window */
    double seconds;     /* its wall time (monotonic clock) */
    double watts;       /* joules / seconds; 0 for an empty window */
    const char *source; /* po_meter_source: static or owned by the meter */
} po_energy_reading;

typedef struct po_meter po_meter;

/* Opens the sources (o NULL: defaults, AUTO). AUTO never fails for want of hardware: it falls
 * back to the model and says why in po_meter_note. Explicit kinds fail with one line when their
 * source is missing or unreadable (a RAPL zone readable only by root: PO_ERR_IO naming the file
 * and "permission denied"). */
po_status po_meter_new(const po_meter_opts *o, po_meter **out);
void po_meter_free(po_meter *m);

/* "measured:nvml", "measured:rapl", "estimated:model", or parts joined with '+'. */
const char *po_meter_source(const po_meter *m);
/* Why a measured source is not in use ("RAPL: /sys/class/powercap not present"; parts joined
 * with "; "), or "" — for reports. */
const char *po_meter_note(const po_meter *m);

/* Starts a window (again, if one was open). */
po_status po_meter_begin(po_meter *m);
/* Folds in counters now (wraparound bookkeeping); the window stays open. */
po_status po_meter_sample(po_meter *m);
/* Energy since po_meter_begin; the window stays open. */
po_status po_meter_read(po_meter *m, po_energy_reading *out);
/* Energy since po_meter_begin; closes the window. */
po_status po_meter_end(po_meter *m, po_energy_reading *out);

/* The parts: one per GPU ("gpu0"), per RAPL zone ("package-0", "dram"), or "cpu" for the
 * model; joules of the window so far (as of the last sample/read/end). */
typedef struct po_energy_domain {
    const char *name;
    const char *source;
    double joules;
} po_energy_domain;
int po_meter_n_domains(const po_meter *m);
po_status po_meter_domain(const po_meter *m, int i, po_energy_domain *out);

/* --- /proc/stat ------------------------------------------------------------------------------ */

/* Cumulative time of one processor, in clock ticks (USER_HZ). */
typedef struct po_cpu_times {
    int cpu;        /* OS processor number (the N of "cpuN") */
    uint64_t busy;  /* user + nice + system + irq + softirq */
    uint64_t total; /* busy + idle + iowait + steal */
} po_cpu_times;

/* Reads root/proc/stat (root NULL or "": /proc/stat): one entry per cpuN line, in file order.
 * *out is malloc'd (free it); PO_ERR_IO when unreadable, PO_ERR_FORMAT when a line is malformed. */
po_status po_proc_stat_read(const char *root, po_cpu_times **out, int *n);
/* Busy fraction in [0, 1] between two readings of one processor; 0 when no tick passed. */
double po_cpu_utilization(const po_cpu_times *before, const po_cpu_times *after);

#ifdef __cplusplus
}
#endif
#endif

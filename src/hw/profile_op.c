/* Per-op profiling on a device: the executor's own per-node clock (po_exec_set_profiling), read
 * after every run, on a thread pinned to the device. This is what the cost model calibrates
 * from: the op as the executor runs it, with its real inputs' shapes, on the real core. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"

typedef struct {
    po_exec *ex;
    const po_node *n;
    int warmup, runs;
    double *times;
    po_status st;
    char err[256];
} time_job;

static void time_thread(int t, void *arg) {
    (void)t;
    time_job *j = arg;
    po_exec_set_profiling(j->ex, j->n != NULL);
    for (int r = 0; r < j->warmup + j->runs && !j->st; r++) {
        po_exec_reset_profile(j->ex);
        double t0 = po__hw_now();
        j->st = po_exec_run(j->ex);
        double wall = po__hw_now() - t0;
        if (r >= j->warmup) j->times[r - j->warmup] = j->n ? po_exec_node_seconds(j->ex, j->n) : wall;
    }
    if (j->st) snprintf(j->err, sizeof j->err, "%s", po_last_error());
    po_exec_set_profiling(j->ex, false);
    po_exec_reset_profile(j->ex);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

po_status po_hw_time_node(const po_machine *m, const po_device *d, po_exec *ex, const po_node *n, int warmup, int runs,
                          po_time_stats *out) {
    memset(out, 0, sizeof *out);
    if (runs < 1 || warmup < 0)
        return po_fail(PO_ERR_INVALID_ARG, "time_node: runs must be at least 1 and warmup not negative (got %d, %d)",
                       runs, warmup);
    if (d->is_virtual) return po_fail(PO_ERR_UNSUPPORTED, "device \"%s\" is virtual: nothing to run on", d->id);
    if (d->kind != PO_DEVICE_CPU)
        return po_fail(PO_ERR_UNSUPPORTED, "device \"%s\": paropt has no CUDA backend yet to run nodes on", d->id);
    time_job j = {ex, n, warmup, runs, malloc((size_t)runs * sizeof(double)), PO_OK, ""};
    if (!j.times) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    po_status st = po__run_on_group(m, d->first_core, d->n_cores, time_thread, &j);
    if (!st && j.st) st = po_fail(j.st, "%s", j.err);
    if (!st) {
        qsort(j.times, (size_t)runs, sizeof *j.times, cmp_double);
        double sum = 0, sq = 0;
        for (int i = 0; i < runs; i++)
            sum += j.times[i];
        double mean = sum / runs;
        for (int i = 0; i < runs; i++)
            sq += (j.times[i] - mean) * (j.times[i] - mean);
        out->runs = runs;
        out->min_s = j.times[0];
        out->max_s = j.times[runs - 1];
        out->median_s = runs % 2 ? j.times[runs / 2] : 0.5 * (j.times[runs / 2 - 1] + j.times[runs / 2]);
        out->mean_s = mean;
        out->stddev_s = runs > 1 ? sqrt(sq / (runs - 1)) : 0.0;
    }
    free(j.times);
    return st;
}

/* The energy estimate for machines without a readable counter: busy time per processor from
 * /proc/stat and a linear power model per core from the hardware catalog (idle draw plus the
 * rest of its TDP share in proportion to utilization). Coarse — it ignores frequency, memory
 * and what the instructions are — but it has units and says it is an estimate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/energy_internal.h"

/* Hardware threads per core from cpu0's sibling list ("0,32" or "0-1"); 1 when unreadable. */
static int threads_per_core(const char *root) {
    char path[4200], buf[256];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu0/topology/thread_siblings_list", root);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    int n = 0;
    if (fgets(buf, sizeof buf, f)) {
        for (char *p = buf; *p && *p != '\n';) {
            int a, b, used;
            if (sscanf(p, "%d-%d%n", &a, &b, &used) == 2 && b >= a) {
                n += b - a + 1;
            } else if (sscanf(p, "%d%n", &a, &used) == 1) {
                n += 1;
            } else {
                break;
            }
            p += used;
            if (*p == ',') p++;
        }
    }
    fclose(f);
    return n >= 1 ? n : 1;
}

po_status po__model_open(const po_meter_opts *o, po__model_meter *mm) {
    memset(mm, 0, sizeof *mm);
    snprintf(mm->root, sizeof mm->root, "%s", o->root ? o->root : "");
    if (o->cpus && o->n_cpus > 0) {
        mm->cpus = malloc((size_t)o->n_cpus * sizeof *mm->cpus);
        if (!mm->cpus) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        memcpy(mm->cpus, o->cpus, (size_t)o->n_cpus * sizeof *mm->cpus);
        mm->n_cpus = o->n_cpus;
    }
    double idle = o->core_idle_w, tdp = o->core_tdp_w;
    if (!(idle > 0) || !(tdp > 0)) {
        po_cpu_info cpu = {0};
        po__cpu_identify(&cpu);
        const po_catalog_entry *e = po_catalog_cpu(&cpu);
        if (!(idle > 0)) idle = e->idle_w;
        if (!(tdp > 0)) tdp = e->tdp_w;
    }
    if (tdp < idle) tdp = idle;
    int threads = threads_per_core(mm->root);
    mm->idle_w = idle / threads;
    mm->tdp_w = tdp / threads;
    /* Fail now rather than at the first reading: /proc/stat must be there. */
    po_cpu_times *t;
    int n;
    po_status st = po_proc_stat_read(mm->root, &t, &n);
    if (st) {
        free(mm->cpus);
        mm->cpus = NULL;
        return st;
    }
    free(t);
    return PO_OK;
}

void po__model_free(po__model_meter *mm) {
    free(mm->cpus);
    free(mm->last);
    mm->cpus = NULL;
    mm->last = NULL;
}

static bool counted(const po__model_meter *mm, int cpu) {
    if (!mm->cpus) return true;
    for (int i = 0; i < mm->n_cpus; i++)
        if (mm->cpus[i] == cpu) return true;
    return false;
}

po_status po__model_begin(po__model_meter *mm, double t) {
    free(mm->last);
    mm->last = NULL;
    mm->joules = 0;
    mm->t_last = t;
    return po_proc_stat_read(mm->root, &mm->last, &mm->n_last);
}

po_status po__model_sample(po__model_meter *mm, double t) {
    po_cpu_times *now;
    int n;
    po_status st = po_proc_stat_read(mm->root, &now, &n);
    if (st) return st;
    double watts = 0;
    for (int i = 0; i < n; i++) {
        if (!counted(mm, now[i].cpu)) continue;
        double u = 0;
        for (int k = 0; k < mm->n_last; k++)
            if (mm->last[k].cpu == now[i].cpu) u = po_cpu_utilization(&mm->last[k], &now[i]);
        watts += mm->idle_w + (mm->tdp_w - mm->idle_w) * u;
    }
    if (t > mm->t_last) mm->joules += watts * (t - mm->t_last);
    mm->t_last = t;
    free(mm->last);
    mm->last = now;
    mm->n_last = n;
    return PO_OK;
}

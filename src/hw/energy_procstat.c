/* /proc/stat: cumulative time per processor, for utilization (paropt devices --watch) and the
 * model estimate of energy where no counter can be read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"

po_status po_proc_stat_read(const char *root, po_cpu_times **out, int *n) {
    *out = NULL;
    *n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/proc/stat", root ? root : "");
    FILE *f = fopen(path, "r");
    if (!f) return po_fail(PO_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    po_cpu_times *t = NULL;
    int count = 0, cap = 0;
    po_status st = PO_OK;
    char line[1024];
    int lineno = 0;
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        /* "cpu  ..." is the sum; "cpuN ..." one processor. */
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
        int cpu;
        unsigned long long v[10] = {0};
        int got = sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                         &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
        /* Kernels before 2.6 give four fields; anything with fewer is not /proc/stat. */
        if (got < 5 || cpu < 0) {
            st = po_fail(PO_ERR_FORMAT, "%s:%d: malformed cpu line", path, lineno);
            break;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            po_cpu_times *grown = realloc(t, (size_t)cap * sizeof *t);
            if (!grown) {
                st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
                break;
            }
            t = grown;
        }
        /* user nice system idle iowait irq softirq steal guest guest_nice: guest time is already
         * inside user and nice; steal is time the hypervisor gave to someone else. */
        uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6];
        t[count++] = (po_cpu_times){cpu, busy, busy + v[3] + v[4] + v[7]};
    }
    if (!st && ferror(f)) st = po_fail(PO_ERR_IO, "error reading %s", path);
    fclose(f);
    if (!st && count == 0) st = po_fail(PO_ERR_FORMAT, "%s has no cpuN lines", path);
    if (st) {
        free(t);
        return st;
    }
    *out = t;
    *n = count;
    return PO_OK;
}

double po_cpu_utilization(const po_cpu_times *before, const po_cpu_times *after) {
    if (after->total <= before->total || after->busy < before->busy) return 0.0;
    double u = (double)(after->busy - before->busy) / (double)(after->total - before->total);
    return u < 0 ? 0 : u > 1 ? 1 : u;
}

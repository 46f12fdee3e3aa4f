/* RAPL energy counters: powercap sysfs (Intel, and AMD Zen since Linux 5.8, both as
 * intel-rapl:N), or AMD's older amd_energy hwmon driver. Counters are microjoules that wrap
 * at max_energy_range_uj; one wrap between two readings is recovered. Since 2020 (the
 * PLATYPUS side channel) energy_uj is readable by root only on most distributions, so a
 * permission error is the common failure and is reported as such. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hw/hw_internal.h"

uint64_t po__rapl_delta(uint64_t a, uint64_t b, uint64_t max) {
    if (b >= a) return b - a;
    /* Wrapped: from a up to the top of the range, then from 0 to b. */
    return max >= a ? (max - a) + b : b;
}

/* Reads one unsigned integer from path. Errors name the file and say why. */
static po_status read_u64(const char *path, uint64_t *out) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (errno == EACCES || errno == EPERM)
            return po_fail(PO_ERR_IO, "%s: permission denied (RAPL counters are readable by root only on most systems)",
                           path);
        return po_fail(PO_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        if (e == EACCES || e == EPERM)
            return po_fail(PO_ERR_IO, "%s: permission denied (RAPL counters are readable by root only on most systems)",
                           path);
        return po_fail(PO_ERR_IO, "cannot read %s: %s", path, strerror(e));
    }
    buf[n] = 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || errno || (*end && *end != '\n')) return po_fail(PO_ERR_FORMAT, "%s: not a counter value", path);
    *out = v;
    return PO_OK;
}

static void read_name(const char *path, char *buf, size_t size) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(buf, (int)size, f)) buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

static po_status add_zone(po__rapl_zone **zones, int *n, int *cap, const char *name, const char *energy_path,
                          const char *max_path) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        po__rapl_zone *grown = realloc(*zones, (size_t)*cap * sizeof *grown);
        if (!grown) return po_fail(PO_ERR_NO_MEMORY, "out of memory");
        *zones = grown;
    }
    po__rapl_zone *z = &(*zones)[*n];
    memset(z, 0, sizeof *z);
    snprintf(z->name, sizeof z->name, "%s", name);
    snprintf(z->path, sizeof z->path, "%s", energy_path);
    z->max_uj = UINT64_MAX;
    po_status st = max_path ? read_u64(max_path, &z->max_uj) : PO_OK;
    if (!st) st = read_u64(z->path, &z->last_uj);
    if (!st) (*n)++;
    return st;
}

/* intel-rapl:N (a package) and its intel-rapl:N:M subzones named "dram": the package counter
 * already includes the cores and uncore subzones, not DRAM. intel-rapl-mmio duplicates the
 * package and psys (a platform zone) overlaps it: both are skipped. */
static po_status open_powercap(const char *root, po__rapl_zone **zones, int *n, int *cap, bool *found) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sys/class/powercap", root);
    struct dirent **list;
    int entries = scandir(dir, &list, NULL, alphasort);
    if (entries < 0) return PO_OK;
    po_status st = PO_OK;
    for (int i = 0; i < entries; i++) {
        const char *e = list[i]->d_name;
        unsigned pkg, sub;
        char tail;
        bool top = sscanf(e, "intel-rapl:%u%c", &pkg, &tail) == 1;
        bool is_sub = !top && sscanf(e, "intel-rapl:%u:%u%c", &pkg, &sub, &tail) == 2;
        if (!st && (top || is_sub)) {
            char base[4352], name[40], energy[4400], max[4400], name_path[4400], zname[64];
            snprintf(base, sizeof base, "%s/%s", dir, e);
            snprintf(energy, sizeof energy, "%s/energy_uj", base);
            snprintf(max, sizeof max, "%s/max_energy_range_uj", base);
            snprintf(name_path, sizeof name_path, "%s/name", base);
            read_name(name_path, name, sizeof name);
            if (top && strcmp(name, "psys") == 0) {
                free(list[i]);
                continue;
            }
            if (is_sub && strcmp(name, "dram") != 0) {
                free(list[i]);
                continue;
            }
            if (is_sub)
                snprintf(zname, sizeof zname, "package-%u/dram", pkg);
            else
                snprintf(zname, sizeof zname, "%.40s", name[0] ? name : e);
            *found = true;
            st = add_zone(zones, n, cap, zname, energy, max);
        }
        free(list[i]);
    }
    free(list);
    return st;
}

/* amd_energy: /sys/class/hwmon/hwmonN with name "amd_energy", energyK_input (microjoules, kept
 * 64-bit by the driver) labelled "Esocket<S>" per socket and "Ecore<C>" per core: the socket
 * counters cover the cores. */
static po_status open_amd_energy(const char *root, po__rapl_zone **zones, int *n, int *cap, bool *found) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sys/class/hwmon", root);
    struct dirent **list;
    int entries = scandir(dir, &list, NULL, alphasort);
    if (entries < 0) return PO_OK;
    po_status st = PO_OK;
    for (int i = 0; i < entries; i++) {
        char path[4400], name[64];
        snprintf(path, sizeof path, "%s/%s/name", dir, list[i]->d_name);
        read_name(path, name, sizeof name);
        for (int k = 1; !st && strcmp(name, "amd_energy") == 0 && k < 4096; k++) {
            char label[40], label_path[4400], input[4400];
            snprintf(label_path, sizeof label_path, "%s/%s/energy%d_label", dir, list[i]->d_name, k);
            if (access(label_path, F_OK) != 0) break;
            read_name(label_path, label, sizeof label);
            if (strncmp(label, "Esocket", 7) != 0) continue;
            snprintf(input, sizeof input, "%s/%s/energy%d_input", dir, list[i]->d_name, k);
            *found = true;
            st = add_zone(zones, n, cap, label, input, NULL);
        }
        free(list[i]);
    }
    free(list);
    return st;
}

po_status po__rapl_open(const char *root, po__rapl_zone **zones, int *n) {
    *zones = NULL;
    *n = 0;
    if (!root) root = "";
    int cap = 0;
    bool found = false;
    po_status st = open_powercap(root, zones, n, &cap, &found);
    if (!st && !found) st = open_amd_energy(root, zones, n, &cap, &found);
    if (!st && !found)
        st = po_fail(PO_ERR_NOT_FOUND, "no RAPL counters (%s/sys/class/powercap has no intel-rapl zone, no amd_energy)",
                     root);
    if (st) {
        free(*zones);
        *zones = NULL;
        *n = 0;
    }
    return st;
}

po_status po__rapl_sample(po__rapl_zone *z) {
    uint64_t v = 0;
    po_status st = read_u64(z->path, &v);
    if (st) return st;
    z->joules += (double)po__rapl_delta(z->last_uj, v, z->max_uj) * 1e-6;
    z->last_uj = v;
    return PO_OK;
}

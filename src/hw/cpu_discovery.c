/* CPU topology through hwloc: sockets, cores and their hardware threads, caches, NUMA nodes,
 * memory. hwloc already knows every platform's quirks (cpusets of containers, offline CPUs,
 * caches shared by core complexes), which is why it is a dependency rather than our own
 * /sys parser. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <sched.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hw/hw_internal.h"

static int ancestor_index(hwloc_topology_t t, hwloc_obj_t o, hwloc_obj_type_t type) {
    hwloc_obj_t a = hwloc_get_ancestor_obj_by_type(t, type, o);
    return a ? (int)a->logical_index : -1;
}

static int64_t cache_size(hwloc_topology_t t, hwloc_obj_type_t type) {
    hwloc_obj_t o = hwloc_get_obj_by_type(t, type, 0);
    return o && o->attr ? (int64_t)o->attr->cache.size : 0;
}

po_status po__cpu_topology(po_machine *m, const char *synthetic) {
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0) return po_fail(PO_ERR_BACKEND, "hwloc: cannot initialise a topology");
    if (synthetic && hwloc_topology_set_synthetic(t, synthetic) != 0) {
        hwloc_topology_destroy(t);
        return po_fail(PO_ERR_INVALID_ARG,
                       "topology \"%s\" is not an hwloc synthetic description (e.g. \"package:2 core:4 pu:2\")",
                       synthetic);
    }
    if (hwloc_topology_load(t) != 0) {
        int e = errno;
        hwloc_topology_destroy(t);
        return po_fail(PO_ERR_BACKEND, "hwloc: cannot read the CPU topology: %s", strerror(e));
    }
    po_cpu_info *cpu = &m->cpu;
    /* Machines where hwloc sees no cores (some virtualised ARM boards) get one core per thread. */
    hwloc_obj_type_t core_type = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    int n = hwloc_get_nbobjs_by_type(t, core_type);
    int pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    if (n <= 0 || pus <= 0) {
        hwloc_topology_destroy(t);
        return po_fail(PO_ERR_BACKEND, "hwloc: the topology has no processors");
    }
    m->cores = calloc((size_t)n, sizeof *m->cores);
    if (!m->cores) {
        hwloc_topology_destroy(t);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory for %d cores", n);
    }
    cpu->cores = n;
    cpu->pus = pus;
    cpu->sockets = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    if (cpu->sockets < 1) cpu->sockets = 1;
    cpu->numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (cpu->numa_nodes < 1) cpu->numa_nodes = 1;
    cpu->l1d_bytes = cache_size(t, HWLOC_OBJ_L1CACHE);
    cpu->l2_bytes = cache_size(t, HWLOC_OBJ_L2CACHE);
    cpu->l3_bytes = cache_size(t, HWLOC_OBJ_L3CACHE);

    /* The calling thread's affinity: what taskset or a parent set. hwloc already leaves out the
     * cores a cgroup forbids; this also honours a plain affinity mask. A synthetic topology, or
     * a mask that cannot be read, allows every core. */
    cpu_set_t affinity;
    bool masked = !synthetic && sched_getaffinity(0, sizeof affinity, &affinity) == 0;
    po_status st = PO_OK;
    for (int i = 0; i < n && !st; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(t, core_type, (unsigned)i);
        po_cpu_core *c = &m->cores[i];
        c->package = ancestor_index(t, o, HWLOC_OBJ_PACKAGE);
        if (c->package < 0) c->package = 0;
        c->l2 = ancestor_index(t, o, HWLOC_OBJ_L2CACHE);
        c->l3 = ancestor_index(t, o, HWLOC_OBJ_L3CACHE);
        c->numa_node = 0;
        hwloc_obj_t node = NULL;
        while ((node = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, node)))
            if (node->cpuset && hwloc_bitmap_isincluded(o->cpuset, node->cpuset)) {
                c->numa_node = (int)node->logical_index;
                break;
            }
        c->first_pu = hwloc_bitmap_first(o->cpuset);
        int pu;
        hwloc_bitmap_foreach_begin(pu, o->cpuset) {
            if (pu >= PO_CPU_MASK_BITS) {
                st = po_fail(PO_ERR_UNSUPPORTED, "processor %d is beyond the %d paropt can pin to", pu,
                             PO_CPU_MASK_BITS);
                break;
            }
            c->pu_mask[pu / 64] |= 1ull << (pu % 64);
            c->n_pus++;
            if (!masked || (pu < CPU_SETSIZE && CPU_ISSET(pu, &affinity))) c->allowed = true;
        }
        hwloc_bitmap_foreach_end();
        cpu->allowed_cores += c->allowed;
    }
    hwloc_obj_t root = hwloc_get_root_obj(t);
    cpu->memory_bytes = (int64_t)root->total_memory;
    if (!cpu->model[0]) {
        hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
        const char *name = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
        snprintf(cpu->model, sizeof cpu->model, "%s", name ? name : "unknown CPU");
    }
    hwloc_topology_destroy(t);
    if (!synthetic) {
        /* The kernel's total (MemTotal) when NUMA nodes report less: some virtual machines add
         * memory that no node's meminfo counts. */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0 && (int64_t)pages * page > cpu->memory_bytes)
            cpu->memory_bytes = (int64_t)pages * page;
    }
    cpu->core = m->cores;
    return st;
}

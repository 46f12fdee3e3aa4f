/* Internals shared by the src/hw files: the machine record, the dlopen'd CUDA and NVML entry
 * points, thread pinning, and the measurement pieces the orchestrator (measure.c) combines. */
#ifndef PO_HW_INTERNAL_H
#define PO_HW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paropt/energy.h"
#include "paropt/hw.h"

/* --- CUDA driver API (cuda_dlopen.c) ---------------------------------------------------------- */

typedef int po__cu_result;                    /* CUresult: 0 = CUDA_SUCCESS */
typedef int po__cu_device;                    /* CUdevice */
typedef struct po__cu_ctx_st *po__cu_context; /* CUcontext */
typedef unsigned long long po__cu_ptr;        /* CUdeviceptr (64-bit, the _v2 API) */

typedef struct po__cuda {
    void *lib;
    int driver_version; /* 12040 = 12.4 */
    po__cu_result (*init)(unsigned flags);
    po__cu_result (*driver_get_version)(int *v);
    po__cu_result (*device_get_count)(int *n);
    po__cu_result (*device_get)(po__cu_device *d, int ordinal);
    po__cu_result (*device_get_name)(char *name, int len, po__cu_device d);
    po__cu_result (*device_get_attribute)(int *v, int attr, po__cu_device d);
    po__cu_result (*device_total_mem)(size_t *bytes, po__cu_device d);
    po__cu_result (*device_get_pci_bus_id)(char *id, int len, po__cu_device d);
    po__cu_result (*device_can_access_peer)(int *can, po__cu_device d, po__cu_device peer);
    po__cu_result (*get_error_string)(po__cu_result r, const char **s);
    /* Transfers (measure_gpu.c); NULL when the library lacks them. */
    po__cu_result (*primary_ctx_retain)(po__cu_context *c, po__cu_device d);
    po__cu_result (*primary_ctx_release)(po__cu_device d);
    po__cu_result (*ctx_set_current)(po__cu_context c);
    po__cu_result (*ctx_synchronize)(void);
    po__cu_result (*mem_alloc)(po__cu_ptr *p, size_t bytes);
    po__cu_result (*mem_free)(po__cu_ptr p);
    po__cu_result (*mem_alloc_host)(void **p, size_t bytes);
    po__cu_result (*mem_free_host)(void *p);
    po__cu_result (*memcpy_htod)(po__cu_ptr dst, const void *src, size_t bytes);
    po__cu_result (*memcpy_dtoh)(void *dst, po__cu_ptr src, size_t bytes);
    po__cu_result (*memcpy_peer)(po__cu_ptr dst, po__cu_context dctx, po__cu_ptr src, po__cu_context sctx,
                                 size_t bytes);
} po__cuda;

/* Loads the driver library (path or soname) and initialises it. false, with the reason in why,
 * when it is missing, lacks a symbol, or cuInit fails (no GPU, no driver): "not present". */
bool po__cuda_open(const char *lib, po__cuda *c, char *why, size_t why_size);
void po__cuda_close(po__cuda *c);
/* "cuMemAlloc_v2: out of memory (2)" style text for a failed call. */
const char *po__cuda_error(const po__cuda *c, po__cu_result r, char *buf, size_t size);
bool po__cuda_can_transfer(const po__cuda *c);

/* --- NVML (nvml_dlopen.c) -------------------------------------------------------------------- */

typedef int po__nvml_return; /* nvmlReturn_t: 0 = NVML_SUCCESS */
typedef struct po__nvml_device_st *po__nvml_device;
typedef struct {
    unsigned int gpu, memory; /* percent */
} po__nvml_utilization;
typedef struct {
    unsigned long long total, free, used;
} po__nvml_memory;

enum { PO__NVML_CLOCK_GRAPHICS = 0, PO__NVML_CLOCK_SM = 1, PO__NVML_CLOCK_MEM = 2 };

typedef struct po__nvml {
    void *lib;
    po__nvml_return (*init)(void);
    po__nvml_return (*shutdown)(void);
    const char *(*error_string)(po__nvml_return r);
    po__nvml_return (*system_get_driver_version)(char *v, unsigned len);
    po__nvml_return (*device_get_count)(unsigned *n);
    po__nvml_return (*device_get_handle_by_index)(unsigned i, po__nvml_device *d);
    po__nvml_return (*device_get_handle_by_pci_bus_id)(const char *id, po__nvml_device *d); /* may be NULL */
    po__nvml_return (*device_get_name)(po__nvml_device d, char *name, unsigned len);
    po__nvml_return (*device_get_power_usage)(po__nvml_device d, unsigned *mw);
    po__nvml_return (*device_get_enforced_power_limit)(po__nvml_device d, unsigned *mw);
    po__nvml_return (*device_get_power_limit_constraints)(po__nvml_device d, unsigned *min_mw, unsigned *max_mw);
    po__nvml_return (*device_get_power_default_limit)(po__nvml_device d, unsigned *mw);
    po__nvml_return (*device_get_clock_info)(po__nvml_device d, int type, unsigned *mhz);
    po__nvml_return (*device_get_max_clock_info)(po__nvml_device d, int type, unsigned *mhz);
    po__nvml_return (*device_get_total_energy)(po__nvml_device d, unsigned long long *mj);
    po__nvml_return (*device_get_utilization)(po__nvml_device d, po__nvml_utilization *u);
    po__nvml_return (*device_get_memory_info)(po__nvml_device d, po__nvml_memory *m);
} po__nvml;

/* Loads and initialises NVML. false, with the reason in why, when it is missing or nvmlInit
 * fails: "not present". Optional entry points the library lacks are left NULL. */
bool po__nvml_open(const char *lib, po__nvml *n, char *why, size_t why_size);
void po__nvml_close(po__nvml *n);
const char *po__nvml_error(const po__nvml *n, po__nvml_return r);

/* --- the machine ----------------------------------------------------------------------------- */

struct po_machine {
    po_cpu_info cpu;
    po_cpu_core *cores; /* [cpu.cores] */
    int n_gpus;
    po_gpu_info *gpus;
    bool *peer;            /* [n_gpus * n_gpus]: peer[i * n + j] */
    po__cu_device *cu_dev; /* [n_gpus] */
    bool have_cuda, have_nvml;
    po__cuda cuda;
    po__nvml nvml;
    po__nvml_device *nvml_dev; /* [n_gpus]; NULL entries where NVML does not know the GPU */
    bool real;
    char cuda_status[160], nvml_status[160];
    char fingerprint[17];
};

/* cpuid: vendor, brand, family/model/stepping, uarch, features (cpu_features.c). */
void po__cpu_identify(po_cpu_info *cpu);
/* hwloc: sockets, cores (with their PUs, caches, NUMA node), memory (cpu_discovery.c). */
po_status po__cpu_topology(po_machine *m, const char *synthetic);
/* NVML figures of GPU i into m->gpus[i] (nvml_dlopen.c). */
void po__nvml_fill(po_machine *m, int i);

/* --- helpers --------------------------------------------------------------------------------- */

double po__hw_now(void); /* monotonic seconds */
uint64_t po__fnv1a(const void *data, size_t len, uint64_t h);
#define PO__FNV_INIT 0xcbf29ce484222325ull

/* Runs fn(t, arg) for t in [0, n) on n threads, thread t pinned to core cores[t] of m (all its
 * hardware threads), oneDNN's OpenMP held to one thread in each. Waits for all. */
typedef void (*po__pinned_fn)(int t, void *arg);
po_status po__run_pinned(const po_machine *m, const int *cores, int n, po__pinned_fn fn, void *arg);
/* po__run_pinned on cores first .. first + n - 1, thread t on core first + t. */
po_status po__run_per_core(const po_machine *m, int first, int n, po__pinned_fn fn, void *arg);
/* Runs fn(0, arg) on one thread allowed on all the cores [first, first + n) of m. */
po_status po__run_on_group(const po_machine *m, int first, int n, po__pinned_fn fn, void *arg);
/* Runs fn(t, arg) for t in [0, n) on n threads, thread t allowed on the cores [first[t],
 * first[t] + count[t]) of m (groups may overlap). Waits for all. */
po_status po__run_on_groups(const po_machine *m, const int *first, const int *count, int n, po__pinned_fn fn,
                            void *arg);

/* --- measurement pieces (measure_*.c) -------------------------------------------------------- */

typedef struct po__measure_cfg {
    po_bench_level level;
    int64_t gemm_max, stream_bytes, link_bytes;
    double point_seconds;
    void (*progress)(const char *what, void *ctx);
    void *progress_ctx;
} po__measure_cfg;

void po__progress(const po__measure_cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

po_status po__measure_gemm(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p);
po_status po__measure_memory(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p);
po_status po__measure_dispatch(const po_machine *m, const po_device *d, const po__measure_cfg *c, po_device_perf *p);
po_status po__measure_cpu_link(const po_machine *m, const po_device *from, const po_device *to,
                               const po__measure_cfg *c, po_link_perf *l);
/* Host-GPU and GPU-GPU transfers through the driver API. */
po_status po__measure_gpu_link(const po_machine *m, const po_device *from, const po_device *to, const po_device *host,
                               const po__measure_cfg *c, po_link_perf *l);

/* A perf record with every figure unknown. */
void po__perf_unknown(po_device_perf *p, const char *source);
/* Fills p from the catalog entry (virtual devices, GPUs without a compute backend). */
void po__perf_from_catalog(const po_catalog_entry *e, po_device_perf *p);

/* --- cache (hw_cache.c) ---------------------------------------------------------------------- */

/* Reads path into a profile holding whatever devices and links it has. false when the file is
 * missing, unreadable, malformed, or not for this fingerprint / GEMM library. */
bool po__cache_load(const char *path, const char *fingerprint, const char *gemm_library, po_hw_profile *out);
/* Writes p atomically (creating the directory). */
po_status po__cache_save(const char *path, const po_hw_profile *p);
/* Frees the arrays a profile owns, not the profile itself. */
void po__profile_clear(po_hw_profile *p);

/* --- catalog (catalog.c) --------------------------------------------------------------------- */

extern const unsigned char po__hw_catalog_json[]; /* data/hw_catalog.json + NUL, generated into the build */

/* --- energy pieces (energy_*.c) -------------------------------------------------------------- */

/* A RAPL or amd_energy counter. */
typedef struct po__rapl_zone {
    char name[64];    /* "package-0", "package-0/dram", "Esocket0" */
    char path[4400];  /* the energy file */
    uint64_t max_uj;  /* counter range: it wraps to 0 after max_uj (UINT64_MAX: never) */
    uint64_t last_uj; /* at the last sample */
    double joules;    /* accumulated since the window began */
} po__rapl_zone;

/* Finds the counters under root: powercap intel-rapl:N zones and their "dram" subzones, else
 * amd_energy's Esocket* inputs. Reads each once: any unreadable one fails the whole with a
 * one-line error naming the file (permission denied included); none found: PO_ERR_NOT_FOUND. */
po_status po__rapl_open(const char *root, po__rapl_zone **zones, int *n);
/* Reads a counter, folding the difference since the last reading into joules (one wrap at most). */
po_status po__rapl_sample(po__rapl_zone *z);
/* Counter difference b - a on a counter wrapping after max. */
uint64_t po__rapl_delta(uint64_t a, uint64_t b, uint64_t max);

#endif

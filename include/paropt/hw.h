/* Knowing the machine: what devices it has, how fast they are, and what known hardware offers.
 *
 * Discovery (po_machine_discover) finds the CPU through hwloc (model, sockets, cores, hardware
 * threads, caches, NUMA nodes, memory) and cpuid (AVX2, AVX-512F, AVX512-BF16, AMX), and NVIDIA
 * GPUs through the CUDA driver API and NVML, both loaded at run time with dlopen. A missing
 * library or GPU is "not present", never an error: the CPU-only machine is complete.
 *
 * Devices (po_devices_parse) are what the planner schedules on. The syntax:
 *
 *     cpu:N            core N (cores are numbered 0 .. cores-1 in topology order; a core's
 *                      hardware threads all belong to it)
 *     cpu:N-M          cores N to M inclusive, as one device (a core group)
 *     cuda:N           GPU N, in CUDA's order
 *     A,B,...          several devices; core groups must not overlap, a GPU appears once
 *     auto             one device per core this process may run on (its CPU affinity, as
 *                      taskset or a cgroup set it) plus every GPU; naming a core outside that
 *                      affinity is an error
 *     DEV:key=value    an option for one device (repeatable: cpu:1:key=v:key2=w); keys must be
 *                      registered with po_device_register_option (the runtime registers its own,
 *                      e.g. slowdown), anything else is rejected
 *
 * Spaces around list items are ignored. Errors are one line naming the offending item.
 *
 * Measurement (po_hw_profile_get) times each device — GEMM at several sizes (an efficiency
 * curve), memory bandwidth, element-wise throughput, per-call overhead — and every pair of
 * devices (transfer bandwidth and latency), on threads pinned to the devices' cores, and caches
 * the figures as JSON keyed by a fingerprint of the hardware and paropt's version.
 *
 * The catalog (po_catalog_*) holds datasheet figures of known GPUs and CPUs, compiled into the
 * library from data/hw_catalog.json, for planning on hardware that is not present.
 *
 * Units throughout: bytes, seconds (microseconds where a name ends in _us), GFLOP/s = 1e9
 * floating-point operations per second (a multiply-add counts 2), GB/s = 1e9 bytes per second,
 * watts. Unknown figures are NaN. */
#ifndef PAROPT_HW_H
#define PAROPT_HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paropt/runtime.h"
#include "paropt/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- discovery ------------------------------------------------------------------------------- */

typedef struct po_hw_opts {
    const char *cuda_lib; /* CUDA driver library for dlopen: NULL = "libcuda.so.1"; "" = do not look */
    const char *nvml_lib; /* NVML: NULL = "libnvidia-ml.so.1"; "" = do not look */
    const char *topology; /* an hwloc synthetic topology ("package:2 core:4 pu:2") to describe
                           * instead of this machine (tests, what-if); NULL = this machine. Its
                           * cores cannot be measured: they are not this machine's */
} po_hw_opts;
po_hw_opts po_hw_opts_default(void);

typedef struct po_cpu_features {
    bool avx2, fma;   /* 256-bit vectors with fused multiply-add */
    bool avx512f;     /* AVX-512 foundation (hardware and OS both enable it) */
    bool avx512_bf16; /* AVX512-BF16 dot products */
    bool amx;         /* AMX tiles with BF16 (AMX-TILE + AMX-BF16) */
} po_cpu_features;

/* Largest OS processor number a mask can hold: glibc's CPU_SETSIZE. */
#define PO_CPU_MASK_BITS 1024

typedef struct po_cpu_core {
    int package;                             /* socket, 0-based */
    int numa_node;                           /* 0-based; 0 when the machine has one node */
    int l2, l3;                              /* which L2 / L3 cache instance it sits under; -1 when it has none */
    int n_pus;                               /* hardware threads */
    int first_pu;                            /* the lowest OS processor number among them */
    uint64_t pu_mask[PO_CPU_MASK_BITS / 64]; /* OS processor numbers of its hardware threads */
    bool allowed; /* the discovering thread's CPU affinity (taskset, a cgroup) includes one of its
                   * hardware threads: "auto" takes only such cores, and a device on another is an
                   * error, so that paropt never runs outside the cores it was given */
} po_cpu_core;

typedef struct po_cpu_info {
    char vendor[16];                       /* "AuthenticAMD", "GenuineIntel", or "" */
    char model[80];                        /* brand string ("AMD EPYC 7763 64-Core Processor") */
    char uarch[24];                        /* "zen3", "zen4", "icelake-sp", "sapphirerapids", ... or "unknown" */
    int family, model_id, stepping;        /* cpuid display family/model/stepping (0 off x86) */
    int sockets, cores, pus, numa_nodes;   /* pus = hardware threads */
    int allowed_cores;                     /* cores with allowed set (see po_cpu_core) */
    int64_t l1d_bytes, l2_bytes, l3_bytes; /* size of one instance of each cache; 0 if absent */
    int64_t memory_bytes;                  /* system memory */
    po_cpu_features features;
    const po_cpu_core *core; /* [cores], owned by the machine */
} po_cpu_info;

typedef struct po_gpu_info {
    int index;              /* CUDA ordinal: what cuda:N names */
    char name[96];          /* "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor; /* compute capability */
    int sms;                /* streaming multiprocessors */
    int64_t memory_bytes;
    char pci_bus_id[32]; /* "0000:65:00.0" */
    /* From NVML, when it is present and knows this GPU (nvml true); NaN or 0 otherwise. */
    bool nvml;
    double power_w;                              /* now */
    double power_limit_w;                        /* enforced */
    double power_limit_min_w, power_limit_max_w; /* the range an administrator may set */
    double power_limit_default_w;
    int sm_clock_mhz, mem_clock_mhz; /* now */
    int max_sm_clock_mhz, max_mem_clock_mhz;
    bool energy_counter; /* nvmlDeviceGetTotalEnergyConsumption works (Volta and newer) */
} po_gpu_info;

typedef struct po_machine po_machine;

/* Describes the machine. Fails only when the CPU topology itself cannot be read (hwloc).
 * Free with po_machine_free (NULL is fine). */
po_status po_machine_discover(const po_hw_opts *o, po_machine **out);
void po_machine_free(po_machine *m);

const po_cpu_info *po_machine_cpu(const po_machine *m);
int po_machine_n_gpus(const po_machine *m);
const po_gpu_info *po_machine_gpu(const po_machine *m, int i); /* NULL when out of range */
/* Whether GPU `from` can access GPU `to`'s memory directly (cuDeviceCanAccessPeer). */
bool po_machine_gpu_peer(const po_machine *m, int from, int to);
/* One line each, for reports: "not present (libcuda.so.1: cannot open ...)", "driver 12.4,
 * 2 GPUs"; "not present (...)" or "driver 550.54, 2 GPUs" for NVML. Owned by the machine. */
const char *po_machine_cuda_status(const po_machine *m);
const char *po_machine_nvml_status(const po_machine *m);
/* 16 hex digits identifying the hardware (CPU model, family/model/stepping, sockets, cores,
 * threads, features, caches, memory rounded to 256 MiB, each GPU's name, memory and PCI bus id)
 * and paropt's version: the hardware cache's key. Owned by the machine. */
const char *po_machine_fingerprint(const po_machine *m);
/* Whether the machine is this one (false for a synthetic topology: nothing to pin or time). */
bool po_machine_is_real(const po_machine *m);

/* Live GPU readings through NVML (NaN / -1 where unavailable). */
typedef struct po_gpu_sample {
    double power_w;
    int util_gpu_pct, util_mem_pct;
    int sm_clock_mhz;
} po_gpu_sample;
po_status po_machine_gpu_sample(const po_machine *m, int i, po_gpu_sample *out);

/* --- devices --------------------------------------------------------------------------------- */

typedef enum { PO_DEVICE_CPU, PO_DEVICE_CUDA } po_device_kind;
const char *po_device_kind_name(po_device_kind k); /* "cpu", "cuda" */

typedef struct po_device_opt {
    char key[32];
    char value[64];
} po_device_opt;

/* Options per device: at most one per registered key, and no more than this. */
#define PO_DEVICE_MAX_OPTS 8

typedef struct po_device {
    char id[32]; /* canonical, without options: "cpu:0", "cpu:2-3", "cuda:1" */
    po_device_kind kind;
    int first_core, n_cores; /* CPU: cores [first_core, first_core + n_cores); GPU: 0, 0 */
    int gpu;                 /* GPU: CUDA ordinal; CPU: -1 */
    bool is_virtual;         /* made from a catalog entry (po_catalog_virtual_device): not present */
    char name[96];           /* CPU model or GPU name */
    int64_t memory_bytes;    /* memory it computes from: system memory for a core group, device memory for a GPU */
    int n_opts;
    po_device_opt opt[PO_DEVICE_MAX_OPTS]; /* in the order given */
} po_device;

typedef struct po_device_list {
    int n;
    po_device *dev; /* [n], owned; free with po_device_list_free */
} po_device_list;

/* Parses and validates a device list (syntax above) against machine m. On failure *out is left
 * empty and the one-line error names the item: malformed text, unknown device kind, a core or
 * GPU that does not exist, overlapping core groups, a repeated GPU, an unknown option. */
po_status po_devices_parse(const po_machine *m, const char *text, po_device_list *out);
/* po_devices_parse for training: "auto" means the devices the runtime trains on, the allowed CPU
 * cores, and leaves the GPUs out until the runtime can train on them (so that training with
 * the default devices works on a machine with a GPU). A GPU named explicitly is still parsed:
 * the trainer rejects it with its own message. */
po_status po_devices_parse_trainable(const po_machine *m, const char *text, po_device_list *out);
void po_device_list_free(po_device_list *l);

/* Registers an option key devices may carry (letters, digits, '_'; at most 31 characters),
 * with a one-line description used in error messages. Registering a key again is harmless.
 * Process-wide and thread-safe. */
po_status po_device_register_option(const char *key, const char *help);
/* The value of option `key` on d, or NULL when it is not set. */
const char *po_device_opt_get(const po_device *d, const char *key);

/* --- measurement ----------------------------------------------------------------------------- */

typedef enum { PO_BENCH_QUICK, PO_BENCH_FULL } po_bench_level;
po_status po_bench_level_parse(const char *name, po_bench_level *out); /* "quick", "full" */
const char *po_bench_level_name(po_bench_level l);

typedef struct po_measure_opts {
    po_bench_level level;  /* QUICK (default): under 10 s on two cores; FULL: more sizes, longer runs */
    const char *cache_dir; /* NULL: po_hw_cache_dir(); "": no cache (always measure, never write) */
    bool refresh;          /* measure again even when the cache has the figures */
    /* Called before each figure is measured with a short description ("cpu:0: GEMM 1024^3");
     * NULL for silence. */
    void (*progress)(const char *what, void *ctx);
    void *progress_ctx;
    /* Size overrides, 0 = the level's default (tests use tiny sizes; results measured with any
     * override set are never written to the cache). */
    int64_t gemm_max;     /* largest square GEMM side in the curve */
    int64_t stream_bytes; /* triad working set per device */
    int64_t link_bytes;   /* bytes moved per link transfer */
    double point_seconds; /* time spent on each figure */
} po_measure_opts;
po_measure_opts po_measure_opts_default(void);

/* One point of the GEMM efficiency curve: C[m, n] += A[m, k] B[k, n] in FP32. */
typedef struct po_gemm_point {
    int64_t m, n, k;
    double gflops; /* for a core group: the group's aggregate, one GEMM per core at once */
} po_gemm_point;

#define PO_GEMM_CURVE_MAX 8

typedef struct po_device_perf {
    char source[16];      /* "measured", "catalog" (datasheet figures: virtual devices and
                           * GPUs, which have no compute backend yet), or "none" */
    po_bench_level level; /* the level it was measured at */
    int n_gemm;
    po_gemm_point gemm[PO_GEMM_CURVE_MAX]; /* squares 64..1024 (2048 in FULL), then tall-skinny */
    double gemm_gflops;                    /* the 1024^3 point: the headline figure */
    double mem_bandwidth_gbs;              /* streaming triad a = b + s*c over 4x the L3 size; 12 bytes per element */
    double elementwise_gelems;             /* 1e9 elements/s of y = a*x + b on a cache-resident array */
    double dispatch_us;                    /* executor overhead per node: a one-element graph, run repeatedly */
    double gemm_call_us;                   /* one 1x1x1 matrix product through the GEMM entry point */
} po_device_perf;

typedef struct po_link_perf {
    char from[32], to[32]; /* device ids */
    double bandwidth_gbs;  /* bytes written on `from` and copied on `to` / seconds of the copy */
    double latency_us;     /* one way: half a ping-pong round trip */
    /* CPU devices in shared memory: what `to` pays, per byte, beyond its own time to rewrite
     * lines `from` has just read (the lines must be taken back from `from`'s caches first), as
     * when data-parallel replicas update parameters every replica read. NaN: not measured. */
    double reclaim_ns_per_byte;
    /* CPU devices: one way of a hand-off between threads that block while they wait (a
     * condition variable), each idle for a while before: what handing a training step to the
     * runner threads and being woken at its end costs, per direction. NaN: not measured. */
    double wake_us;
    bool measured;         /* false: copied from a measured link with the same topology (same L3,
                            * NUMA node, socket; QUICK on machines with many cores), from the first
                            * CPU device for host-GPU links, or not measurable (figures NaN) */
    po_bench_level level;
} po_link_perf;

typedef struct po_hw_profile {
    char fingerprint[17]; /* po_machine_fingerprint */
    po_bench_level level;
    char gemm_library[16]; /* po_gemm_provider_name of the setting the GEMMs ran under */
    int n_devices;
    po_device *devices;   /* [n_devices], copies of the measured list */
    po_device_perf *perf; /* [n_devices] */
    int n_links;
    po_link_perf *links; /* [n_links]: every ordered pair of distinct devices */
    bool from_cache;     /* nothing was measured: every figure came from the cache */
    int measured;        /* figures measured by this call (devices + links) */
    char *cache_path;    /* the cache file read or written; NULL without a cache */
} po_hw_profile;

/* Figures for every device of devs (and every pair), from the cache where it has them for this
 * hardware, level (FULL figures serve a QUICK request, not the reverse) and GEMM library,
 * measuring the rest and writing the merged result back atomically. A cache file that is
 * missing, corrupt, or from other hardware or another paropt version is ignored (re-measured),
 * never an error; failing to write it is not an error either. Devices are measured one after
 * the other. Fails on a synthetic machine (nothing real to measure) unless the cache has all. */
po_status po_hw_profile_get(const po_machine *m, const po_device_list *devs, const po_measure_opts *o,
                            po_hw_profile **out);
void po_hw_profile_free(po_hw_profile *p);
/* Lookups by device id; NULL when absent. */
const po_device_perf *po_hw_profile_perf(const po_hw_profile *p, const char *device_id);
const po_link_perf *po_hw_profile_link(const po_hw_profile *p, const char *from, const char *to);

/* $XDG_CACHE_HOME/paropt, else $HOME/.cache/paropt. Fails (PO_ERR_NOT_FOUND) when neither
 * variable is set, PO_ERR_RANGE when buf is too small. Does not create the directory. */
po_status po_hw_cache_dir(char *buf, size_t size);

/* Time statistics of repeated runs. */
typedef struct po_time_stats {
    int runs;
    double min_s, median_s, mean_s, max_s, stddev_s;
} po_time_stats;

/* Per-op profiling, what the cost model calibrates from: runs ex's graph `runs` times (after
 * `warmup` untimed runs) on one thread pinned to device d's cores and reports the time node n
 * took in each run (n NULL: the whole run). Inputs are whatever ex holds; a graph with an
 * optimizer takes a training step per run. CPU devices only (PO_ERR_UNSUPPORTED for GPUs until
 * the CUDA backend exists); a core group runs the executor on one thread, allowed on all its
 * cores. */
po_status po_hw_time_node(const po_machine *m, const po_device *d, po_exec *ex, const po_node *n, int warmup, int runs,
                          po_time_stats *out);

/* --- catalog --------------------------------------------------------------------------------- */

typedef enum {
    PO_PREC_FP64,
    PO_PREC_FP32,
    PO_PREC_TF32,
    PO_PREC_FP16,
    PO_PREC_BF16,
    PO_PREC_FP8,
    PO_PREC_INT8,
    PO_PREC_COUNT
} po_precision;
const char *po_precision_name(po_precision p); /* "fp64", ..., "int8" */

typedef struct po_catalog_entry {
    const char *id;   /* "h100-sxm", "amd-epyc-zen3" */
    const char *name; /* "NVIDIA H100 SXM5 80GB" */
    po_device_kind kind;
    const char *uarch;                 /* CPUs: the po_cpu_info.uarch it describes; "" for GPUs */
    bool per_core;                     /* CPU entries: every figure below is one core's share */
    int cores;                         /* CPUs: cores of the reference part the shares come from; GPUs: SMs */
    double peak_gflops[PO_PREC_COUNT]; /* dense peak per precision (tensor cores / AMX where present);
                                        * 0 = not supported */
    double mem_bandwidth_gbs;
    int64_t memory_bytes; /* 0 for CPUs */
    double tdp_w;         /* board power (GPUs) or TDP share (CPU cores) */
    double idle_w;        /* typical idle power (an estimate: datasheets rarely give it) */
    const char *source;   /* where the figures come from */
} po_catalog_entry;

int po_catalog_count(void);
const po_catalog_entry *po_catalog_get(int i); /* NULL when out of range */
/* Finds an entry by id or name (case-insensitive), else by a device name as CUDA or the CPU
 * reports it ("NVIDIA A100-SXM4-40GB", "Tesla T4"): the entry whose match words all appear
 * among the name's words. NULL when nothing matches. */
const po_catalog_entry *po_catalog_find(const char *name);
/* The entry for a CPU: by microarchitecture, else the generic x86-64 core (never NULL). */
const po_catalog_entry *po_catalog_cpu(const po_cpu_info *cpu);
/* A device that is not present, for what-if planning: a GPU from a GPU entry, or one core from a
 * CPU entry, with datasheet figures (source "catalog": gemm_gflops is the FP32 peak, the
 * element-wise rate is the memory bandwidth over 8 bytes per element, dispatch unknown). Its
 * id is "virtual:<entry id>". PO_ERR_NOT_FOUND naming the known ids when nothing matches. */
po_status po_catalog_virtual_device(const char *name, po_device *dev, po_device_perf *perf);

#ifdef __cplusplus
}
#endif
#endif

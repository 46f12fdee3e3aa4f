/* paropt devices: the machine's devices with their measured figures (from the hardware cache
 * when it has them), as a table or JSON, or a once-a-second power and utilization monitor. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "paropt/energy.h"
#include "paropt/hw.h"
#include "paropt/paropt.h"

typedef struct {
    const char *devices;
    po_bench_level level;
    bool json, refresh, watch;
} devices_args;

static void devices_usage(FILE *f) {
    fprintf(f, "usage: paropt devices [options]\n"
               "\n"
               "Discovers the machine's devices, measures them (GEMM at several sizes, memory bandwidth,\n"
               "element-wise rate, per-call overhead, transfers between every pair) and prints the figures.\n"
               "Measurements are cached per machine in $XDG_CACHE_HOME/paropt (or ~/.cache/paropt).\n"
               "\n"
               "  --devices LIST      devices to describe (default auto): cpu:N, cpu:N-M (a core group),\n"
               "                      cuda:N, comma-separated, or auto (one device per core and every GPU)\n"
               "  --bench quick|full  how thoroughly to measure (default quick: about a\n"
               "                      second a core)\n"
               "  --refresh           measure again even when the cache has the figures\n"
               "  --json              print one JSON object instead of the table\n"
               "  --watch             print power and utilization once a second until interrupted (no\n"
               "                      measurement; with --json, one object per line)\n"
               "  -h, --help          show this help\n"
               "\n"
               "Units: GFLOP/s, GB/s (1e9 bytes/s), microseconds, watts. The README's section\n"
               "\"paropt devices\" defines every figure.\n");
}

static int parse_args(int argc, char **argv, devices_args *a) {
    enum { O_DEVICES = 256, O_BENCH, O_JSON, O_REFRESH, O_WATCH };
    static const struct option opts[] = {{"devices", required_argument, 0, O_DEVICES},
                                         {"bench", required_argument, 0, O_BENCH},
                                         {"json", no_argument, 0, O_JSON},
                                         {"refresh", no_argument, 0, O_REFRESH},
                                         {"watch", no_argument, 0, O_WATCH},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->devices = "auto";
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_DEVICES: a->devices = optarg; break;
        case O_BENCH:
            if (po_bench_level_parse(optarg, &a->level)) {
                cli_error("--bench: %s", po_last_error());
                return CLI_USAGE;
            }
            break;
        case O_JSON: a->json = true; break;
        case O_REFRESH: a->refresh = true; break;
        case O_WATCH: a->watch = true; break;
        case 'h': devices_usage(stdout); return -1;
        case ':':
        default: return cli_bad_option("devices", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see paropt devices --help)", argv[optind]);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static void progress(const char *what, void *ctx) {
    (void)ctx;
    fprintf(stderr, "paropt: measuring %s\n", what);
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void fmt_bytes(int64_t b, char *buf, size_t size) {
    if (b >= (1ll << 30))
        snprintf(buf, size, "%.1f GiB", b / 1073741824.0);
    else if (b >= (1ll << 20))
        snprintf(buf, size, "%.0f MiB", b / 1048576.0);
    else
        snprintf(buf, size, "%.0f KiB", b / 1024.0);
}

static void fmt_num(double v, const char *f, char *buf, size_t size) {
    if (isfinite(v))
        snprintf(buf, size, f, v);
    else
        snprintf(buf, size, "-");
}

static void features_text(const po_cpu_features *f, char *buf, size_t size) {
    snprintf(buf, size, "%s%s%s%s%s", f->avx2 ? " AVX2" : "", f->fma ? " FMA" : "", f->avx512f ? " AVX-512F" : "",
             f->avx512_bf16 ? " AVX512-BF16" : "", f->amx ? " AMX" : "");
    if (!buf[0]) snprintf(buf, size, " (no AVX2)");
}

/* --- JSON -------------------------------------------------------------------------------- */

static json_t *machine_json(const po_machine *m) {
    const po_cpu_info *c = po_machine_cpu(m);
    json_t *feat = json_array();
    if (c->features.avx2) json_array_append_new(feat, json_string("avx2"));
    if (c->features.fma) json_array_append_new(feat, json_string("fma"));
    if (c->features.avx512f) json_array_append_new(feat, json_string("avx512f"));
    if (c->features.avx512_bf16) json_array_append_new(feat, json_string("avx512_bf16"));
    if (c->features.amx) json_array_append_new(feat, json_string("amx"));
    return json_pack("{ss ss ss si si si si si sI sI sI sI so ss si ss ss}", "cpu_model", c->model, "vendor",
                     c->vendor, "uarch", c->uarch, "sockets", c->sockets, "cores", c->cores, "allowed_cores",
                     c->allowed_cores, "threads", c->pus, "numa_nodes",
                     c->numa_nodes, "l1d_bytes", (json_int_t)c->l1d_bytes, "l2_bytes", (json_int_t)c->l2_bytes,
                     "l3_bytes", (json_int_t)c->l3_bytes, "memory_bytes", (json_int_t)c->memory_bytes, "features", feat,
                     "catalog", po_catalog_cpu(c)->id, "gpus", po_machine_n_gpus(m), "cuda", po_machine_cuda_status(m),
                     "nvml", po_machine_nvml_status(m));
}

static json_t *device_json(const po_machine *m, const po_device *d, const po_device_perf *p) {
    json_t *curve = json_array();
    for (int i = 0; i < p->n_gemm; i++)
        json_array_append_new(curve,
                              json_pack("{sI sI sI so}", "m", (json_int_t)p->gemm[i].m, "n", (json_int_t)p->gemm[i].n,
                                        "k", (json_int_t)p->gemm[i].k, "gflops", num(p->gemm[i].gflops)));
    const po_gpu_info *g = d->kind == PO_DEVICE_CUDA ? po_machine_gpu(m, d->gpu) : NULL;
    json_t *o =
        json_pack("{ss ss ss si sI so so so so so so ss ss}", "id", d->id, "kind", po_device_kind_name(d->kind), "name",
                  d->name, "cores", g ? g->sms : d->n_cores, "memory_bytes", (json_int_t)d->memory_bytes, "gemm_gflops",
                  num(p->gemm_gflops), "gemm_curve", curve, "mem_bandwidth_gbs", num(p->mem_bandwidth_gbs),
                  "elementwise_gelems", num(p->elementwise_gelems), "dispatch_us", num(p->dispatch_us), "gemm_call_us",
                  num(p->gemm_call_us), "source", p->source, "bench", po_bench_level_name(p->level));
    if (d->kind == PO_DEVICE_CPU) {
        json_t *ids = json_array();
        for (int c = d->first_core; c < d->first_core + d->n_cores; c++)
            json_array_append_new(ids, json_integer(c));
        json_object_set_new(o, "core_ids", ids);
    }
    if (g) {
        char cc[16];
        snprintf(cc, sizeof cc, "%d.%d", g->cc_major, g->cc_minor);
        json_t *peers = json_array();
        for (int j = 0; j < po_machine_n_gpus(m); j++)
            if (po_machine_gpu_peer(m, g->index, j)) {
                char id[16];
                snprintf(id, sizeof id, "cuda:%d", j);
                json_array_append_new(peers, json_string(id));
            }
        json_object_set_new(o, "compute_capability", json_string(cc));
        json_object_set_new(o, "pci_bus_id", json_string(g->pci_bus_id));
        json_object_set_new(o, "peers", peers);
        json_object_set_new(o, "nvml", json_boolean(g->nvml));
        json_object_set_new(o, "power_w", num(g->power_w));
        json_object_set_new(o, "power_limit_w", num(g->power_limit_w));
        json_object_set_new(o, "power_limit_min_w", num(g->power_limit_min_w));
        json_object_set_new(o, "power_limit_max_w", num(g->power_limit_max_w));
        json_object_set_new(o, "power_limit_default_w", num(g->power_limit_default_w));
        json_object_set_new(o, "sm_clock_mhz", json_integer(g->sm_clock_mhz));
        json_object_set_new(o, "max_sm_clock_mhz", json_integer(g->max_sm_clock_mhz));
        json_object_set_new(o, "mem_clock_mhz", json_integer(g->mem_clock_mhz));
        json_object_set_new(o, "max_mem_clock_mhz", json_integer(g->max_mem_clock_mhz));
        json_object_set_new(o, "energy_counter", json_boolean(g->energy_counter));
        const po_catalog_entry *e = po_catalog_find(g->name);
        json_object_set_new(o, "catalog", e ? json_string(e->id) : json_null());
    }
    if (d->n_opts) {
        json_t *opts = json_object();
        for (int i = 0; i < d->n_opts; i++)
            json_object_set_new(opts, d->opt[i].key, json_string(d->opt[i].value));
        json_object_set_new(o, "options", opts);
    }
    return o;
}

static json_t *energy_json(const po_meter *meter, const po_machine *m) {
    json_t *domains = json_array();
    for (int i = 0; i < po_meter_n_domains(meter); i++) {
        po_energy_domain d;
        if (po_meter_domain(meter, i, &d) == PO_OK)
            json_array_append_new(domains, json_pack("{ss ss}", "name", d.name, "source", d.source));
    }
    json_t *o =
        json_pack("{ss ss so}", "source", po_meter_source(meter), "note", po_meter_note(meter), "domains", domains);
    if (strstr(po_meter_source(meter), "estimated:model")) {
        const po_catalog_entry *e = po_catalog_cpu(po_machine_cpu(m));
        json_object_set_new(
            o, "model", json_pack("{ss sf sf}", "catalog", e->id, "core_idle_w", e->idle_w, "core_tdp_w", e->tdp_w));
    }
    return o;
}

static int print_json(const po_machine *m, const po_hw_profile *p, const po_meter *meter) {
    json_t *devices = json_array(), *links = json_array();
    for (int i = 0; i < p->n_devices; i++)
        json_array_append_new(devices, device_json(m, &p->devices[i], &p->perf[i]));
    for (int i = 0; i < p->n_links; i++) {
        const po_link_perf *l = &p->links[i];
        json_array_append_new(links, json_pack("{ss ss so so so so sb}", "from", l->from, "to", l->to,
                                               "bandwidth_gbs", num(l->bandwidth_gbs), "latency_us",
                                               num(l->latency_us), "reclaim_ns_per_byte",
                                               num(l->reclaim_ns_per_byte), "wake_us", num(l->wake_us), "measured",
                                               l->measured));
    }
    json_t *o =
        json_pack("{ss ss ss ss sb so so so so so}", "paropt_version", PO_VERSION, "fingerprint", p->fingerprint,
                  "bench", po_bench_level_name(p->level), "gemm_library", p->gemm_library, "cached", p->from_cache,
                  "cache_file", p->cache_path ? json_string(p->cache_path) : json_null(), "machine", machine_json(m),
                  "devices", devices, "links", links, "energy", energy_json(meter, m));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!s) {
        cli_error("out of memory formatting JSON");
        return CLI_FAIL;
    }
    printf("%s\n", s);
    free(s);
    return CLI_OK;
}

/* --- table ------------------------------------------------------------------------------- */

static void print_table(const po_machine *m, const po_hw_profile *p, const po_meter *meter) {
    const po_cpu_info *c = po_machine_cpu(m);
    char l1[16], l2[16], l3[16], mem[16], feat[64];
    fmt_bytes(c->l1d_bytes, l1, sizeof l1);
    fmt_bytes(c->l2_bytes, l2, sizeof l2);
    fmt_bytes(c->l3_bytes, l3, sizeof l3);
    fmt_bytes(c->memory_bytes, mem, sizeof mem);
    features_text(&c->features, feat, sizeof feat);
    char allowed[48] = "";
    if (c->allowed_cores < c->cores)
        snprintf(allowed, sizeof allowed, " (%d this process may run on)", c->allowed_cores);
    printf("cpu      %s (%s): %d socket%s, %d cores%s, %d threads, %d NUMA node%s; L1d %s, L2 %s, L3 %s;%s\n",
           c->model, c->uarch, c->sockets, c->sockets == 1 ? "" : "s", c->cores, allowed, c->pus, c->numa_nodes,
           c->numa_nodes == 1 ? "" : "s", l1, l2, l3, feat);
    printf("memory   %s\n", mem);
    printf("gpus     CUDA %s; NVML %s\n", po_machine_cuda_status(m), po_machine_nvml_status(m));
    printf("energy   %s%s%s%s\n", po_meter_source(meter), po_meter_note(meter)[0] ? " (" : "", po_meter_note(meter),
           po_meter_note(meter)[0] ? ")" : "");
    printf("\n%-10s %-5s %5s %10s  %-44s %9s %9s %8s %8s  %s\n", "device", "kind", "cores", "memory",
           "GEMM GFLOP/s: 64 128 256 512 1024 ... | tall", "triad", "elem", "node", "gemm", "source");
    printf("%-10s %-5s %5s %10s  %-44s %9s %9s %8s %8s\n", "", "", "", "", "", "GB/s", "G/s", "us", "us");
    for (int i = 0; i < p->n_devices; i++) {
        const po_device *d = &p->devices[i];
        const po_device_perf *q = &p->perf[i];
        char curve[160] = "", tri[16], ew[16], node[16], call[16];
        size_t used = 0;
        for (int k = 0; k < q->n_gemm && used < sizeof curve; k++)
            used += (size_t)snprintf(curve + used, sizeof curve - used, "%s%.1f",
                                     k == 0               ? ""
                                     : k == q->n_gemm - 1 ? " | "
                                                          : " ",
                                     q->gemm[k].gflops);
        if (!q->n_gemm)
            snprintf(curve, sizeof curve, isfinite(q->gemm_gflops) ? "%.0f (datasheet FP32 peak)" : "-",
                     q->gemm_gflops);
        fmt_num(q->mem_bandwidth_gbs, "%.1f", tri, sizeof tri);
        fmt_num(q->elementwise_gelems, "%.2f", ew, sizeof ew);
        fmt_num(q->dispatch_us, "%.2f", node, sizeof node);
        fmt_num(q->gemm_call_us, "%.2f", call, sizeof call);
        fmt_bytes(d->memory_bytes, mem, sizeof mem);
        printf("%-10s %-5s %5d %10s  %-44s %9s %9s %8s %8s  %s\n", d->id, po_device_kind_name(d->kind),
               d->kind == PO_DEVICE_CPU ? d->n_cores : po_machine_gpu(m, d->gpu)->sms, mem, curve, tri, ew, node, call,
               q->source);
    }
    if (p->n_links) printf("\n%-24s %10s %11s %12s %8s\n", "link", "GB/s", "latency us", "reclaim ns/B", "wake us");
    for (int i = 0; i < p->n_links; i++) {
        const po_link_perf *l = &p->links[i];
        char name[72], bw[16], lat[16], rec[16], wake[16];
        snprintf(name, sizeof name, "%s -> %s", l->from, l->to);
        fmt_num(l->bandwidth_gbs, "%.2f", bw, sizeof bw);
        fmt_num(l->latency_us, "%.3f", lat, sizeof lat);
        fmt_num(l->reclaim_ns_per_byte, "%.3f", rec, sizeof rec);
        fmt_num(l->wake_us, "%.1f", wake, sizeof wake);
        printf("%-24s %10s %11s %12s %8s%s\n", name, bw, lat, rec, wake, l->measured ? "" : "  (like a measured link)");
    }
    printf("\n%s bench; %s%s\n", po_bench_level_name(p->level), p->from_cache ? "all figures from " : "cache ",
           p->cache_path ? p->cache_path : "(none: no HOME or XDG_CACHE_HOME)");
}

/* --- watch ------------------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Busy fraction of a device's processors between two /proc/stat readings. */
static double device_util(const po_machine *m, const po_device *d, const po_cpu_times *a, int na, const po_cpu_times *b,
                          int nb) {
    const po_cpu_info *c = po_machine_cpu(m);
    double sum = 0;
    int n = 0;
    for (int k = d->first_core; k < d->first_core + d->n_cores; k++)
        for (int pu = 0; pu < PO_CPU_MASK_BITS; pu++) {
            if (!((c->core[k].pu_mask[pu / 64] >> (pu % 64)) & 1)) continue;
            for (int i = 0; i < na; i++)
                for (int j = 0; j < nb; j++)
                    if (a[i].cpu == pu && b[j].cpu == pu) {
                        sum += po_cpu_utilization(&a[i], &b[j]);
                        n++;
                    }
        }
    return n ? sum / n : NAN;
}

static int watch(const po_machine *m, const po_device_list *devs, po_meter *meter, bool json) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    po_cpu_times *prev = NULL, *now = NULL;
    int n_prev = 0, n_now = 0;
    if (po_meter_begin(meter) || po_proc_stat_read(NULL, &prev, &n_prev)) {
        cli_error("--watch: %s", po_last_error());
        return CLI_FAIL;
    }
    if (!json)
        fprintf(stderr, "paropt: watching %d device%s once a second; Ctrl-C stops\n", devs->n, devs->n == 1 ? "" : "s");
    double j_prev = 0, t_prev = 0;
    int rc = CLI_OK;
    while (!interrupted) {
        struct timespec one = {1, 0};
        while (nanosleep(&one, &one) != 0 && !interrupted) {
        }
        if (interrupted) break;
        po_energy_reading r;
        if (po_meter_read(meter, &r) || po_proc_stat_read(NULL, &now, &n_now)) {
            cli_error("--watch: %s", po_last_error());
            rc = CLI_FAIL;
            break;
        }
        double watts = r.seconds > t_prev ? (r.joules - j_prev) / (r.seconds - t_prev) : 0;
        j_prev = r.joules;
        t_prev = r.seconds;
        time_t wall = time(NULL);
        char stamp[16];
        strftime(stamp, sizeof stamp, "%H:%M:%S", localtime(&wall));
        json_t *o =
            json ? json_pack("{ss sf sf ss}", "time", stamp, "seconds", r.seconds, "power_w", watts, "source", r.source)
                 : NULL;
        json_t *list = json ? json_array() : NULL;
        if (!json) printf("%s  %7.1f W  %-16s", stamp, watts, r.source);
        for (int i = 0; i < devs->n; i++) {
            const po_device *d = &devs->dev[i];
            if (d->kind == PO_DEVICE_CPU) {
                double u = device_util(m, d, prev, n_prev, now, n_now);
                if (json)
                    json_array_append_new(list, json_pack("{ss so}", "id", d->id, "util", num(u)));
                else
                    printf("  %s %3.0f%%", d->id, 100 * u);
            } else {
                po_gpu_sample s;
                po_machine_gpu_sample(m, d->gpu, &s);
                if (json)
                    json_array_append_new(
                        list, json_pack("{ss so so}", "id", d->id, "util",
                                        s.util_gpu_pct >= 0 ? json_real(s.util_gpu_pct / 100.0) : json_null(),
                                        "power_w", num(s.power_w)));
                else
                    printf("  %s %3d%% %.0f W", d->id, s.util_gpu_pct, s.power_w);
            }
        }
        if (json) {
            json_object_set_new(o, "devices", list);
            char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
            if (s) printf("%s", s);
            free(s);
            json_decref(o);
        }
        printf("\n");
        fflush(stdout);
        free(prev);
        prev = now;
        n_prev = n_now;
        now = NULL;
    }
    free(prev);
    free(now);
    po_energy_reading r;
    po_meter_end(meter, &r);
    return rc;
}

/* --- main -------------------------------------------------------------------------------- */

int cmd_devices(int argc, char **argv) {
    devices_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    po_machine *m = NULL;
    if (po_machine_discover(NULL, &m)) {
        cli_error("%s", po_last_error());
        return CLI_FAIL;
    }
    po_device_list devs = {0};
    if (po_devices_parse(m, a.devices, &devs)) {
        cli_error("--devices: %s", po_last_error());
        po_machine_free(m);
        return CLI_USAGE;
    }
    po_meter *meter = NULL;
    if (po_meter_new(NULL, &meter)) {
        cli_error("energy meter: %s", po_last_error());
        rc = CLI_FAIL;
    } else if (a.watch) {
        rc = watch(m, &devs, meter, a.json);
    } else {
        po_measure_opts mo = po_measure_opts_default();
        mo.level = a.level;
        mo.refresh = a.refresh;
        mo.progress = progress;
        po_hw_profile *p = NULL;
        if (po_hw_profile_get(m, &devs, &mo, &p)) {
            cli_error("%s", po_last_error());
            rc = CLI_FAIL;
        } else if (a.json) {
            rc = print_json(m, p, meter);
        } else {
            print_table(m, p, meter);
        }
        po_hw_profile_free(p);
    }
    po_meter_free(meter);
    po_device_list_free(&devs);
    po_machine_free(m);
    return rc;
}

/* paropt bench: the benchmark suite. For each workload it trains (each run a child
 * `paropt train ... --json`) on one device, with the time-optimal plan, with the energy-aware
 * plan and data parallel over 2..N devices. With --rounds N the whole suite runs N times, one
 * round after the other, so the configurations alternate and see the machine over the same
 * stretch of time; the table takes each configuration's median over the rounds. It then writes
 * results.json (machine, every run's round, argv and summary, the table derived from them) and
 * report.html. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "io/atomic_file.h"
#include "paropt/hw.h"
#include "paropt/paropt.h"

#define DEFAULT_WORKLOADS "mnist_mlp,cifar_cnn,tiny_gpt"
#define MAX_ROUNDS        20

typedef struct {
    const char *workloads, *devices, *out, *peer;
    bool quick;
    int64_t steps, warmup, calibrate, rounds;
} bench_args;

static void bench_usage(FILE *f) {
    fprintf(f, "usage: paropt bench [--workloads LIST] [--devices LIST] [--quick] [--steps N] [--warmup N]\n"
               "                    [--rounds N] [--out DIR] [--peer FILE.jsonl]\n"
               "\n"
               "Benchmarks training on this machine: for each workload (synthetic data), a baseline on one\n"
               "device (the first of --devices), the automatic time-optimal plan (--plan auto), the energy-aware\n"
               "plan (--plan auto --objective energy) and data parallel over the first k devices for k = 2..N.\n"
               "Each run is a child `paropt train ... --json`; progress goes to stderr, the table to stdout.\n"
               "\n"
               "  --workloads LIST    comma-separated model specs (default " DEFAULT_WORKLOADS ", at their\n"
               "                      benchmark sizes); a spec may set keys: mnist_mlp:hidden=256,batch=64,cifar_cnn\n"
               "                      (a piece holding '=' and no ':' is a key of the spec before it). Models:\n");
    for (const char *const *n = po_model_names(); *n; n++)
        fprintf(f, "                        %-10s %s\n", *n, po_model_keys(*n));
    fprintf(f, "  --devices LIST      devices to plan over: cpu:N, cpu:N-M, ... or auto (default: every core it may run on)\n"
               "  --quick             8 steps after 2 warm-up steps, calibration from 1 step (default: 30 steps\n"
               "                      after 5, calibration from 2)\n"
               "  --steps N           timed and warm-up steps of each run (overrides --quick's)\n"
               "  --warmup N          steps left out of each run's timing (less than --steps)\n"
               "  --rounds N          run the whole suite N times (1..20, default 1), every configuration once per\n"
               "                      round in the same order, so the configurations alternate; the table takes each\n"
               "                      configuration's median over the rounds and shows its spread (max/min - 1)\n"
               "  --out DIR           where results.json and report.html go (default ./paropt-bench); created\n"
               "                      when missing; an earlier bench output there is replaced once every run\n"
               "                      has succeeded; any other non-empty directory is refused\n"
               "  --peer FILE.jsonl   PyTorch figures to compare with (bench/peer/torch_bench.sh writes them)\n"
               "  -h, --help          show this help\n"
               "\n"
               "Every figure of the table is computed from the runs' own --json summaries, which results.json\n"
               "holds verbatim with each run's exact command and round. Exit status: 0 done, 1 a run or the output\n"
               "failed (nothing is written then), 2 bad usage.\n");
}

static int parse_args(int argc, char **argv, bench_args *a) {
    enum { O_WORKLOADS = 256, O_DEVICES, O_QUICK, O_STEPS, O_WARMUP, O_ROUNDS, O_OUT, O_PEER };
    static const struct option opts[] = {{"workloads", required_argument, 0, O_WORKLOADS},
                                         {"devices", required_argument, 0, O_DEVICES},
                                         {"quick", no_argument, 0, O_QUICK},
                                         {"steps", required_argument, 0, O_STEPS},
                                         {"warmup", required_argument, 0, O_WARMUP},
                                         {"rounds", required_argument, 0, O_ROUNDS},
                                         {"out", required_argument, 0, O_OUT},
                                         {"peer", required_argument, 0, O_PEER},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->workloads = DEFAULT_WORKLOADS;
    a->devices = "auto";
    a->out = "paropt-bench";
    a->steps = a->warmup = -1;
    a->rounds = 1;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_WORKLOADS: a->workloads = optarg; break;
        case O_DEVICES: a->devices = optarg; break;
        case O_QUICK: a->quick = true; break;
        case O_STEPS:
            if (!cli_parse_i64("--steps", optarg, 2, 1000000, &a->steps)) return CLI_USAGE;
            break;
        case O_WARMUP:
            if (!cli_parse_i64("--warmup", optarg, 0, 1000000, &a->warmup)) return CLI_USAGE;
            break;
        case O_ROUNDS:
            if (!cli_parse_i64("--rounds", optarg, 1, MAX_ROUNDS, &a->rounds)) return CLI_USAGE;
            break;
        case O_OUT: a->out = optarg; break;
        case O_PEER: a->peer = optarg; break;
        case 'h': bench_usage(stdout); return -1;
        case ':': cli_error("%s needs a value (see paropt bench --help)", argv[optind - 1]); return CLI_USAGE;
        default: cli_error("unknown option \"%s\" (see paropt bench --help)", argv[optind - 1]); return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see paropt bench --help)", argv[optind]);
        return CLI_USAGE;
    }
    if (a->steps < 0) a->steps = a->quick ? 8 : 30;
    if (a->warmup < 0) a->warmup = a->quick ? 2 : 5;
    a->calibrate = a->quick ? 1 : 2;
    if (a->warmup >= a->steps) {
        cli_error("--warmup %lld leaves no step to time: it must be less than --steps (%lld)", (long long)a->warmup,
                  (long long)a->steps);
        return CLI_USAGE;
    }
    if (!*a->out) {
        cli_error("--out: an empty directory name");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* --- workloads and devices ---------------------------------------------------------------------- */

/* Splits the workload list into specs, checks each by building the model, and records its
 * parameter count (for matching PyTorch records): [{spec, params}]. NULL after an error. */
static json_t *parse_workloads(const char *text) {
    json_t *list = json_array();
    char *copy = strdup(text), *save = NULL;
    if (!copy) {
        cli_error("out of memory");
        json_decref(list);
        return NULL;
    }
    char spec[1024] = "";
    bool ok = true;
    for (char *piece = strtok_r(copy, ",", &save);; piece = strtok_r(NULL, ",", &save)) {
        bool key = piece && strchr(piece, '=') && !strchr(piece, ':');
        if (piece && strlen(spec) + strlen(piece) + 2 > sizeof spec) {
            cli_error("--workloads: a model spec longer than %zu characters", sizeof spec - 2);
            ok = false;
            break;
        }
        if (key && *spec) { /* a key of the spec before it */
            size_t n = strlen(spec);
            snprintf(spec + n, sizeof spec - n, ",%s", piece);
            continue;
        }
        if (*spec) {
            po_model *m = NULL;
            if (po_model_build(spec, 0, &m)) {
                cli_error("--workloads: \"%s\": %s", spec, po_last_error());
                ok = false;
                break;
            }
            json_int_t params = 0;
            for (int i = 0; i < po_graph_n_params(m->graph); i++) {
                po_shape shape = po_node_shape(po_graph_param(m->graph, i));
                params += po_shape_numel(&shape);
            }
            po_model_free(m);
            size_t i;
            json_t *w;
            json_array_foreach(list, i, w) {
                if (strcmp(json_string_value(json_object_get(w, "spec")), spec) == 0) {
                    cli_error("--workloads: \"%s\" is given twice", spec);
                    ok = false;
                }
            }
            if (!ok) break;
            json_array_append_new(list, json_pack("{s:s, s:I}", "spec", spec, "params", params));
        }
        if (!piece) break;
        if (key || !*piece) {
            cli_error("--workloads: \"%s\" is not a model name (expected NAME or NAME:key=value,...)", piece);
            ok = false;
            break;
        }
        snprintf(spec, sizeof spec, "%s", piece);
    }
    free(copy);
    if (ok && json_array_size(list) == 0) {
        cli_error("--workloads: no workload given");
        ok = false;
    }
    if (!ok) {
        json_decref(list);
        return NULL;
    }
    return list;
}

/* The device list as texts, one per device, options kept ("cpu:1:slowdown=2"); "auto" expanded.
 * Also the machine's CPU for the record. NULL after an error. */
static json_t *parse_devices(const char *text, json_t *machine) {
    po_machine *m = NULL;
    /* Same registration as paropt train: device options pass through to the runs. */
    po_device_register_option("slowdown", "emulate a device F times slower (F >= 1), for tests and demonstrations");
    if (po_machine_discover(NULL, &m)) {
        cli_error("--devices: %s", po_last_error());
        return NULL;
    }
    const po_cpu_info *cpu = po_machine_cpu(m);
    json_object_set_new(machine, "cpu_model_hwloc", json_string(cpu->model));
    json_object_set_new(machine, "cores", json_integer(cpu->cores));
    json_object_set_new(machine, "threads", json_integer(cpu->pus));
    po_device_list list = {0, NULL};
    if (po_devices_parse_trainable(m, text, &list)) { /* the bench trains on them */
        cli_error("--devices: %s", po_last_error());
        po_machine_free(m);
        return NULL;
    }
    po_machine_free(m);
    json_t *devs = json_array();
    for (int i = 0; i < list.n; i++) {
        char buf[512];
        int n = snprintf(buf, sizeof buf, "%s", list.dev[i].id);
        for (int j = 0; j < list.dev[i].n_opts && n < (int)sizeof buf; j++)
            n += snprintf(buf + n, sizeof buf - (size_t)n, ":%s=%s", list.dev[i].opt[j].key, list.dev[i].opt[j].value);
        json_array_append_new(devs, json_string(buf));
    }
    po_device_list_free(&list);
    return devs;
}

/* --- the output directory ----------------------------------------------------------------------- */

static bool bench_file(const char *name) {
    return strcmp(name, "results.json") == 0 || strcmp(name, "report.html") == 0 ||
           strncmp(name, ".results.json.tmp.", 18) == 0 || strncmp(name, ".report.html.tmp.", 17) == 0;
}

static bool is_bench_output(const char *dir) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/results.json", dir);
    json_t *r = json_load_file(path, 0, NULL);
    bool yes = json_is_string(json_object_get(r, "format")) &&
               strcmp(json_string_value(json_object_get(r, "format")), BENCH_FORMAT) == 0;
    json_decref(r);
    return yes;
}

/* Makes sure dir can take the output: created when missing (*created), empty or an earlier
 * bench output, and writable (a temporary file is created and removed). Exit code. */
static int prepare_out(const char *dir, bool *created) {
    *created = false;
    struct stat st;
    if (strlen(dir) > PATH_MAX - 64) {
        cli_error("--out: the path is too long");
        return CLI_USAGE;
    }
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0777) != 0) {
            cli_error("--out: cannot create the directory \"%s\": %s", dir, strerror(errno));
            return CLI_USAGE;
        }
        *created = true;
    } else if (!S_ISDIR(st.st_mode)) {
        cli_error("--out: \"%s\" is not a directory", dir);
        return CLI_USAGE;
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            cli_error("--out: cannot read the directory \"%s\": %s", dir, strerror(errno));
            return CLI_USAGE;
        }
        struct dirent *e;
        char other[256] = "";
        bool any = false;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            any = true;
            if (!bench_file(e->d_name) && !*other) snprintf(other, sizeof other, "%s", e->d_name);
        }
        closedir(d);
        if (any && (*other || !is_bench_output(dir))) {
            cli_error("--out: \"%s\" is not empty and holds no earlier paropt bench output (found \"%s\"); give a new "
                      "or empty directory",
                      dir, *other ? other : "results.json");
            return CLI_USAGE;
        }
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/results.json", dir);
    po_atomic_file af;
    if (po_atomic_begin(path, &af)) {
        cli_error("--out: %s", po_last_error());
        if (*created) rmdir(dir);
        *created = false;
        return CLI_USAGE;
    }
    po_atomic_abort(&af);
    return CLI_OK;
}

/* --- machine ------------------------------------------------------------------------------------ */

static void machine_info(json_t *machine) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");
    json_object_set_new(machine, "hostname", json_string(host));
    char model[256] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            char *colon = strchr(line, ':');
            if (!colon) continue;
            colon += strspn(colon + 1, " \t") + 1;
            colon[strcspn(colon, "\n")] = 0;
            snprintf(model, sizeof model, "%s", colon);
            break;
        }
        fclose(f);
    }
    json_t *hw = json_object_get(machine, "cpu_model_hwloc");
    json_object_set_new(machine, "cpu_model", json_string(*model ? model : json_string_value(hw)));
    json_object_del(machine, "cpu_model_hwloc");
    struct utsname u;
    if (uname(&u) == 0) {
        char os[600];
        snprintf(os, sizeof os, "%s %s %s", u.sysname, u.release, u.machine);
        json_object_set_new(machine, "os", json_string(os));
    }
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(machine, "date", json_string(date));
}

/* --- runs --------------------------------------------------------------------------------------- */

/* "a,b,c" from the first k device texts. */
static void join_devices(char *buf, size_t size, const json_t *devices, size_t k) {
    buf[0] = 0;
    for (size_t i = 0, len = 0; i < k && len < size; i++, len = strlen(buf))
        snprintf(buf + len, size - len, "%s%s", i ? "," : "", json_string_value(json_array_get(devices, i)));
}

/* The runs of one workload in one round, in order: baseline (the first device, --plan single),
 * the time-optimal plan and the energy-aware plan (all devices, --plan auto), and data parallel
 * over the first k devices for k = 2..N. Each: index, round, workload, kind, label, devices,
 * argv. */
static void plan_runs(json_t *runs, int64_t rd, const char *spec, const json_t *devices, const bench_args *a,
                      const char *exe) {
    size_t n = json_array_size(devices);
    char steps[32], warmup[32], calib[32];
    snprintf(steps, sizeof steps, "%lld", (long long)a->steps);
    snprintf(warmup, sizeof warmup, "%lld", (long long)a->warmup);
    snprintf(calib, sizeof calib, "%lld", (long long)a->calibrate);
    for (size_t r = 0; r < 3 + (n > 1 ? n - 1 : 0); r++) {
        const char *kind = r == 0 ? "baseline" : r == 1 ? "auto" : r == 2 ? "energy" : "scaling";
        size_t k = r == 0 ? 1 : r <= 2 ? n : r - 1; /* devices given to the run */
        char devtext[4096], label[64];
        join_devices(devtext, sizeof devtext, devices, k);
        if (r < 3)
            snprintf(label, sizeof label, "%s", r == 0 ? "baseline" : r == 1 ? "auto plan" : "energy-aware plan");
        else
            snprintf(label, sizeof label, "dp over %zu devices", k);
        json_t *argv = json_pack("[s,s,s,s,s,s,s,s,s,s]", exe, "train", "--model", spec, "--data", "synthetic",
                                 "--devices", devtext, "--plan",
                                 r == 0   ? "single"
                                 : r <= 2 ? "auto"
                                          : "dp");
        if (r == 2) {
            json_array_append_new(argv, json_string("--objective"));
            json_array_append_new(argv, json_string("energy"));
        }
        const char *tail[] = {"--steps", steps, "--warmup", warmup, "--calibrate", calib, "--json"};
        for (size_t i = 0; i < sizeof tail / sizeof *tail; i++)
            json_array_append_new(argv, json_string(tail[i]));
        json_t *dl = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append(dl, json_array_get(devices, i));
        json_array_append_new(runs, json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:o}", "index",
                                              (json_int_t)json_array_size(runs), "round", (json_int_t)rd, "workload",
                                              spec, "kind", kind, "label", label, "devices", dl, "argv", argv));
    }
}

/* Runs every planned run (rounds of equal size, one after the other), adding wall_s and summary
 * to each. Progress names the round (with more than one) and the run's place in it. Exit code. */
static int execute_runs(json_t *runs, int64_t rounds) {
    size_t n = json_array_size(runs) / (size_t)rounds, i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        const char *workload = json_string_value(json_object_get(r, "workload"));
        const char *label = json_string_value(json_object_get(r, "label"));
        json_t *dl = json_object_get(r, "devices"), *argv_j = json_object_get(r, "argv");
        char devs[4096], of_round[64] = "";
        join_devices(devs, sizeof devs, dl, json_array_size(dl));
        if (rounds > 1) snprintf(of_round, sizeof of_round, " of round %zu/%lld", i / n + 1, (long long)rounds);
        if (rounds > 1)
            fprintf(stderr, "bench: round %zu/%lld", i / n + 1, (long long)rounds);
        else
            fputs("bench:", stderr);
        fprintf(stderr, " [%zu/%zu] %s: %s on %s ...", i % n + 1, n, workload, label, devs);
        size_t argc = json_array_size(argv_j);
        char **argv = calloc(argc + 1, sizeof *argv);
        if (!argv) {
            fputc('\n', stderr);
            cli_error("out of memory");
            return CLI_FAIL;
        }
        for (size_t k = 0; k < argc; k++)
            argv[k] = (char *)json_string_value(json_array_get(argv_j, k));
        json_t *summary = NULL;
        double wall = 0;
        char why[1024];
        bool ok = bench_run_child(argv, &summary, &wall, why, sizeof why);
        free(argv);
        if (!ok) {
            fputs(" failed\n", stderr);
            cli_error("bench run %zu/%zu%s (%s: %s on %s) failed: %s", i % n + 1, n, of_round, workload, label, devs,
                      why);
            return CLI_FAIL;
        }
        json_t *ms = json_object_get(summary, "ms_per_step");
        fprintf(stderr, " %.3f ms/step (%.1f s)\n", json_is_number(ms) ? json_number_value(ms) : 0.0, wall);
        json_object_set_new(r, "wall_s", json_real(round(wall * 1000) / 1000));
        json_object_set_new(r, "summary", summary);
    }
    return CLI_OK;
}

/* --- output ------------------------------------------------------------------------------------- */

static int write_outputs(const char *dir, const json_t *results) {
    char jpath[PATH_MAX], hpath[PATH_MAX];
    snprintf(jpath, sizeof jpath, "%s/results.json", dir);
    snprintf(hpath, sizeof hpath, "%s/report.html", dir);
    /* 15 significant digits: the summaries' numbers print as the runs printed them. */
    char *text = json_dumps(results, JSON_INDENT(1) | JSON_REAL_PRECISION(15));
    if (!text) {
        cli_error("out of memory writing results.json");
        return CLI_FAIL;
    }
    po_atomic_file aj = {0}, ah = {0};
    po_status st = po_atomic_begin(jpath, &aj);
    if (!st) st = po_atomic_write(&aj, text, strlen(text));
    if (!st) st = po_atomic_write(&aj, "\n", 1);
    free(text);
    if (!st) st = po_atomic_begin(hpath, &ah);
    if (!st) bench_report_html(ah.fp, results);
    /* Both files are complete before either replaces anything. */
    if (!st) st = po_atomic_commit(&aj);
    if (!st) st = po_atomic_commit(&ah);
    if (st) {
        po_atomic_abort(&aj);
        po_atomic_abort(&ah);
        cli_error("--out: %s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int cmd_bench(int argc, char **argv) {
    bench_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    double t0 = now_s();
    json_t *results = json_object(), *machine = json_object(), *peer = NULL, *workloads = NULL, *devices = NULL;
    bool created = false;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        cli_error("cannot find the paropt executable to run (/proc/self/exe: %s)", strerror(errno));
        rc = CLI_FAIL;
        goto done;
    }
    exe[len] = 0;
    /* Everything that can be wrong with the input is found before the first run. */
    if (!(workloads = parse_workloads(a.workloads)) || !(devices = parse_devices(a.devices, machine)) ||
        (a.peer && !(peer = bench_peer_read(a.peer)))) {
        rc = CLI_USAGE;
        goto done;
    }
    if ((rc = prepare_out(a.out, &created))) goto done;
    machine_info(machine);
    json_object_set_new(results, "format", json_string(BENCH_FORMAT));
    json_object_set_new(results, "paropt_version", json_string(PO_VERSION));
    json_object_set_new(results, "machine", json_incref(machine));
    json_object_set_new(results, "settings",
                        json_pack("{s:O, s:O, s:b, s:I, s:I, s:I, s:I, s:s?}", "workloads", workloads, "devices",
                                  devices, "quick", a.quick, "steps", (json_int_t)a.steps, "warmup",
                                  (json_int_t)a.warmup, "calibrate", (json_int_t)a.calibrate, "rounds",
                                  (json_int_t)a.rounds, "peer", a.peer));
    json_t *runs = json_array(), *w;
    size_t i;
    /* Round after round, each the whole suite in the same order. */
    for (int64_t rd = 1; rd <= a.rounds; rd++)
        json_array_foreach(workloads, i, w)
            plan_runs(runs, rd, json_string_value(json_object_get(w, "spec")), devices, &a, exe);
    json_object_set_new(results, "runs", runs);
    if ((rc = execute_runs(runs, a.rounds))) goto done;
    if (peer) json_object_set_new(results, "peer", json_pack("{s:s, s:O}", "file", a.peer, "records", peer));
    json_object_set_new(results, "table", bench_table(results));
    json_object_set_new(results, "duration_s", json_real(round((now_s() - t0) * 10) / 10));
    if ((rc = write_outputs(a.out, results))) goto done;
    bench_report_text(stdout, results);
    printf("wrote %s/results.json and %s/report.html\n", a.out, a.out);
done:
    if (rc && created) rmdir(a.out); /* only what this run created, and only while empty */
    json_decref(results);
    json_decref(machine);
    json_decref(peer);
    json_decref(workloads);
    json_decref(devices);
    return rc;
}

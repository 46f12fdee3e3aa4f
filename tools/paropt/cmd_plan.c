/* paropt plan: how to split a model's training step across devices (this machine's, measured,
 * or a described cluster), for time or energy, with the prediction and the reasons. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "paropt/paropt.h"
#include "paropt/plan.h"

typedef struct {
    const char *model, *devices, *cluster, *out;
    int64_t batch, top, calibrate;
    po_optim_opts optim;
    po_plan_opts po;
    po_bench_level level;
    bool json, refresh, no_cache;
} plan_args;

static void plan_usage(FILE *f) {
    fprintf(f, "usage: paropt plan [options]\n"
               "\n"
               "Plans one training step of a model across devices: single device, data parallel with uneven\n"
               "shares, pipeline (GPipe or 1F1B), hybrid, operator split, activation recomputation; every\n"
               "candidate is simulated and the best by the objective is printed with the reasons.\n"
               "\n"
               "  --model SPEC          NAME or NAME:key=value,... (default mnist_mlp); models and keys:\n");
    for (const char *const *n = po_model_names(); *n; n++)
        fprintf(f, "                          %-10s %s\n", *n, po_model_keys(*n));
    fprintf(f, "  --batch B             samples per step (default: the model's batch key)\n"
               "  --devices LIST        this machine's devices, measured (cached): cpu:N, cpu:N-M, cuda:N, auto\n"
               "                        (default auto)\n"
               "  --cluster FILE.json   plan for described devices instead (README: \"paropt plan\")\n"
               "  --objective OBJ       time (default), energy (joules per sample) or edp (energy x delay)\n"
               "  --max-slowdown P      with energy: the least energy within P%% of the fastest plan's time\n"
               "  --strategy S          auto (default), single, dp, pp, hybrid or opsplit: search one family\n"
               "  --top K               keep the best K plans (the chosen one and K-1 alternatives; default 5)\n"
               "  --optimizer NAME      sgd, adam (default) or adamw; --momentum X for SGD\n"
               "  --bench quick|full    how thoroughly to measure the devices (default quick)\n"
               "  --calibrate N         also time every op of the step on each device (N steps) and plan from\n"
               "                        those measurements\n"
               "  --refresh             measure the devices again and plan again (no cached plan)\n"
               "  --no-cache            do not read or write the plan cache\n"
               "  --json                print the plan as one JSON object\n"
               "  --out FILE            write the plan as JSON (atomically): paropt train --plan FILE reads it\n"
               "  -h, --help            show this help\n");
}

static int parse_args(int argc, char **argv, plan_args *a) {
    enum {
        O_MODEL = 256,
        O_BATCH,
        O_DEVICES,
        O_CLUSTER,
        O_OBJECTIVE,
        O_SLOW,
        O_STRATEGY,
        O_TOP,
        O_OPT,
        O_MOM,
        O_BENCH,
        O_CALIB,
        O_REFRESH,
        O_NOCACHE,
        O_JSON,
        O_OUT
    };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"devices", required_argument, 0, O_DEVICES},
                                         {"cluster", required_argument, 0, O_CLUSTER},
                                         {"objective", required_argument, 0, O_OBJECTIVE},
                                         {"max-slowdown", required_argument, 0, O_SLOW},
                                         {"strategy", required_argument, 0, O_STRATEGY},
                                         {"top", required_argument, 0, O_TOP},
                                         {"optimizer", required_argument, 0, O_OPT},
                                         {"momentum", required_argument, 0, O_MOM},
                                         {"bench", required_argument, 0, O_BENCH},
                                         {"calibrate", required_argument, 0, O_CALIB},
                                         {"refresh", no_argument, 0, O_REFRESH},
                                         {"no-cache", no_argument, 0, O_NOCACHE},
                                         {"json", no_argument, 0, O_JSON},
                                         {"out", required_argument, 0, O_OUT},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->model = "mnist_mlp";
    a->po = po_plan_opts_default();
    a->level = PO_BENCH_QUICK;
    const char *optimizer = "adam", *mom = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: a->model = optarg; break;
        case O_BATCH:
            if (!cli_parse_i64("--batch", optarg, 1, 1 << 24, &a->batch)) return CLI_USAGE;
            break;
        case O_DEVICES: a->devices = optarg; break;
        case O_CLUSTER: a->cluster = optarg; break;
        case O_OBJECTIVE:
            if (po_objective_parse(optarg, &a->po.objective)) {
                cli_error("--objective: %s", po_last_error());
                return CLI_USAGE;
            }
            break;
        case O_SLOW: {
            float p;
            if (!cli_parse_float("--max-slowdown", optarg, 0.0, 1e6, &p)) return CLI_USAGE;
            a->po.max_slowdown_pct = p;
            break;
        }
        case O_STRATEGY: {
            po_strategy s;
            if (strcmp(optarg, "auto") == 0) {
                a->po.strategies = 0;
            } else if (po_strategy_parse(optarg, &s)) {
                cli_error("--strategy: %s", po_last_error());
                return CLI_USAGE;
            } else {
                a->po.strategies = 1u << s;
            }
            break;
        }
        case O_TOP:
            if (!cli_parse_i64("--top", optarg, 1, 1000, &a->top)) return CLI_USAGE;
            a->po.top_k = (int)a->top;
            break;
        case O_OPT: optimizer = optarg; break;
        case O_MOM: mom = optarg; break;
        case O_BENCH:
            if (po_bench_level_parse(optarg, &a->level)) {
                cli_error("--bench: %s", po_last_error());
                return CLI_USAGE;
            }
            break;
        case O_CALIB:
            if (!cli_parse_i64("--calibrate", optarg, 1, 1000, &a->calibrate)) return CLI_USAGE;
            break;
        case O_REFRESH: a->refresh = true; break;
        case O_NOCACHE: a->no_cache = true; break;
        case O_JSON: a->json = true; break;
        case O_OUT: a->out = optarg; break;
        case 'h': plan_usage(stdout); return -1;
        case ':':
        default: return cli_bad_option("plan", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see paropt plan --help)", argv[optind]);
        return CLI_USAGE;
    }
    if (a->devices && a->cluster) {
        cli_error("--devices and --cluster exclude each other: plan for this machine's devices or for a described "
                  "cluster");
        return CLI_USAGE;
    }
    if (!isnan(a->po.max_slowdown_pct) && a->po.objective != PO_OBJECTIVE_ENERGY) {
        cli_error("--max-slowdown applies to --objective energy only");
        return CLI_USAGE;
    }
    if (a->calibrate && a->cluster) {
        cli_error("--calibrate measures this machine's devices; it does not apply to --cluster");
        return CLI_USAGE;
    }
    if (!cli_optim_opts(optimizer, NULL, NULL, mom, &a->optim)) return CLI_USAGE;
    if (a->out && !cli_check_writable("--out", a->out)) return CLI_USAGE;
    if (!a->devices && !a->cluster) a->devices = "auto";
    return CLI_OK;
}

static void progress(const char *what, void *ctx) {
    (void)ctx;
    fprintf(stderr, "paropt: measuring %s\n", what);
}

static int calibrate(const plan_args *a, const po_machine *m, const po_device_list *devs, const po_workload *w,
                     po_cost_model *cm) {
    int64_t batches[2] = {po_workload_batch(w), po_workload_batch(w) >= 2 ? po_workload_batch(w) / 2 : 2};
    for (int k = 0; k < 2; k++) {
        po_model *model = NULL;
        if (po_model_build_step(a->model, batches[k], &a->optim, &model)) {
            cli_error("%s", po_last_error());
            return CLI_FAIL;
        }
        /* The CPU devices, timed taking turns (po_cost_model_calibrate_many). */
        po_device cpus[256];
        int n = 0;
        for (int i = 0; i < devs->n && n < 256; i++)
            if (devs->dev[i].kind == PO_DEVICE_CPU) cpus[n++] = devs->dev[i];
        if (n) {
            fprintf(stderr, "paropt: timing every op of %s at batch %lld on %d device%s\n", a->model,
                    (long long)batches[k], n, n == 1 ? "" : "s");
            if (po_cost_model_calibrate_many(cm, m, cpus, n, model->graph, (int)a->calibrate)) {
                cli_error("--calibrate: %s", po_last_error());
                po_model_free(model);
                return CLI_FAIL;
            }
        }
        po_model_free(model);
    }
    return CLI_OK;
}

static void fmt_j(double j, char *buf, size_t size) {
    if (!isfinite(j))
        snprintf(buf, size, "unknown");
    else if (j < 1e-3)
        snprintf(buf, size, "%.3g mJ", j * 1e3);
    else
        snprintf(buf, size, "%.4g J", j);
}

static void fmt_b(double b, char *buf, size_t size) {
    if (b >= 1073741824.0)
        snprintf(buf, size, "%.2f GiB", b / 1073741824.0);
    else
        snprintf(buf, size, "%.1f MiB", b / 1048576.0);
}

static void print_text(const po_plan *p, const po_workload *w, const char *where, bool cached) {
    char sum[256], ej[32];
    printf("paropt plan: %s, batch %lld; objective %s", po_workload_name(w), (long long)po_workload_batch(w),
           po_objective_name(p->objective));
    if (!isnan(p->max_slowdown_pct)) printf(" within %.4g%% of the fastest", p->max_slowdown_pct);
    printf("\ndevices    %s%s\n", where, cached ? " (plan from the cache)" : "");
    printf("plan       %s\n", po_plan_summary(p, w, sum, sizeof sum));
    int64_t rows_mb = po_workload_batch(w) / (p->micro_batches ? p->micro_batches : 1);
    for (int s = 0; s < p->n_stages; s++) {
        const po_plan_stage *st = &p->stages[s];
        printf("%-10s layers %s..%s%s:", s ? "" : "stages", po_workload_layer_name(w, st->first_layer),
               po_workload_layer_name(w, st->last_layer), st->recompute ? " (recompute)" : "");
        for (int r = 0; r < st->n_replicas && r < 8; r++) {
            if (p->strategy == PO_STRATEGY_OPSPLIT)
                printf("%s %s (%.3f of each split op)", r ? "," : "", st->replicas[r].device, st->replicas[r].share);
            else
                printf("%s %s (share %.4f, %.0f row%s)", r ? "," : "", st->replicas[r].device, st->replicas[r].share,
                       st->replicas[r].share * (double)rows_mb,
                       st->replicas[r].share * (double)rows_mb == 1.0 ? "" : "s");
        }
        if (st->n_replicas > 8) printf(", ... (%d devices)", st->n_replicas);
        printf("\n");
    }
    const po_prediction *pr = &p->predicted;
    fmt_j(pr->energy_j_per_sample, ej, sizeof ej);
    printf("predicted  %.4g ms per step, %.0f samples/s, %s per sample (%s)\n", pr->step_ms, pr->samples_per_s, ej,
           pr->energy_source);
    for (int i = 0; i < pr->n_devices && i < 16; i++) {
        char a[32], b[32];
        fmt_b((double)pr->devices[i].peak_memory_bytes, a, sizeof a);
        fmt_b((double)pr->devices[i].memory_bytes, b, sizeof b);
        printf("%-10s %-12s busy %3.0f%%  peak memory %s of %s\n", i ? "" : "per device", pr->devices[i].device,
               100.0 * pr->devices[i].busy, a, b);
    }
    if (pr->n_devices > 16) printf("%-10s ... (%d devices)\n", "", pr->n_devices);
    for (int i = 0; i < p->n_explanation; i++)
        printf("%-10s %s\n", i ? "" : "why", p->explanation[i]);
    if (p->n_alternatives) printf("alternatives (predicted)\n");
    for (int i = 0; i < p->n_alternatives; i++) {
        const po_plan_alternative *al = &p->alternatives[i];
        fmt_j(al->predicted.energy_j_per_sample, ej, sizeof ej);
        printf("  %d. %-60s %9.4g ms (%+6.1f%%)  %s/sample\n", i + 2, al->summary, al->predicted.step_ms,
               pr->step_ms > 0 ? 100.0 * (al->predicted.step_ms / pr->step_ms - 1.0) : 0.0, ej);
    }
}

int cmd_plan(int argc, char **argv) {
    plan_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    po_workload *w = NULL;
    if (po_workload_from_model(a.model, a.batch, &a.optim, &w)) {
        cli_error("--model: %s", po_last_error());
        return CLI_USAGE;
    }
    po_machine *m = NULL;
    po_device_list devs = {0};
    po_cluster *cluster = NULL;
    po_cost_model *cm = NULL;
    char where[512] = "";
    if (a.cluster) {
        if (po_cluster_load(a.cluster, &cluster)) {
            cli_error("--cluster: %s", po_last_error());
            rc = CLI_FAIL;
        } else {
            snprintf(where, sizeof where, "%d described in %s", po_cluster_size(cluster), a.cluster);
        }
    } else {
        if (po_machine_discover(NULL, &m)) {
            cli_error("%s", po_last_error());
            rc = CLI_FAIL;
        } else if (po_devices_parse(m, a.devices, &devs)) {
            cli_error("--devices: %s", po_last_error());
            rc = CLI_USAGE;
        } else {
            po_measure_opts mo = po_measure_opts_default();
            mo.level = a.level;
            mo.refresh = a.refresh;
            mo.progress = progress;
            po_hw_profile *prof = NULL;
            if (po_hw_profile_get(m, &devs, &mo, &prof) || po_cluster_from_profile(m, prof, &cluster)) {
                cli_error("%s", po_last_error());
                rc = CLI_FAIL;
            } else {
                size_t used = (size_t)snprintf(where, sizeof where, "%d of this machine (", devs.n);
                for (int i = 0; i < devs.n && used < sizeof where; i++)
                    used += (size_t)snprintf(where + used, sizeof where - used, "%s%s", i ? ", " : "", devs.dev[i].id);
                if (used < sizeof where)
                    snprintf(where + used, sizeof where - used, "; measured, %s bench%s)", po_bench_level_name(a.level),
                             prof->from_cache ? ", from the cache" : "");
            }
            po_hw_profile_free(prof);
        }
    }
    if (!rc && po_cost_model_new(cluster, &cm)) {
        cli_error("%s", po_last_error());
        rc = CLI_FAIL;
    }
    if (!rc && a.calibrate) rc = calibrate(&a, m, &devs, w, cm);
    po_plan plan;
    memset(&plan, 0, sizeof plan);
    bool hit = false;
    if (!rc) {
        po_plan_cache *pc = NULL;
        char dir[4096];
        const char *cache_dir = NULL;
        if (!a.no_cache && po_hw_cache_dir(dir, sizeof dir - 8) == PO_OK) {
            strcat(dir, "/plans");
            cache_dir = dir;
        }
        po_status st = po_plan_cache_new(cache_dir, &pc);
        if (!st && (a.refresh || a.no_cache)) {
            st = po_plan_search(w, cm, &a.po, &plan);
            if (!st && cache_dir) st = po_plan_cache_put(pc, po_plan_cache_key(w, cm, &a.po), &plan);
        } else if (!st) {
            st = po_plan_cached(pc, w, cm, &a.po, &plan, &hit);
        }
        po_plan_cache_free(pc);
        if (st) {
            cli_error("%s", po_last_error());
            rc = CLI_FAIL;
        }
    }
    if (!rc && a.out && po_plan_save(&plan, w, a.out)) {
        cli_error("--out: %s", po_last_error());
        rc = CLI_FAIL;
    }
    if (!rc) {
        if (a.json) {
            char *s = po_plan_to_json(&plan, w);
            if (!s) {
                cli_error("out of memory formatting JSON");
                rc = CLI_FAIL;
            } else {
                printf("%s\n", s);
                free(s);
            }
        } else {
            print_text(&plan, w, where, hit);
        }
    }
    po_plan_free(&plan);
    po_cost_model_free(cm);
    po_cluster_free(cluster);
    po_device_list_free(&devs);
    po_machine_free(m);
    po_workload_free(w);
    return rc;
}

/* paropt train: build a model, load or initialise its parameters, train on a dataset for a
 * number of steps, report, and save the parameters. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "paropt/paropt.h"

typedef struct {
    const char *model, *init, *data, *save;
    int64_t steps, warmup, batch, log_every;
    po_optim_opts optim;
    bool momentum_set;
    uint64_t seed;
    bool json, profile;
    po_gemm_provider gemm;
} train_args;

static void train_usage(FILE *f) {
    fprintf(f, "usage: paropt train [options]\n"
               "\n"
               "Trains a model on one CPU core and reports its loss and speed.\n"
               "\n"
               "  --model SPEC        NAME or NAME:key=value,... (default mnist_mlp); models and keys:\n");
    for (const char *const *n = po_model_names(); *n; n++)
        fprintf(f, "                        %-10s %s\n", *n, po_model_keys(*n));
    fprintf(f, "  --data SRC          synthetic (default) or FILE.safetensors holding input.x and input.y\n"
               "  --init FILE         load parameters by name from a safetensors file (default: random\n"
               "                      initialisation as PyTorch's, from --seed)\n"
               "  --steps N           training steps to time and report (default 100)\n"
               "  --warmup N          untimed steps before them (default 0)\n"
               "  --batch B           samples per step (default: the model's batch key)\n"
               "  --optimizer NAME    sgd, adam (default) or adamw, with PyTorch's semantics\n"
               "  --lr X              learning rate (default 1e-3)\n"
               "  --momentum X        SGD momentum (default 0)\n"
               "  --weight-decay X    weight decay (default 0; adamw 1e-2)\n"
               "  --seed S            seed for initialisation and synthetic data (default 0)\n"
               "  --save FILE         write the trained parameters (safetensors, PyTorch names), atomically\n"
               "  --log-every N       progress line every N steps (default: 10 lines per run)\n"
               "  --gemm LIB          matrix-product library: default (oneDNN on AVX-512 CPUs, else\n"
               "                      OpenBLAS), onednn, openblas, or auto (time both per shape and keep\n"
               "                      the faster; the last bits of results may then vary run to run)\n"
               "  --profile           print where the time of a step goes, per op, to stderr\n"
               "  --json              print the summary as one JSON object (the last line of stdout)\n"
               "  -h, --help          show this help\n"
               "\n"
               "Progress goes to stderr, the summary to stdout.\n");
}

static int parse_args(int argc, char **argv, train_args *a) {
    enum {
        O_MODEL = 256,
        O_INIT,
        O_DATA,
        O_STEPS,
        O_WARMUP,
        O_BATCH,
        O_OPT,
        O_LR,
        O_MOM,
        O_WD,
        O_SAVE,
        O_SEED,
        O_LOG,
        O_JSON,
        O_PROFILE,
        O_GEMM
    };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL},
                                         {"init", required_argument, 0, O_INIT},
                                         {"data", required_argument, 0, O_DATA},
                                         {"steps", required_argument, 0, O_STEPS},
                                         {"warmup", required_argument, 0, O_WARMUP},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"optimizer", required_argument, 0, O_OPT},
                                         {"lr", required_argument, 0, O_LR},
                                         {"momentum", required_argument, 0, O_MOM},
                                         {"weight-decay", required_argument, 0, O_WD},
                                         {"save", required_argument, 0, O_SAVE},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"log-every", required_argument, 0, O_LOG},
                                         {"json", no_argument, 0, O_JSON},
                                         {"profile", no_argument, 0, O_PROFILE},
                                         {"gemm", required_argument, 0, O_GEMM},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->model = "mnist_mlp";
    a->data = "synthetic";
    a->steps = 100;
    const char *optimizer = "adam", *lr = NULL, *wd = NULL, *mom = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: a->model = optarg; break;
        case O_INIT: a->init = optarg; break;
        case O_DATA: a->data = optarg; break;
        case O_STEPS:
            if (!cli_parse_i64("--steps", optarg, 1, INT64_MAX / 2, &a->steps)) return CLI_USAGE;
            break;
        case O_WARMUP:
            if (!cli_parse_i64("--warmup", optarg, 0, INT64_MAX / 2, &a->warmup)) return CLI_USAGE;
            break;
        case O_BATCH:
            if (!cli_parse_i64("--batch", optarg, 1, 1 << 24, &a->batch)) return CLI_USAGE;
            break;
        case O_OPT: optimizer = optarg; break;
        case O_LR: lr = optarg; break;
        case O_MOM: mom = optarg; break;
        case O_WD: wd = optarg; break;
        case O_SAVE: a->save = optarg; break;
        case O_SEED:
            if (!cli_parse_u64("--seed", optarg, &a->seed)) return CLI_USAGE;
            break;
        case O_LOG:
            if (!cli_parse_i64("--log-every", optarg, 1, INT64_MAX, &a->log_every)) return CLI_USAGE;
            break;
        case O_JSON: a->json = true; break;
        case O_PROFILE: a->profile = true; break;
        case O_GEMM:
            if (po_gemm_provider_parse(optarg, &a->gemm)) {
                cli_error("--gemm: %s", po_last_error());
                return CLI_USAGE;
            }
            break;
        case 'h': train_usage(stdout); return -1;
        case ':': cli_error("%s needs a value (see paropt train --help)", argv[optind - 1]); return CLI_USAGE;
        default: cli_error("unknown option \"%s\" (see paropt train --help)", argv[optind - 1]); return CLI_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see paropt train --help)", argv[optind]);
        return CLI_USAGE;
    }
    po_optim_kind kind;
    if (po_optim_kind_parse(optimizer, &kind)) {
        cli_error("--optimizer: %s", po_last_error());
        return CLI_USAGE;
    }
    a->optim = po_optim_opts_default(kind);
    if (lr && !cli_parse_float("--lr", lr, 0.0, 1e30, &a->optim.lr)) return CLI_USAGE;
    if (!(a->optim.lr > 0.0f)) {
        cli_error("--lr: must be positive, got %s", lr);
        return CLI_USAGE;
    }
    if (wd && !cli_parse_float("--weight-decay", wd, 0.0, 1e30, &a->optim.weight_decay)) return CLI_USAGE;
    if (mom) {
        if (kind != PO_OPTIM_SGD) {
            cli_error("--momentum applies to --optimizer sgd only");
            return CLI_USAGE;
        }
        if (!cli_parse_float("--momentum", mom, 0.0, 1e30, &a->optim.momentum)) return CLI_USAGE;
    }
    if (!a->log_every) a->log_every = a->steps >= 10 ? a->steps / 10 : 1;
    if (a->save && !cli_check_writable("--save", a->save)) return CLI_USAGE;
    return CLI_OK;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void print_summary(const train_args *a, const po_model *m, float loss, double ms) {
    double sps = (double)m->batch / (ms / 1e3);
    if (!a->json) {
        printf("%s: %lld steps of batch %lld, final loss %.6g, %.3f ms/step, %.1f samples/s\n", m->name,
               (long long)a->steps, (long long)m->batch, loss, ms, sps);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "config", json_loads(m->config, 0, NULL));
    json_object_set_new(o, "steps", json_integer(a->steps));
    json_object_set_new(o, "batch", json_integer(m->batch));
    json_object_set_new(o, "optimizer", json_string(po_optim_kind_name(a->optim.kind)));
    char lr[32]; /* the float's shortest decimal form: 1e-3, not 0.00100000005 */
    snprintf(lr, sizeof lr, "%.7g", (double)a->optim.lr);
    json_object_set_new(o, "lr", json_real(strtod(lr, NULL)));
    json_object_set_new(o, "final_loss", json_real(loss));
    po_gemm_provider gemm = po_get_gemm_provider();
    json_object_set_new(
        o, "gemm", json_string(po_gemm_provider_name(gemm == PO_GEMM_DEFAULT ? po_gemm_default_provider() : gemm)));
    json_object_set_new(o, "samples_per_s", json_real(round(sps * 10.0) / 10.0));
    json_object_set_new(o, "ms_per_step", json_real(round(ms * 1e3) / 1e3));
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* Per-op-type totals of a profiled run, largest first. */
static void print_profile(const po_graph *g, const po_exec *ex, double step_ms) {
    double ms[PO_OP_COUNT] = {0}, flops[PO_OP_COUNT] = {0};
    int calls[PO_OP_COUNT] = {0};
    double runs = (double)po_exec_profiled_runs(ex), total = 0.0;
    if (runs == 0) return;
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node *n = po_graph_node(g, i);
        double s = po_exec_node_seconds(ex, n);
        po_op op = po_node_op(n);
        ms[op] += s * 1e3 / runs;
        flops[op] += po_node_cost(n).flops;
        calls[op] += s > 0.0;
        total += s * 1e3 / runs;
    }
    fprintf(stderr, "%-24s %6s %10s %6s %9s\n", "op", "nodes", "ms/step", "%", "GFLOP/s");
    for (;;) {
        int best = -1;
        for (int op = 0; op < PO_OP_COUNT; op++)
            if (calls[op] && (best < 0 || ms[op] > ms[best])) best = op;
        if (best < 0) break;
        double gf = ms[best] > 0.0 ? flops[best] / (ms[best] * 1e6) : 0.0;
        fprintf(stderr, "%-24s %6d %10.3f %5.1f%% %9.1f\n", po_op_name((po_op)best), calls[best], ms[best],
                100.0 * ms[best] / total, gf);
        calls[best] = 0;
    }
    fprintf(stderr, "%-24s %6s %10.3f (step %.3f ms; the rest is data loading and the loop)\n", "total", "", total,
            step_ms);
}

/* Trains; returns an exit code. */
static int run(const train_args *a, po_model *m, po_trainer *t, po_dataset *data) {
    float loss = NAN;
    int64_t total = a->warmup + a->steps;
    double t0 = 0.0, last_log = now_s();
    bool tty = isatty(STDERR_FILENO);
    for (int64_t s = 0; s < total; s++) {
        if (s == a->warmup) {
            t0 = now_s();
            po_exec_set_profiling(po_trainer_exec(t), a->profile);
        }
        po_status st = po_dataset_batch(data, s, po_trainer_input(t, 0), po_trainer_input(t, 1));
        if (!st) st = po_trainer_step(t, &loss);
        if (st) {
            cli_error("step %lld: %s", (long long)s + 1, po_last_error());
            return CLI_FAIL;
        }
        if (!isfinite(loss)) {
            cli_error("step %lld: the loss is %g; lower --lr or check the data", (long long)s + 1, loss);
            return CLI_FAIL;
        }
        double now = now_s();
        bool log = tty ? now - last_log > 0.2 || s + 1 == total : (s + 1) % a->log_every == 0;
        if (log) {
            double ms = s >= a->warmup ? (now - t0) * 1e3 / (double)(s + 1 - a->warmup) : 0.0;
            fprintf(stderr, "%sstep %lld/%lld  loss %.4f  %.2f ms/step%s", tty ? "\r" : "", (long long)s + 1,
                    (long long)total, loss, ms, tty ? "   " : "\n");
            last_log = now;
        }
    }
    if (tty) fputc('\n', stderr);
    double ms = (now_s() - t0) * 1e3 / (double)a->steps;
    if (a->profile) print_profile(m->graph, po_trainer_exec(t), ms);
    if (a->save) {
        const char *keys[] = {"model", "config"}, *vals[] = {m->name, m->config};
        if (po_params_save(po_trainer_params(t), a->save, 2, keys, vals)) {
            cli_error("--save: %s", po_last_error());
            return CLI_FAIL;
        }
    }
    print_summary(a, m, loss, ms);
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    po_model *m = NULL;
    po_dataset *data = NULL;
    po_trainer *t = NULL;
    po_set_gemm_provider(a.gemm);
    if (po_model_build(a.model, a.batch, &m)) {
        cli_error("--model: %s", po_last_error());
        return CLI_USAGE;
    }
    po_status st = strcmp(a.data, "synthetic") == 0 ? po_dataset_synthetic(m, 4 * m->batch, a.seed ^ 0x5eed, &data)
                                                    : po_dataset_open_safetensors(a.data, &data);
    if (!st) st = po_dataset_check(data, m);
    if (st) {
        cli_error("--data: %s", po_last_error());
        rc = CLI_FAIL;
    } else if (po_trainer_new(m, &a.optim, a.seed, &t)) {
        cli_error("%s", po_last_error());
        rc = CLI_FAIL;
    } else if (a.init && po_params_load(po_trainer_params(t), a.init)) {
        cli_error("--init: %s", po_last_error());
        rc = CLI_FAIL;
    } else {
        rc = run(&a, m, t, data);
    }
    po_trainer_free(t);
    po_dataset_free(data);
    po_model_free(m);
    return rc;
}

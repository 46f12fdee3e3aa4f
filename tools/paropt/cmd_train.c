/* paropt train: options and run settings, building what a run needs, and the summary. The loop
 * itself is train_loop.c; the run directory run_dir.c. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "paropt/hw.h"
#include "run_dir.h"
#include "train_cmd.h"
#include "train_varlen.h"

static void train_usage(FILE *f) {
    fprintf(f, "usage: paropt train [options]\n"
               "       paropt train --resume DIR [--save FILE] [--json]\n"
               "\n"
               "Trains a model (on one CPU core, or across devices by a plan) and reports its loss, speed\n"
               "and test accuracy.\n"
               "\n"
               "  --model SPEC        NAME or NAME:key=value,... (default mnist_mlp); keys the spec leaves\n"
               "                      unset follow the data (input size, image shape, classes); models:\n");
    for (const char *const *n = po_model_names(); *n; n++)
        fprintf(f, "                        %-10s %s\n", *n, po_model_keys(*n));
    fprintf(f, "  --data SRC          synthetic (default), fashion-mnist, idx:DIR, cifar10:DIR, text:FILE,\n"
               "                      or FILE.safetensors holding input.x and input.y\n"
               "  --epochs N          passes over the training split (default for real data: 1)\n"
               "  --steps N           training steps instead (default for synthetic data: 100)\n"
               "  --batch B           samples per step (default: the model's batch key)\n"
               "  --eval-batch B      samples per evaluation batch (default: --batch)\n"
               "  --init FILE         load parameters by name from a safetensors file (default: random\n"
               "                      initialisation as PyTorch's, from --seed)\n"
               "  --optimizer NAME    sgd, adam (default) or adamw, with PyTorch's semantics\n"
               "  --lr X              learning rate (default 1e-3)\n"
               "  --momentum X        SGD momentum (default 0)\n"
               "  --weight-decay X    weight decay (default 0; adamw 1e-2)\n"
               "  --seed S            seed for initialisation, shuffling and synthetic data (default 0)\n"
               "  --out DIR           write a run directory: settings.json, metrics.jsonl, checkpoints/,\n"
               "                      model.safetensors (a checkpoint at the start and the end), summary.json,\n"
               "                      trace.json (a Chrome trace), events.out.tfevents.* (TensorBoard\n"
               "                      scalars) and, with --devices, plan.json\n"
               "  --checkpoint-every N  also checkpoint every N steps (with --out; default: each epoch)\n"
               "  --resume DIR        continue the run in DIR from its newest checkpoint, with its settings\n"
               "  --save FILE         write the trained parameters (safetensors, PyTorch names), atomically\n"
               "  --warmup N          leave the first N steps out of the timing (default 0)\n"
               "  --log-every N       progress line and metrics record every N steps (default: 10 per run)\n"
               "  --devices LIST      CPU devices to train on: cpu:N (a core), cpu:N-M (a core group), comma-\n"
               "                      separated, or auto (every core this process may run on, as\n"
               "                      taskset or a cgroup allows); default: the calling thread alone\n"
               "  --plan NAME|FILE    auto: the planner picks the devices, the family and the shares by\n"
               "                      measuring each device (paropt plan); single (the first device); dp\n"
               "                      (data parallel over all; the default with several devices); pp (the\n"
               "                      best pipeline: layer ranges, micro-batches, GPipe or 1F1B); hybrid\n"
               "                      (the best pipeline of data-parallel device groups); opsplit (large\n"
               "                      products, attention, convolutions, pooling, layer norms and\n"
               "                      activations split across the devices); or a plan file from paropt\n"
               "                      plan --out. The plan and its prediction are printed first. --devices\n"
               "                      defaults to auto with --plan.\n"
               "  --objective OBJ     with --plan auto: time (default), energy or edp\n"
               "  --max-slowdown P    with --objective energy: least energy within P%% of the fastest\n"
               "  --calibrate N       time every op of N steps on each device before planning, so the\n"
               "                      prediction rests on this machine's measurements (default 2; 0: the\n"
               "                      device figures alone)\n"
               "  --shares LIST       fixed batch shares per device for dp, e.g. 2,1 (default: even at\n"
               "                      first, then following each device's measured speed)\n"
               "  --slowdown-at STEP:DEVICE:F  from step STEP on, DEVICE runs F times slower (an\n"
               "                      emulation for tests; also the device option cpu:1:slowdown=F)\n"
               "  --seq-lens L1,L2,.. step k trains on the data's sequences cropped to length L[k %% n]\n"
               "                      (tiny_gpt; the longest must be the data's length): one graph, trainer\n"
               "                      and plan per length, made the first time it is met, one copy of the\n"
               "                      parameters and optimizer state; max_seq defaults to the longest\n"
               "  --plan-cache DIR    keep the plans made (by graph, devices, measurements) in DIR too\n"
               "  --gemm LIB          matrix-product library: default (oneDNN for small products and on\n"
               "                      AVX-512 CPUs, else OpenBLAS), onednn, openblas, or auto (time both\n"
               "                      per shape; the last bits of results may then vary run to run)\n"
               "  --profile           print where the time of a step goes, per op, to stderr\n"
               "  --json              print the summary as one JSON object (the last line of stdout)\n"
               "  -h, --help          show this help\n"
               "\n"
               "Progress goes to stderr, the summary to stdout. Exit status: 0 done, 1 the run failed\n"
               "(bad file or data), 2 bad usage.\n");
}

enum {
    O_MODEL = 256,
    O_INIT,
    O_DATA,
    O_STEPS,
    O_EPOCHS,
    O_WARMUP,
    O_BATCH,
    O_EVAL_BATCH,
    O_OPT,
    O_LR,
    O_MOM,
    O_WD,
    O_SAVE,
    O_OUT,
    O_RESUME,
    O_CKPT,
    O_SEED,
    O_LOG,
    O_JSON,
    O_PROFILE,
    O_GEMM,
    O_DEVICES,
    O_PLAN,
    O_SHARES,
    O_SLOWDOWN_AT,
    O_OBJECTIVE,
    O_MAX_SLOWDOWN,
    O_CALIBRATE,
    O_SEQ_LENS,
    O_PLAN_CACHE
};

static const struct option options[] = {{"model", required_argument, 0, O_MODEL},
                                        {"init", required_argument, 0, O_INIT},
                                        {"data", required_argument, 0, O_DATA},
                                        {"steps", required_argument, 0, O_STEPS},
                                        {"epochs", required_argument, 0, O_EPOCHS},
                                        {"warmup", required_argument, 0, O_WARMUP},
                                        {"batch", required_argument, 0, O_BATCH},
                                        {"eval-batch", required_argument, 0, O_EVAL_BATCH},
                                        {"optimizer", required_argument, 0, O_OPT},
                                        {"lr", required_argument, 0, O_LR},
                                        {"momentum", required_argument, 0, O_MOM},
                                        {"weight-decay", required_argument, 0, O_WD},
                                        {"save", required_argument, 0, O_SAVE},
                                        {"out", required_argument, 0, O_OUT},
                                        {"resume", required_argument, 0, O_RESUME},
                                        {"checkpoint-every", required_argument, 0, O_CKPT},
                                        {"seed", required_argument, 0, O_SEED},
                                        {"log-every", required_argument, 0, O_LOG},
                                        {"json", no_argument, 0, O_JSON},
                                        {"profile", no_argument, 0, O_PROFILE},
                                        {"gemm", required_argument, 0, O_GEMM},
                                        {"devices", required_argument, 0, O_DEVICES},
                                        {"plan", required_argument, 0, O_PLAN},
                                        {"shares", required_argument, 0, O_SHARES},
                                        {"slowdown-at", required_argument, 0, O_SLOWDOWN_AT},
                                        {"objective", required_argument, 0, O_OBJECTIVE},
                                        {"max-slowdown", required_argument, 0, O_MAX_SLOWDOWN},
                                        {"calibrate", required_argument, 0, O_CALIBRATE},
                                        {"seq-lens", required_argument, 0, O_SEQ_LENS},
                                        {"plan-cache", required_argument, 0, O_PLAN_CACHE},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};

/* Options a resumed run may add to its stored settings. */
static bool allowed_with_resume(int opt) { return opt == O_RESUME || opt == O_SAVE || opt == O_JSON; }

static int parse_args(int argc, char **argv, train_args *a) {
    memset(a, 0, sizeof *a);
    a->model = "mnist_mlp";
    a->data = "synthetic";
    a->objective = PO_OBJECTIVE_TIME;
    a->max_slowdown = NAN;
    a->calibrate = 2;
    const char *optimizer = "adam", *lr = NULL, *wd = NULL, *mom = NULL;
    int other_than_resume = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (c > 255 && !allowed_with_resume(c)) other_than_resume = c;
        switch (c) {
        case O_MODEL: a->model = optarg; break;
        case O_INIT: a->init = optarg; break;
        case O_DATA: a->data = optarg; break;
        case O_STEPS:
            if (!cli_parse_i64("--steps", optarg, 1, INT64_MAX / 2, &a->steps)) return CLI_USAGE;
            break;
        case O_EPOCHS:
            if (!cli_parse_i64("--epochs", optarg, 1, 1000000, &a->epochs)) return CLI_USAGE;
            break;
        case O_WARMUP:
            if (!cli_parse_i64("--warmup", optarg, 0, INT64_MAX / 2, &a->warmup)) return CLI_USAGE;
            break;
        case O_BATCH:
            if (!cli_parse_i64("--batch", optarg, 1, 1 << 24, &a->batch)) return CLI_USAGE;
            break;
        case O_EVAL_BATCH:
            if (!cli_parse_i64("--eval-batch", optarg, 1, 1 << 24, &a->eval_batch)) return CLI_USAGE;
            break;
        case O_OPT: optimizer = optarg; break;
        case O_LR: lr = optarg; break;
        case O_MOM: mom = optarg; break;
        case O_WD: wd = optarg; break;
        case O_SAVE: a->save = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_RESUME: a->resume = optarg; break;
        case O_CKPT:
            if (!cli_parse_i64("--checkpoint-every", optarg, 1, INT64_MAX / 2, &a->checkpoint_every)) return CLI_USAGE;
            break;
        case O_SEED:
            if (!cli_parse_u64("--seed", optarg, &a->seed)) return CLI_USAGE;
            break;
        case O_LOG:
            if (!cli_parse_i64("--log-every", optarg, 1, INT64_MAX, &a->log_every)) return CLI_USAGE;
            break;
        case O_JSON: a->json = true; break;
        case O_PROFILE: a->profile = true; break;
        case O_DEVICES: a->devices = optarg; break;
        case O_PLAN: a->plan = optarg; break;
        case O_SHARES: a->shares = optarg; break;
        case O_SLOWDOWN_AT: a->slowdown_at = optarg; break;
        case O_OBJECTIVE:
            if (po_objective_parse(optarg, &a->objective)) {
                cli_error("--objective: %s", po_last_error());
                return CLI_USAGE;
            }
            break;
        case O_MAX_SLOWDOWN: {
            float pct;
            if (!cli_parse_float("--max-slowdown", optarg, 0.0, 1e6, &pct)) return CLI_USAGE;
            a->max_slowdown = pct;
            break;
        }
        case O_CALIBRATE:
            if (!cli_parse_i64("--calibrate", optarg, 0, 100, &a->calibrate)) return CLI_USAGE;
            break;
        case O_SEQ_LENS:
            a->seq_lens = optarg;
            if (!varlen_parse(optarg, a)) return CLI_USAGE;
            break;
        case O_PLAN_CACHE: a->plan_cache = optarg; break;
        case O_GEMM:
            if (po_gemm_provider_parse(optarg, &a->gemm)) {
                cli_error("--gemm: %s", po_last_error());
                return CLI_USAGE;
            }
            break;
        case 'h': train_usage(stdout); return -1;
        case ':':
        default: return cli_bad_option("train", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see paropt train --help)", argv[optind]);
        return CLI_USAGE;
    }
    if (a->resume) {
        if (other_than_resume) {
            cli_error("--resume continues a run with the settings stored in its directory; only --save and --json "
                      "may be added");
            return CLI_USAGE;
        }
        return CLI_OK;
    }
    if (a->steps && a->epochs) {
        cli_error("give --epochs or --steps, not both");
        return CLI_USAGE;
    }
    if (!cli_optim_opts(optimizer, lr, wd, mom, &a->optim)) return CLI_USAGE;
    if (a->checkpoint_every && !a->out) {
        cli_error("--checkpoint-every needs --out DIR");
        return CLI_USAGE;
    }
    if (!isnan(a->max_slowdown) && a->objective != PO_OBJECTIVE_ENERGY) {
        cli_error("--max-slowdown applies to --objective energy only");
        return CLI_USAGE;
    }
    if (a->plan && train_plan_is_file(a->plan) && access(a->plan, R_OK) != 0) {
        cli_error("--plan: \"%s\" is neither auto, single, dp, pp, hybrid, opsplit nor a readable plan file", a->plan);
        return CLI_USAGE;
    }
    if (a->plan && !a->devices && strcmp(a->plan, "single") != 0) a->devices = "auto";
    if (a->seq_lens && a->slowdown_at) {
        cli_error("--seq-lens: not with --slowdown-at (each length's trainer has workers of its own)");
        return CLI_USAGE;
    }
    if (a->plan_cache && !a->devices) {
        cli_error("--plan-cache needs --devices or --plan");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* --- settings.json ------------------------------------------------------------------------- */

static char *settings_json(const train_args *a) {
    json_t *o = json_object(), *opt = json_object();
    json_object_set_new(o, "paropt", json_string(PO_VERSION));
    json_object_set_new(o, "model", json_string(a->model));
    json_object_set_new(o, "data", json_string(a->data));
    json_object_set_new(o, "init", a->init ? json_string(a->init) : json_null());
    json_object_set_new(o, "batch", json_integer(a->batch));
    json_object_set_new(o, "eval_batch", json_integer(a->eval_batch));
    json_object_set_new(o, "steps", json_integer(a->steps));
    json_object_set_new(o, "epochs", json_integer(a->epochs));
    json_object_set_new(o, "seed", json_integer((json_int_t)a->seed));
    json_object_set_new(o, "checkpoint_every", json_integer(a->checkpoint_every));
    json_object_set_new(o, "log_every", json_integer(a->log_every));
    json_object_set_new(o, "warmup", json_integer(a->warmup));
    json_object_set_new(o, "gemm", json_string(po_gemm_provider_name(a->gemm)));
    json_object_set_new(o, "devices", a->devices ? json_string(a->devices) : json_null());
    json_object_set_new(o, "plan", a->plan ? json_string(a->plan) : json_null());
    json_object_set_new(o, "shares", a->shares ? json_string(a->shares) : json_null());
    json_object_set_new(o, "slowdown_at", a->slowdown_at ? json_string(a->slowdown_at) : json_null());
    json_object_set_new(o, "objective", json_string(po_objective_name(a->objective)));
    json_object_set_new(o, "max_slowdown", isnan(a->max_slowdown) ? json_null() : json_real(a->max_slowdown));
    json_object_set_new(o, "calibrate", json_integer(a->calibrate));
    json_object_set_new(o, "seq_lens", a->seq_lens ? json_string(a->seq_lens) : json_null());
    json_object_set_new(o, "plan_cache", a->plan_cache ? json_string(a->plan_cache) : json_null());
    json_object_set_new(opt, "kind", json_string(po_optim_kind_name(a->optim.kind)));
    json_object_set_new(opt, "lr", json_real(a->optim.lr));
    json_object_set_new(opt, "weight_decay", json_real(a->optim.weight_decay));
    json_object_set_new(opt, "momentum", json_real(a->optim.momentum));
    json_object_set_new(opt, "dampening", json_real(a->optim.dampening));
    json_object_set_new(opt, "nesterov", json_boolean(a->optim.nesterov));
    json_object_set_new(opt, "beta1", json_real(a->optim.beta1));
    json_object_set_new(opt, "beta2", json_real(a->optim.beta2));
    json_object_set_new(opt, "eps", json_real(a->optim.eps));
    json_object_set_new(o, "optimizer", opt);
    /* Floats round-trip exactly through 9 significant digits. */
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(o);
    return text;
}

/* Fills a from a run directory's settings; keeps a->resume, a->save and a->json. */
static bool load_settings(const char *dir, train_args *a) {
    char *text;
    if (run_dir_read_settings(dir, &text)) {
        cli_error("--resume: %s", po_last_error());
        return false;
    }
    json_error_t err;
    json_t *o = json_loads(text, 0, &err), *opt = o ? json_object_get(o, "optimizer") : NULL;
    free(text);
    const char *kind = opt ? json_string_value(json_object_get(opt, "kind")) : NULL;
    const char *model = json_string_value(json_object_get(o, "model"));
    const char *data = json_string_value(json_object_get(o, "data"));
    const char *gemm = json_string_value(json_object_get(o, "gemm"));
    if (!o || !opt || !kind || !model || !data || !gemm || po_optim_kind_parse(kind, &a->optim.kind) ||
        po_gemm_provider_parse(gemm, &a->gemm)) {
        cli_error("--resume: %s/settings.json is not a paropt run's settings%s%s", dir, o ? "" : ": ",
                  o ? "" : err.text);
        json_decref(o);
        return false;
    }
    a->owned[0] = strdup(model);
    a->owned[1] = strdup(data);
    a->model = a->owned[0];
    a->data = a->owned[1];
    const char *optional[6] = {"devices", "plan", "shares", "slowdown_at", "seq_lens", "plan_cache"};
    const char **fields[6] = {&a->devices, &a->plan, &a->shares, &a->slowdown_at, &a->seq_lens, &a->plan_cache};
    for (int i = 0; i < 6; i++) {
        const char *v = json_string_value(json_object_get(o, optional[i]));
        a->owned[2 + i] = v ? strdup(v) : NULL;
        *fields[i] = a->owned[2 + i];
    }
    a->batch = json_integer_value(json_object_get(o, "batch"));
    a->eval_batch = json_integer_value(json_object_get(o, "eval_batch"));
    a->steps = json_integer_value(json_object_get(o, "steps"));
    a->epochs = json_integer_value(json_object_get(o, "epochs"));
    a->seed = (uint64_t)json_integer_value(json_object_get(o, "seed"));
    a->checkpoint_every = json_integer_value(json_object_get(o, "checkpoint_every"));
    a->log_every = json_integer_value(json_object_get(o, "log_every"));
    a->warmup = json_integer_value(json_object_get(o, "warmup"));
    /* Settings of runs made before planning existed lack these: the defaults. */
    const char *objective = json_string_value(json_object_get(o, "objective"));
    if (objective && po_objective_parse(objective, &a->objective)) a->objective = (po_objective)-1;
    json_t *ms = json_object_get(o, "max_slowdown");
    a->max_slowdown = json_is_number(ms) ? json_number_value(ms) : NAN;
    json_t *cal = json_object_get(o, "calibrate");
    a->calibrate = json_is_integer(cal) ? json_integer_value(cal) : 2;
    a->optim.lr = (float)json_number_value(json_object_get(opt, "lr"));
    a->optim.weight_decay = (float)json_number_value(json_object_get(opt, "weight_decay"));
    a->optim.momentum = (float)json_number_value(json_object_get(opt, "momentum"));
    a->optim.dampening = (float)json_number_value(json_object_get(opt, "dampening"));
    a->optim.nesterov = json_is_true(json_object_get(opt, "nesterov"));
    a->optim.beta1 = (float)json_number_value(json_object_get(opt, "beta1"));
    a->optim.beta2 = (float)json_number_value(json_object_get(opt, "beta2"));
    a->optim.eps = (float)json_number_value(json_object_get(opt, "eps"));
    json_decref(o);
    a->out = a->resume;
    if (a->seq_lens && !varlen_parse(a->seq_lens, a)) return false;
    if (a->batch < 1 || a->steps < 1 || a->log_every < 1 || po_optim_opts_check(&a->optim) ||
        a->objective == (po_objective)-1 || a->calibrate < 0) {
        cli_error("--resume: %s/settings.json holds invalid settings", dir);
        return false;
    }
    return true;
}

/* --- setup ----------------------------------------------------------------------------------- */

static bool is_synthetic(const char *data) { return strcmp(data, "synthetic") == 0; }

/* The window length text data needs: the model's seq (the spec's, or its default). */
static int64_t model_seq(const char *spec) {
    po_model *m;
    if (po_model_build(spec, 1, &m)) return 128;
    po_shape x = po_node_shape(m->x);
    int64_t seq = po_node_dtype(m->x) == PO_I64 && x.ndim == 2 ? x.dim[1] : 128;
    po_model_free(m);
    return seq;
}

/* --slowdown-at STEP:DEVICE:F[,STEP:DEVICE:F...] against the resolved workers. Exit code. */
static int parse_slowdown_at(const char *text, train_setup *s) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *c1 = strchr(item, ':'), *c3 = strrchr(item, ':');
        if (!c1 || c1 == c3 || s->n_slow_events == (int)(sizeof s->slow_events / sizeof *s->slow_events)) {
            cli_error("--slowdown-at: expected STEP:DEVICE:F, got \"%s\"", item);
            return CLI_USAGE;
        }
        *c1 = *c3 = 0;
        char *end;
        long long step = strtoll(item, &end, 10);
        float f = strtof(c3 + 1, NULL);
        int w = -1;
        for (int i = 0; i < s->n_workers; i++)
            if (strcmp(s->device_id[i], c1 + 1) == 0) w = i;
        if (*end || step < 1 || !(f >= 1.0f) || f > 1000.0f || w < 0) {
            cli_error("--slowdown-at: \"%s:%s:%s\" needs a step >= 1, one of the --devices and a factor in [1, 1000]",
                      item, c1 + 1, c3 + 1);
            return CLI_USAGE;
        }
        s->slow_events[s->n_slow_events].step = step;
        s->slow_events[s->n_slow_events].worker = w;
        s->slow_events[s->n_slow_events++].factor = f;
    }
    return CLI_OK;
}

/* Resolves --devices / --plan / --shares into worker specs. Exit code. */
static int resolve_devices(const train_args *a, train_setup *s) {
    s->n_workers = 0;
    if (!a->devices) {
        if (a->plan && strcmp(a->plan, "single") != 0) {
            cli_error("--plan %s needs --devices", a->plan);
            return CLI_USAGE;
        }
        if (a->shares) {
            cli_error("--shares needs --devices");
            return CLI_USAGE;
        }
        return CLI_OK;
    }
    po_machine *mach;
    po_device_list list = {0, NULL};
    po_device_register_option("slowdown", "emulate a device F times slower (F >= 1), for tests and demonstrations");
    if (po_machine_discover(NULL, &mach)) {
        cli_error("--devices: %s", po_last_error());
        return CLI_FAIL;
    }
    po_status st = po_devices_parse_trainable(mach, a->devices, &list);
    po_machine_free(mach);
    if (st) {
        cli_error("--devices: %s", po_last_error());
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    bool dp = list.n > 1 && !(a->plan && strcmp(a->plan, "single") == 0);
    for (int i = 0; i < list.n && !rc; i++)
        if (list.dev[i].kind != PO_DEVICE_CPU) {
            cli_error("--devices: %s: the runtime trains on CPU devices only so far", list.dev[i].id);
            rc = CLI_USAGE;
        }
    if (!rc && list.n > (int)(sizeof s->workers / sizeof *s->workers)) {
        cli_error("--devices: at most %d devices", (int)(sizeof s->workers / sizeof *s->workers));
        rc = CLI_USAGE;
    }
    int n = dp ? list.n : 1;
    for (int i = 0; i < n && !rc; i++) {
        s->workers[i] = (po_worker_spec){list.dev[i].first_core, list.dev[i].n_cores, 0.0};
        snprintf(s->device_id[i], sizeof s->device_id[i], "%s", list.dev[i].id);
        /* Checked here for a one-line error; the trainer applies it (po_trainer_new_plan). */
        const char *f = po_device_opt_get(&list.dev[i], "slowdown");
        char *end = NULL;
        float slow = f ? strtof(f, &end) : 1.0f;
        if (f && (*end || !(slow >= 1.0f) || slow > 1000.0f)) {
            cli_error("--devices: %s: slowdown must be a number between 1 and 1000, got \"%s\"", list.dev[i].id, f);
            rc = CLI_USAGE;
        }
    }
    if (!rc && a->shares) {
        const char *p = a->shares;
        int k = 0;
        while (*p && k < n && !rc) {
            char *end;
            double v = strtod(p, &end);
            if (end == p || !(v > 0.0) || !isfinite(v) || (*end && *end != ','))
                rc = CLI_USAGE;
            else
                s->workers[k++].share = v;
            p = *end ? end + 1 : end;
        }
        if (rc || k != n || *p) {
            cli_error("--shares: expected %d positive numbers separated by commas, got \"%s\"", n, a->shares);
            rc = CLI_USAGE;
        }
    }
    s->n_workers = rc ? 0 : n;
    s->devs = list; /* kept for planning (train_plan_resolve); freed by teardown */
    if (!rc && a->slowdown_at && (rc = parse_slowdown_at(a->slowdown_at, s))) s->n_workers = 0;
    return rc;
}

/* Opens data, builds the model to fit it, the trainer and the loader. Exit code. */
static int setup(train_args *a, train_setup *s) {
    memset(s, 0, sizeof *s);
    int rc = a->seq_lens ? varlen_model_spec(a, s->varlen_spec, sizeof s->varlen_spec) : CLI_OK;
    if (rc) return rc;
    if (a->seq_lens) a->model = s->varlen_spec; /* the longest length, max_seq set */
    rc = resolve_devices(a, s);
    if (rc) return rc;
    po_status st;
    if (is_synthetic(a->data)) {
        if (po_model_build(a->model, a->batch, &s->model)) {
            cli_error("--model: %s", po_last_error());
            return CLI_USAGE;
        }
        st = po_dataset_synthetic(s->model, 4 * s->model->batch, a->seed ^ 0x5eedULL, &s->train);
    } else {
        int64_t seq = model_seq(a->model);
        st = po_dataset_open(a->data, PO_SPLIT_TRAIN, seq, &s->train);
        if (!st) st = po_dataset_open(a->data, PO_SPLIT_TEST, seq, &s->test);
        if (st) {
            cli_error("--data: %s", po_last_error());
            return CLI_FAIL;
        }
        if (a->seq_lens && (rc = varlen_check_data(a, s->train))) return rc;
        /* A file's largest label is no class count: then the model keeps its own. */
        po_data_shape shape = {po_dataset_sample_shape(s->train), po_dataset_sample_dtype(s->train),
                               po_dataset_classes_known(s->train) ? po_dataset_classes(s->train) : 0};
        if (po_model_build_for(a->model, a->batch, &shape, &s->model)) {
            cli_error("--model: %s", po_last_error());
            return CLI_USAGE;
        }
    }
    if (!st) st = po_dataset_check(s->train, s->model);
    if (!st && s->test) st = po_dataset_check(s->test, s->model);
    if (st) {
        cli_error("--data: %s", po_last_error());
        return CLI_FAIL;
    }
    a->model = s->model->spec; /* settings record the resolved architecture */
    a->batch = s->model->batch;
    if (!a->eval_batch) a->eval_batch = a->batch;
    if (po_loader_new(s->train, a->batch, a->seed, true, &s->loader)) {
        cli_error("--data: %s", po_last_error());
        return CLI_FAIL;
    }
    int64_t bpe = po_loader_batches_per_epoch(s->loader);
    if (a->epochs) a->steps = a->epochs * bpe;
    if (!a->steps) {
        a->epochs = is_synthetic(a->data) ? 0 : 1;
        a->steps = a->epochs ? bpe : 100;
    }
    if (!a->log_every) a->log_every = a->steps >= 10 ? a->steps / 10 : 1;
    if (a->out && !a->checkpoint_every) a->checkpoint_every = bpe;
    if (a->devices && po_plan_cache_new(a->plan_cache, &s->plan_cache)) {
        cli_error("%s", po_last_error());
        return CLI_FAIL;
    }
    if (a->seq_lens) return varlen_new(a, s); /* a trainer per length, the first one now */
    if (a->devices) {
        /* Without --plan, several devices train data parallel as given. */
        train_args named = *a;
        if (!named.plan) named.plan = s->n_workers > 1 ? "dp" : "single";
        int rc = train_plan_resolve(&named, s);
        if (rc) return rc;
    }
    /* With devices the run is planned; shares follow measured speed unless the user fixed them.
     * Without, one worker: the calling thread. */
    po_status tst = s->planned
                        ? po_trainer_new_plan(s->model, &a->optim, a->seed, &s->plan, &s->devs, !a->shares, &s->trainer)
                        : po_trainer_new(s->model, &a->optim, a->seed, &s->trainer);
    if (tst) {
        cli_error("%s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Loads --init, or the newest checkpoint when resuming, and opens the run directory. */
static int prepare_run(train_args *a, train_setup *s) {
    po_params *p = po_trainer_params(s->trainer);
    s->start = (po_train_position){0, 0, 0, a->seed};
    if (a->resume) {
        char used[4096];
        if (run_dir_resume(a->resume, p, &s->start, used, sizeof used)) {
            cli_error("--resume: %s", po_last_error());
            return CLI_FAIL;
        }
        if (s->start.data_seed != a->seed || s->start.step > a->steps ||
            po_loader_seek(s->loader, s->start.epoch, s->start.batch_in_epoch)) {
            cli_error("--resume: %s does not belong to this run's settings", used);
            return CLI_FAIL;
        }
        po_exec_set_steps(po_trainer_exec(s->trainer), s->start.step);
        fprintf(stderr, "resuming %s from step %lld\n", a->resume, (long long)s->start.step);
    } else if (a->init && po_params_load(p, a->init)) {
        cli_error("--init: %s", po_last_error());
        return CLI_FAIL;
    }
    if (!a->out) return CLI_OK;
    if (!a->resume) {
        char *settings = settings_json(a);
        po_status st = settings ? run_dir_create(a->out, settings) : po_fail(PO_ERR_NO_MEMORY, "out of memory");
        free(settings);
        /* A checkpoint at step 0 makes every run resumable, even one killed in its first step. */
        if (!st) st = run_dir_checkpoint(a->out, p, &s->start, s->model->spec);
        if (st) {
            cli_error("--out: %s", po_last_error());
            return CLI_FAIL;
        }
    }
    if (run_dir_open_metrics(a->out, a->resume ? s->start.step : -1, &s->metrics)) {
        cli_error("--out: %s", po_last_error());
        return CLI_FAIL;
    }
    /* TensorBoard reads every events file of the directory: a resumed run adds its own. */
    if (po_tfevents_open(a->out, &s->events)) {
        cli_error("--out: %s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int finish(const train_args *a, train_setup *s) {
    po_params *p = po_trainer_params(s->trainer);
    const char *keys[] = {"model", "config"}, *vals[] = {s->model->name, s->model->config};
    if (a->out) {
        char path[4096];
        snprintf(path, sizeof path, "%s/model.safetensors", a->out);
        if (po_params_save(p, path, 2, keys, vals)) {
            cli_error("--out: %s", po_last_error());
            return CLI_FAIL;
        }
    }
    if (a->save && po_params_save(p, a->save, 2, keys, vals)) {
        cli_error("--save: %s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* The run's summary: --json prints it, the run directory keeps it as summary.json. */
static json_t *summary_json(const train_args *a, const train_setup *s, const train_result *r) {
    const po_model *m = s->model;
    po_gemm_provider gemm = po_get_gemm_provider();
    json_t *o = json_object();
    char lr[32]; /* the float's shortest decimal form: 1e-3, not 0.00100000005 */
    snprintf(lr, sizeof lr, "%.7g", (double)a->optim.lr);
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "config", json_loads(m->config, 0, NULL));
    json_object_set_new(o, "data", json_string(a->data));
    json_object_set_new(o, "steps", json_integer(a->steps));
    json_object_set_new(o, "epochs", json_integer(a->epochs));
    json_object_set_new(o, "batch", json_integer(m->batch));
    json_object_set_new(o, "optimizer", json_string(po_optim_kind_name(a->optim.kind)));
    json_object_set_new(o, "lr", json_real(strtod(lr, NULL)));
    json_object_set_new(o, "final_loss", real_or_null(r->final_loss));
    json_object_set_new(
        o, "gemm", json_string(po_gemm_provider_name(gemm == PO_GEMM_DEFAULT ? po_gemm_default_provider() : gemm)));
    json_object_set_new(o, "samples_per_s", json_real(round(r->samples_per_s * 10.0) / 10.0));
    json_object_set_new(o, "ms_per_step", json_real(round(r->ms_per_step * 1e3) / 1e3));
    if (r->evaluated) {
        json_object_set_new(o, "test_loss", json_real(r->eval.loss));
        json_object_set_new(o, "test_accuracy", json_real(r->eval.accuracy));
    }
    if (a->out) json_object_set_new(o, "out", json_string(a->out));
    json_t *devs = json_array();
    for (int i = 0; i < s->n_workers; i++) {
        json_t *w = json_object();
        char id[32];
        const po_worker_spec *ws = &s->workers[i];
        if (ws->n_cores > 1)
            snprintf(id, sizeof id, "cpu:%d-%d", ws->first_core, ws->first_core + ws->n_cores - 1);
        else
            snprintf(id, sizeof id, "cpu:%d", ws->first_core);
        json_object_set_new(w, "device", json_string(id));
        json_object_set_new(w, "rows", json_integer(po_trainer_worker_rows(s->trainer, i)));
        json_array_append_new(devs, w);
    }
    json_object_set_new(o, "workers", devs);
    json_t *busy = json_object();
    for (int i = 0; i < (s->n_workers > 0 ? s->n_workers : 1); i++)
        json_object_set_new(busy, s->n_workers > 0 ? s->device_id[i] : "cpu", json_real(round(r->busy[i] * 1e3) / 1e3));
    json_object_set_new(o, "busy", busy);
    json_object_set_new(o, "energy_j", real_or_null(r->energy_j));
    json_object_set_new(o, "energy_source", isfinite(r->energy_j) ? json_string(r->energy_source) : json_null());
    json_object_set_new(o, "energy_j_per_sample",
                        real_or_null(r->timed_steps > 0 ? r->energy_j / (double)(r->timed_steps * m->batch) : NAN));
    json_object_set_new(o, "measured_step_ms", json_real(round(r->ms_per_step * 1e3) / 1e3));
    if (s->planned) {
        char *plan = po_plan_to_json(&s->plan, s->workload);
        json_t *p = plan ? json_loads(plan, 0, NULL) : NULL;
        free(plan);
        double pred = s->plan.predicted.step_ms;
        json_object_set_new(o, "plan", p ? p : json_null());
        json_object_set_new(o, "predicted_step_ms", real_or_null(round(pred * 1e3) / 1e3));
        /* Signed: measured / predicted - 1 (positive: slower than predicted). */
        json_object_set_new(
            o, "prediction_error",
            real_or_null(pred > 0.0 && r->ms_per_step > 0.0 ? round((r->ms_per_step / pred - 1.0) * 1e4) / 1e4 : NAN));
    } else {
        json_object_set_new(o, "plan", json_string("single"));
        json_object_set_new(o, "predicted_step_ms", json_null());
        json_object_set_new(o, "prediction_error", json_null());
    }
    if (a->seq_lens) varlen_summary(a, s, o);
    if (a->seq_lens || a->plan_cache) {
        json_t *pc = json_object();
        json_object_set_new(pc, "hits", json_integer(s->plan_hits));
        json_object_set_new(pc, "misses", json_integer(s->plan_misses));
        json_object_set_new(o, "plan_cache", pc);
    }
    return o;
}

/* The text summary, or with --json the summary object as one line. */
static void print_summary(const train_args *a, const train_setup *s, const train_result *r, const json_t *summary) {
    const po_model *m = s->model;
    if (!a->json) {
        printf("%s: %lld steps of batch %lld, final loss %.6g, %.3f ms/step, %.1f samples/s", m->name,
               (long long)a->steps, (long long)m->batch, r->final_loss, r->ms_per_step, r->samples_per_s);
        if (r->evaluated) printf(", test accuracy %.4f, test loss %.4f", r->eval.accuracy, r->eval.loss);
        printf("\n");
        if (s->planned && s->plan.predicted.step_ms > 0.0 && r->ms_per_step > 0.0)
            printf("predicted %.4g ms per step, measured %.4g ms: %+.1f%%\n", s->plan.predicted.step_ms, r->ms_per_step,
                   100.0 * (r->ms_per_step / s->plan.predicted.step_ms - 1.0));
        if (isfinite(r->energy_j) && r->timed_steps > 0)
            printf("energy %.4g J over %lld timed steps, %.4g mJ per sample (%s)\n", r->energy_j,
                   (long long)r->timed_steps, 1e3 * r->energy_j / (double)(r->timed_steps * m->batch),
                   r->energy_source);
        return;
    }
    char *text = json_dumps(summary, JSON_COMPACT | JSON_REAL_PRECISION(9));
    printf("%s\n", text);
    free(text);
}

/* summary.json and plan.json in the run directory, atomically. */
static int write_run_files(const train_args *a, const train_setup *s, const json_t *summary) {
    if (!a->out) return CLI_OK;
    char path[4096];
    if (s->planned) {
        snprintf(path, sizeof path, "%s/plan.json", a->out);
        if (po_plan_save(&s->plan, s->workload, path)) {
            cli_error("--out: %s", po_last_error());
            return CLI_FAIL;
        }
    }
    char *text = json_dumps(summary, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    po_status st = text ? run_dir_write(a->out, "summary.json", text) : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    free(text);
    if (st) {
        cli_error("--out: %s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

static void teardown(train_args *a, train_setup *s) {
    varlen_free(s); /* first: s->trainer and the plan fields borrow its graphs' */
    if (s->trainer) po_trainer_set_trace(s->trainer, NULL);
    po_trace_free(s->trace);
    po_meter_free(s->meter);
    po_tfevents_close(s->events);
    po_plan_free(&s->plan);
    po_planner_free(s->planner);
    po_plan_cache_free(s->plan_cache);
    po_device_list_free(&s->devs);
    if (s->metrics) fclose(s->metrics);
    po_loader_free(s->loader);
    po_trainer_free(s->trainer);
    po_dataset_free(s->train);
    po_dataset_free(s->test);
    po_model_free(s->model);
    for (size_t i = 0; i < sizeof a->owned / sizeof *a->owned; i++)
        free(a->owned[i]);
}

int cmd_train(int argc, char **argv) {
    train_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (a.resume && !load_settings(a.resume, &a)) {
        teardown(&a, &(train_setup){0});
        return CLI_FAIL;
    }
    if (a.save && !cli_check_writable("--save", a.save)) return CLI_USAGE;
    po_set_gemm_provider(a.gemm);
    train_setup s;
    train_result r;
    memset(&r, 0, sizeof r);
    r.final_loss = NAN;
    r.energy_j = NAN;
    rc = setup(&a, &s);
    if (!rc) rc = prepare_run(&a, &s);
    if (!rc) rc = train_loop(&a, &s, &r);
    if (!rc) rc = finish(&a, &s);
    json_t *summary = !rc && (a.json || a.out) ? summary_json(&a, &s, &r) : NULL;
    if (!rc && !summary && (a.json || a.out)) {
        cli_error("out of memory formatting the summary");
        rc = CLI_FAIL;
    }
    if (!rc) rc = write_run_files(&a, &s, summary);
    if (!rc) print_summary(&a, &s, &r, summary);
    json_decref(summary);
    teardown(&a, &s);
    return rc;
}

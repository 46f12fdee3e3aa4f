/* paropt analyze: the work, dependencies and memory of one training step of a model, as a
 * table, JSON, or a Graphviz drawing. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "io/atomic_file.h"
#include "paropt/paropt.h"

extern char **environ;

typedef struct {
    const char *model, *dot, *svg;
    int64_t batch;
    po_optim_opts optim;
    bool json, nodes;
} analyze_args;

static void analyze_usage(FILE *f) {
    fprintf(f, "usage: paropt analyze [options]\n"
               "\n"
               "Analyses one training step (forward, backward, optimizer) of a model: FLOPs, bytes moved and\n"
               "arithmetic intensity per layer, peak memory from the executor's buffer plan, and the\n"
               "critical path. Nothing is trained; no parameters are allocated.\n"
               "\n"
               "  --model SPEC        NAME or NAME:key=value,... (default mnist_mlp); models and keys:\n");
    for (const char *const *n = po_model_names(); *n; n++)
        fprintf(f, "                        %-10s %s\n", *n, po_model_keys(*n));
    fprintf(f, "  --batch B           samples per step (default: the model's batch key)\n"
               "  --optimizer NAME    sgd, adam (default) or adamw: sets the optimizer's work and state\n"
               "  --momentum X        SGD momentum (default 0; > 0 keeps one state float per parameter)\n"
               "  --json              print one JSON object instead of the table\n"
               "  --nodes             also list every node (table, or a \"nodes\" array in the JSON)\n"
               "  --dot FILE          write a Graphviz drawing: layer clusters, colour = intensity,\n"
               "                      width = FLOPs, critical path in red\n"
               "  --svg FILE          render that drawing to SVG with Graphviz's dot (apt-get install graphviz)\n"
               "  -h, --help          show this help\n"
               "\n"
               "Units: FLOP (a multiply-add is 2), bytes (MiB = 2^20 bytes), intensity in FLOP per byte moved.\n"
               "The README's section \"paropt analyze\" defines every figure.\n");
}

/* Whether an executable `name` is on $PATH (as posix_spawnp will look for it). */
static bool have_program(const char *name) {
    const char *path = getenv("PATH");
    if (!path) return false;
    char buf[4096];
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && len + strlen(name) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, name);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return true;
        }
        if (!end) break;
        p = end + 1;
    }
    return false;
}

static int parse_args(int argc, char **argv, analyze_args *a) {
    enum { O_MODEL = 256, O_BATCH, O_OPT, O_MOM, O_JSON, O_NODES, O_DOT, O_SVG };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"optimizer", required_argument, 0, O_OPT},
                                         {"momentum", required_argument, 0, O_MOM},
                                         {"json", no_argument, 0, O_JSON},
                                         {"nodes", no_argument, 0, O_NODES},
                                         {"dot", required_argument, 0, O_DOT},
                                         {"svg", required_argument, 0, O_SVG},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->model = "mnist_mlp";
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
        case O_OPT: optimizer = optarg; break;
        case O_MOM: mom = optarg; break;
        case O_JSON: a->json = true; break;
        case O_NODES: a->nodes = true; break;
        case O_DOT: a->dot = optarg; break;
        case O_SVG: a->svg = optarg; break;
        case 'h': analyze_usage(stdout); return -1;
        case ':':
        default: return cli_bad_option("analyze", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\" (see paropt analyze --help)", argv[optind]);
        return CLI_USAGE;
    }
    if (!cli_optim_opts(optimizer, NULL, NULL, mom, &a->optim)) return CLI_USAGE;
    if (a->dot && !cli_check_writable("--dot", a->dot)) return CLI_USAGE;
    if (a->svg && !cli_check_writable("--svg", a->svg)) return CLI_USAGE;
    if (a->svg && !have_program("dot")) {
        cli_error("--svg: Graphviz's dot is not installed (apt-get install graphviz); --dot FILE writes the "
                  "drawing to render elsewhere");
        return CLI_FAIL;
    }
    return CLI_OK;
}

static void make_title(const po_model *m, const analyze_args *a, char *buf, size_t size) {
    snprintf(buf, size, "%s, batch %lld, %s: one training step", m->name, (long long)m->batch,
             po_optim_kind_name(a->optim.kind));
}

static int write_dot(const po_analysis *an, const char *title, const char *path) {
    po_atomic_file af;
    po_status st = po_atomic_begin(path, &af);
    if (!st) {
        st = po_analysis_write_dot(an, title, af.fp);
        st = st ? (po_atomic_abort(&af), st) : po_atomic_commit(&af);
    }
    if (st) {
        cli_error("--dot: %s", po_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Renders the drawing with `dot -Tsvg` into a temporary file next to path, then renames it over
 * path: a failed render leaves any old file as it was. dot's own messages are dropped (warnings
 * about large drawings would break the one-line error rule); --dot keeps the input to retry. */
static int write_svg(const po_analysis *an, const char *title, const char *path) {
    size_t len = strlen(path);
    char *dot_tmp = malloc(len + 16), *svg_tmp = malloc(len + 16);
    if (!dot_tmp || !svg_tmp) {
        free(dot_tmp);
        free(svg_tmp);
        cli_error("--svg: out of memory");
        return CLI_FAIL;
    }
    snprintf(dot_tmp, len + 16, "%s.dot.XXXXXX", path);
    snprintf(svg_tmp, len + 16, "%s.svg.XXXXXX", path);
    int rc = CLI_FAIL;
    int fd_dot = mkstemp(dot_tmp), fd_svg = fd_dot >= 0 ? mkstemp(svg_tmp) : -1;
    FILE *f = fd_dot >= 0 && fd_svg >= 0 ? fdopen(fd_dot, "w") : NULL;
    if (!f) {
        cli_error("--svg: cannot create a temporary file next to \"%s\": %s", path, strerror(errno));
        if (fd_dot >= 0) close(fd_dot), unlink(dot_tmp);
        if (fd_svg >= 0) close(fd_svg), unlink(svg_tmp);
        free(dot_tmp);
        free(svg_tmp);
        return CLI_FAIL;
    }
    close(fd_svg);
    mode_t mask = umask(0); /* mkstemp made the file 0600; give it the mode fopen would */
    umask(mask);
    po_status st = po_analysis_write_dot(an, title, f);
    if (fclose(f) != 0 && !st) st = po_fail(PO_ERR_IO, "writing \"%s\": %s", dot_tmp, strerror(errno));
    if (st) {
        cli_error("--svg: %s", po_last_error());
    } else {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        char *args[] = {"dot", "-Tsvg", "-o", svg_tmp, dot_tmp, NULL};
        pid_t pid;
        int err = posix_spawnp(&pid, "dot", &fa, NULL, args, environ), status = 0;
        posix_spawn_file_actions_destroy(&fa);
        if (err) {
            cli_error("--svg: cannot run Graphviz's dot (%s); apt-get install graphviz", strerror(err));
        } else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            cli_error("--svg: dot -Tsvg failed (status %d); write the drawing with --dot FILE and run dot on it to "
                      "see why",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        } else if (chmod(svg_tmp, 0666 & ~mask) != 0 || rename(svg_tmp, path) != 0) {
            cli_error("--svg: cannot write \"%s\": %s", path, strerror(errno));
        } else {
            rc = CLI_OK;
        }
    }
    unlink(dot_tmp);
    if (rc) unlink(svg_tmp);
    free(dot_tmp);
    free(svg_tmp);
    return rc;
}

/* --- text report ------------------------------------------------------------------------------ */

#define MIB  (1024.0 * 1024.0)
#define MEGA 1e6

static const char *phase_name(po_phase p) {
    return p == PO_PHASE_FORWARD ? "forward" : p == PO_PHASE_BACKWARD ? "backward" : "optimizer";
}

static const char *layer_name(const po_graph *g, const po_node *n) {
    const char *s = po_graph_layer_name(g, po_node_layer(n));
    return s ? s : "(none)";
}

static bool layer_empty(const po_layer_info *L) {
    return L->params == 0 && L->flops_forward + L->flops_backward + L->flops_optimizer == 0.0 &&
           L->activation_bytes == 0;
}

/* mem MiB: the layer's parameters, gradients and optimizer state plus its activations at the peak. */
static void print_layer_row(const char *name, const po_layer_info *L) {
    size_t mem = L->param_bytes + L->grad_bytes + L->optim_state_bytes + L->activation_bytes;
    printf("%-16s %12lld %12.2f %12.2f %10.2f %10.3f %10.3f %9.2f\n", name, (long long)L->params,
           L->flops_forward / MEGA, L->flops_backward / MEGA, L->flops_optimizer / MEGA,
           (double)L->activation_bytes / MIB, (double)mem / MIB, L->intensity);
}

static void print_nodes_table(const po_analysis *an) {
    const po_graph *g = po_analysis_graph(an);
    printf("\n%5s %-24s %-9s %-12s %-20s %12s %11s %11s %8s %5s %12s %s\n", "id", "op", "phase", "layer", "shape",
           "MFLOP", "read B", "written B", "FLOP/B", "level", "slack MFLOP", "inputs");
    for (int i = 0; i < po_graph_size(g); i++) {
        const po_node_info *r = po_analysis_node(an, i);
        const po_node *n = r->node;
        char shape[96];
        po_shape s = po_node_shape(n);
        po_shape_format(&s, shape, sizeof shape);
        printf("%5d %-24s %-9s %-12s %-20s %12.3f %11.0f %11.0f %8.2f %5d %12.3f ", i, po_op_name(po_node_op(n)),
               phase_name(po_node_phase(n)), layer_name(g, n), shape, r->flops / MEGA, r->bytes_read, r->bytes_written,
               r->intensity, r->level, r->slack / MEGA);
        for (int k = 0; k < po_node_n_inputs(n); k++)
            printf("%s%d", k ? "," : "", po_node_id(po_node_input(n, k)));
        printf("%s\n", r->critical ? " *" : "");
    }
}

static void print_report(const po_model *m, const analyze_args *a, const po_analysis *an) {
    const po_graph *g = po_analysis_graph(an);
    const po_totals *t = po_analysis_totals(an);
    int phases[3] = {0, 0, 0};
    for (int i = 0; i < po_graph_size(g); i++)
        phases[po_node_phase(po_graph_node(g, i))]++;
    printf("%s, batch %lld, optimizer %s\n", m->name, (long long)m->batch, po_optim_kind_name(a->optim.kind));
    printf("graph: %d nodes (%d forward, %d backward, %d optimizer), %d dependencies, %d layers\n\n", t->n_nodes,
           phases[0], phases[1], phases[2], t->n_deps, po_graph_n_layers(g));
    printf("%-16s %12s %12s %12s %10s %10s %10s %9s\n", "layer", "params", "fwd MFLOP", "bwd MFLOP", "opt MFLOP",
           "act MiB", "mem MiB", "FLOP/B");
    for (int l = 0; l < po_graph_n_layers(g); l++)
        print_layer_row(po_graph_layer_name(g, l), po_analysis_layer(an, l));
    const po_layer_info *none = po_analysis_layer(an, -1);
    if (!layer_empty(none)) print_layer_row(none->name, none);
    po_layer_info all = {.params = t->params,
                         .param_bytes = t->param_bytes,
                         .grad_bytes = t->grad_bytes,
                         .optim_state_bytes = t->optim_state_bytes,
                         .flops_forward = t->flops_forward,
                         .flops_backward = t->flops_backward,
                         .flops_optimizer = t->flops_optimizer,
                         .activation_bytes = t->live_peak_bytes,
                         .intensity = t->bytes_moved > 0.0 ? t->flops / t->bytes_moved : 0.0};
    print_layer_row("total", &all);

    printf("\nFLOPs      %.4g GFLOP per step (forward %.4g, backward %.4g, optimizer %.4g), %.4g MFLOP per "
           "sample\n",
           t->flops / 1e9, t->flops_forward / 1e9, t->flops_backward / 1e9, t->flops_optimizer / 1e9,
           t->flops / (double)m->batch / MEGA);
    printf("memory     peak %.2f MiB = parameters %.2f + gradients %.2f + optimizer state %.2f + inputs %.2f\n"
           "           + activation arena %.2f + scratch %.2f MiB\n",
           (double)t->peak_memory_bytes / MIB, (double)t->param_bytes / MIB, (double)t->grad_bytes / MIB,
           (double)t->optim_state_bytes / MIB, (double)t->input_bytes / MIB, (double)t->arena_bytes / MIB,
           (double)t->scratch_bytes / MIB);
    if (t->peak_node >= 0) {
        const po_node *pk = po_graph_node(g, t->peak_node);
        printf("           activations live at the peak: %.2f MiB, at node %d (%s, %s, %s); a perfect packing "
               "would need %.2f MiB in all\n",
               (double)t->live_peak_bytes / MIB, t->peak_node, po_op_name(po_node_op(pk)),
               phase_name(po_node_phase(pk)), layer_name(g, pk), (double)t->peak_live_memory_bytes / MIB);
    }
    const int *path;
    double cp;
    int len = po_analysis_critical_path(an, &path, &cp), work = 0;
    for (int k = 0; k < len; k++)
        work += po_analysis_node(an, path[k])->flops > 0.0;
    printf("parallel   %d levels, widest %d nodes; step FLOPs / critical path = %.2f\n", t->n_levels,
           t->max_level_width, cp > 0.0 ? t->flops / cp : 0.0);
    printf("critical   %.4g GFLOP (%.1f%% of the step), %d nodes with work of %d:\n", cp / 1e9,
           t->flops > 0.0 ? 100.0 * cp / t->flops : 0.0, work, len);
    int col = 0;
    for (int k = 0; k < len; k++) {
        const po_node *n = po_analysis_node(an, path[k])->node;
        if (po_analysis_node(an, path[k])->flops == 0.0) continue;
        char item[128];
        int w = snprintf(item, sizeof item, "%s%s(%s)", col ? " -> " : "", po_op_name(po_node_op(n)), layer_name(g, n));
        if (col && col + w > 100) {
            printf(" ->\n");
            col = 0;
            w = snprintf(item, sizeof item, "%s(%s)", po_op_name(po_node_op(n)), layer_name(g, n));
        }
        printf("%s%s", col ? "" : "           ", item);
        col += w;
    }
    if (col) printf("\n");
    if (a->nodes) print_nodes_table(an);
}

/* --- JSON ------------------------------------------------------------------------------------- */

/* FLOP and byte counts are whole numbers: JSON integers. */
static json_t *jint(double v) { return json_integer((json_int_t)llround(v)); }

static json_t *layer_json(const po_layer_info *L) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(L->name));
    json_object_set_new(o, "nodes", json_integer(L->n_nodes));
    json_object_set_new(o, "params", json_integer(L->params));
    json_object_set_new(o, "param_bytes", jint((double)L->param_bytes));
    json_object_set_new(o, "grad_bytes", jint((double)L->grad_bytes));
    json_object_set_new(o, "optimizer_state_bytes", jint((double)L->optim_state_bytes));
    json_object_set_new(o, "flops_forward", jint(L->flops_forward));
    json_object_set_new(o, "flops_backward", jint(L->flops_backward));
    json_object_set_new(o, "flops_optimizer", jint(L->flops_optimizer));
    json_object_set_new(o, "bytes_moved", jint(L->bytes_moved));
    json_object_set_new(o, "intensity", json_real(L->intensity));
    json_object_set_new(o, "activation_bytes", jint((double)L->activation_bytes));
    return o;
}

static json_t *node_ref_json(const po_analysis *an, int id) {
    const po_graph *g = po_analysis_graph(an);
    const po_node_info *r = po_analysis_node(an, id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "op", json_string(po_op_name(po_node_op(r->node))));
    json_object_set_new(o, "phase", json_string(phase_name(po_node_phase(r->node))));
    json_object_set_new(o, "layer", json_string(layer_name(g, r->node)));
    json_object_set_new(o, "flops", jint(r->flops));
    return o;
}

static json_t *node_json(const po_analysis *an, int id) {
    const po_node_info *r = po_analysis_node(an, id);
    json_t *o = node_ref_json(an, id);
    po_shape s = po_node_shape(r->node);
    json_t *shape = json_array(), *in = json_array();
    for (int d = 0; d < s.ndim; d++)
        json_array_append_new(shape, json_integer(s.dim[d]));
    for (int k = 0; k < po_node_n_inputs(r->node); k++)
        json_array_append_new(in, json_integer(po_node_id(po_node_input(r->node, k))));
    if (po_node_name(r->node)) json_object_set_new(o, "name", json_string(po_node_name(r->node)));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "inputs", in);
    json_object_set_new(o, "bytes_read", jint(r->bytes_read));
    json_object_set_new(o, "bytes_written", jint(r->bytes_written));
    json_object_set_new(o, "intensity", json_real(r->intensity));
    json_object_set_new(o, "param_bytes", jint((double)r->param_bytes));
    json_object_set_new(o, "output_bytes", jint((double)r->output_bytes));
    json_object_set_new(o, "arena_bytes", jint((double)r->arena_bytes));
    json_object_set_new(o, "scratch_bytes", jint((double)r->scratch_bytes));
    json_object_set_new(o, "live_until", json_integer(r->live_until));
    json_object_set_new(o, "level", json_integer(r->level));
    json_object_set_new(o, "slack_flops", jint(r->slack));
    json_object_set_new(o, "critical", json_boolean(r->critical));
    return o;
}

static void print_json(const po_model *m, const analyze_args *a, const po_analysis *an) {
    const po_graph *g = po_analysis_graph(an);
    const po_totals *t = po_analysis_totals(an);
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "config", json_loads(m->config, 0, NULL));
    json_object_set_new(o, "batch", json_integer(m->batch));
    json_object_set_new(o, "optimizer", json_string(po_optim_kind_name(a->optim.kind)));

    json_t *tot = json_object();
    json_object_set_new(tot, "flops_forward", jint(t->flops_forward));
    json_object_set_new(tot, "flops_backward", jint(t->flops_backward));
    json_object_set_new(tot, "flops_optimizer", jint(t->flops_optimizer));
    json_object_set_new(tot, "flops_per_step", jint(t->flops));
    json_object_set_new(tot, "flops_per_sample", json_real(t->flops / (double)m->batch));
    json_object_set_new(tot, "bytes_moved", jint(t->bytes_moved));
    json_object_set_new(tot, "intensity", json_real(t->bytes_moved > 0.0 ? t->flops / t->bytes_moved : 0.0));
    json_object_set_new(tot, "params", json_integer(t->params));
    json_object_set_new(tot, "param_bytes", jint((double)t->param_bytes));
    json_object_set_new(tot, "grad_bytes", jint((double)t->grad_bytes));
    json_object_set_new(tot, "optimizer_state_bytes", jint((double)t->optim_state_bytes));
    json_object_set_new(tot, "input_bytes", jint((double)t->input_bytes));
    json_object_set_new(tot, "arena_bytes", jint((double)t->arena_bytes));
    json_object_set_new(tot, "scratch_bytes", jint((double)t->scratch_bytes));
    json_object_set_new(tot, "live_peak_bytes", jint((double)t->live_peak_bytes));
    json_object_set_new(tot, "peak_memory_bytes", jint((double)t->peak_memory_bytes));
    json_object_set_new(tot, "peak_live_memory_bytes", jint((double)t->peak_live_memory_bytes));
    json_object_set_new(tot, "nodes", json_integer(t->n_nodes));
    json_object_set_new(tot, "dependencies", json_integer(t->n_deps));
    json_object_set_new(tot, "levels", json_integer(t->n_levels));
    json_object_set_new(tot, "max_level_width", json_integer(t->max_level_width));
    json_object_set_new(tot, "critical_path_flops", jint(t->critical_path_flops));
    json_object_set_new(o, "totals", tot);

    json_object_set_new(o, "peak_node", t->peak_node >= 0 ? node_ref_json(an, t->peak_node) : json_null());

    json_t *layers = json_array();
    for (int l = 0; l < po_graph_n_layers(g); l++)
        json_array_append_new(layers, layer_json(po_analysis_layer(an, l)));
    if (!layer_empty(po_analysis_layer(an, -1))) json_array_append_new(layers, layer_json(po_analysis_layer(an, -1)));
    json_object_set_new(o, "layers", layers);

    const int *path;
    double cp;
    int len = po_analysis_critical_path(an, &path, &cp);
    json_t *crit = json_object(), *cn = json_array();
    json_object_set_new(crit, "flops", jint(cp));
    for (int k = 0; k < len; k++)
        json_array_append_new(cn, node_ref_json(an, path[k]));
    json_object_set_new(crit, "nodes", cn);
    json_object_set_new(o, "critical_path", crit);

    json_t *widths = json_array();
    for (int l = 0; l < po_analysis_n_levels(an); l++) {
        const int *ids;
        json_array_append_new(widths, json_integer(po_analysis_level(an, l, &ids)));
    }
    json_object_set_new(o, "level_widths", widths);

    if (a->nodes) {
        json_t *nodes = json_array();
        for (int i = 0; i < po_graph_size(g); i++)
            json_array_append_new(nodes, node_json(an, i));
        json_object_set_new(o, "nodes", nodes);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

int cmd_analyze(int argc, char **argv) {
    analyze_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    po_model *m = NULL;
    if (po_model_build(a.model, a.batch, &m)) {
        cli_error("--model: %s", po_last_error());
        return CLI_USAGE;
    }
    po_analysis *an = NULL;
    po_status st = po_graph_backward(m->graph, m->loss);
    if (!st) st = po_graph_add_optimizer(m->graph, &a.optim);
    if (st) st = po_fail(st, "%s", po_graph_error(m->graph));
    if (!st) st = po_analysis_new(m->graph, &an);
    if (st) {
        cli_error("%s", po_last_error());
        po_model_free(m);
        return CLI_FAIL;
    }
    char title[256];
    make_title(m, &a, title, sizeof title);
    if (a.dot) rc = write_dot(an, title, a.dot);
    if (!rc && a.svg) rc = write_svg(an, title, a.svg);
    if (!rc) {
        if (a.json)
            print_json(m, &a, an);
        else
            print_report(m, &a, an);
    }
    po_analysis_free(an);
    po_model_free(m);
    return rc;
}

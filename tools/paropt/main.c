/* paropt: the command-line entry point. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "paropt/paropt.h"

static void usage(FILE *f) {
    fprintf(f,
            "paropt %s: train deep-learning models with automatic parallelism\n"
            "\n"
            "usage: paropt COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  train     train a model (paropt train --help)\n"
            "  analyze   FLOPs, memory and critical path of a training step (paropt analyze --help)\n"
            "  devices   the machine's devices, measured; power and utilization (paropt devices --help)\n"
            "  plan      how to split a training step across devices, for time or energy (paropt plan --help)\n"
            "  report    a run directory as one self-contained HTML page with charts (paropt report --help)\n"
            "  bench     the benchmark suite: baseline, plans, scaling, energy, PyTorch (paropt bench --help)\n"
            "\n"
            "options:\n"
            "  -h, --help       show this help\n"
            "  -V, --version    show the version\n",
            PO_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("paropt %s\n", PO_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "analyze") == 0) return cmd_analyze(argc - 1, argv + 1);
    if (strcmp(cmd, "devices") == 0) return cmd_devices(argc - 1, argv + 1);
    if (strcmp(cmd, "plan") == 0) return cmd_plan(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
    cli_error("unknown command \"%s\" (try paropt --help)", cmd);
    return CLI_USAGE;
}

/* paropt report: a training run directory as one self-contained HTML page. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "paropt/report.h"

static void report_usage(FILE *f) {
    fprintf(f, "usage: paropt report RUN_DIR [--out FILE.html]\n"
               "\n"
               "Writes one self-contained HTML page about a training run (paropt train --out RUN_DIR):\n"
               "the plan and why it was chosen, one training step per device (Gantt chart), utilization,\n"
               "power and energy (each figure with its source), loss, accuracy, and predicted against\n"
               "measured step time. Charts are inline SVG with inline CSS: no script, no network needed.\n"
               "Reads settings.json and metrics.jsonl, and plan.json, summary.json and trace.json when the\n"
               "run has them; what the run did not record is marked \"Not recorded\" in its section.\n"
               "\n"
               "  --out FILE     where to write the page (default RUN_DIR/report.html); replaced atomically\n"
               "  -h, --help     show this help\n");
}

int cmd_report(int argc, char **argv) {
    enum { O_OUT = 256 };
    static const struct option opts[] = {
        {"out", required_argument, 0, O_OUT}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_OUT: out = optarg; break;
        case 'h': report_usage(stdout); return CLI_OK;
        case ':':
        default: return cli_bad_option("report", c, argv);
        }
    }
    if (optind >= argc) {
        cli_error("report needs a run directory: paropt report RUN_DIR (see paropt report --help)");
        return CLI_USAGE;
    }
    if (argc - optind > 1) {
        cli_error("unexpected argument \"%s\" (see paropt report --help)", argv[optind + 1]);
        return CLI_USAGE;
    }
    const char *dir = argv[optind];
    if (out && !cli_check_writable("--out", out)) return CLI_USAGE;
    if (po_report_write_html(dir, out)) {
        cli_error("%s", po_last_error());
        return CLI_FAIL;
    }
    if (out)
        printf("wrote %s\n", out);
    else
        printf("wrote %s/report.html\n", dir);
    return CLI_OK;
}

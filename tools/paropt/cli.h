/* Shared pieces of the paropt command line: strict value parsing and error reporting. */
#ifndef PO_CLI_H
#define PO_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/optim.h"

/* Exit codes: 0 success, 1 the work failed (bad file, bad data), 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "paropt: error: ..." as one line on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse the whole of `text` or print "paropt: error: --flag: ..." and return false. */
bool cli_parse_i64(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out);
bool cli_parse_u64(const char *flag, const char *text, uint64_t *out);
/* A finite float in [min, max]. */
bool cli_parse_float(const char *flag, const char *text, double min, double max, float *out);

/* Optimizer settings from the optimizer-related flags (NULL when not given): --optimizer
 * sgd|adam|adamw (default adam), --lr, --weight-decay, --momentum (SGD only). Prints the
 * problem and returns false on a bad value. */
bool cli_optim_opts(const char *optimizer, const char *lr, const char *weight_decay, const char *momentum,
                    po_optim_opts *out);

/* Fails (printing why) when the file at path could not be created: its directory is missing or
 * not writable. Checked before long work starts so a typo does not cost a training run. */
bool cli_check_writable(const char *flag, const char *path);

/* Subcommands: argc/argv start at the subcommand name. */
/* The error for getopt_long's ':' (a missing value) or '?' (an unknown option) of subcommand
 * `cmd` ("train", ...), naming the offending argument and the subcommand's --help; CLI_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

int cmd_train(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif

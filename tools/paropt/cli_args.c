#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

void cli_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "paropt: error: %s\n", msg);
}

bool cli_parse_i64(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno) {
        cli_error("%s: \"%s\" is not an integer", flag, text);
        return false;
    }
    if (v < min) {
        cli_error("%s: must be at least %lld, got %lld", flag, (long long)min, v);
        return false;
    }
    if (v > max) {
        cli_error("%s: must be at most %lld, got %lld", flag, (long long)max, v);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_u64(const char *flag, const char *text, uint64_t *out) {
    char *end;
    errno = 0;
    if (*text == '-') {
        cli_error("%s: \"%s\" must not be negative", flag, text);
        return false;
    }
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end || errno) {
        cli_error("%s: \"%s\" is not a non-negative integer", flag, text);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *flag, const char *text, double min, double max, float *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v)) {
        cli_error("%s: \"%s\" is not a finite number", flag, text);
        return false;
    }
    if (v < min || v > max) {
        cli_error("%s: %g is outside [%g, %g]", flag, v, min, max);
        return false;
    }
    *out = (float)v;
    return true;
}

bool cli_check_writable(const char *flag, const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!*path || (slash && slash[1] == 0)) {
        cli_error("%s: \"%s\" is not a file name", flag, path);
        return false;
    }
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("%s: directory \"%s\" does not exist", flag, dir);
        return false;
    }
    if (access(dir, W_OK) != 0) {
        cli_error("%s: directory \"%s\" is not writable", flag, dir);
        return false;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_error("%s: \"%s\" is a directory", flag, path);
        return false;
    }
    return true;
}

bool cli_optim_opts(const char *optimizer, const char *lr, const char *weight_decay, const char *momentum,
                    po_optim_opts *out) {
    po_optim_kind kind;
    if (po_optim_kind_parse(optimizer ? optimizer : "adam", &kind)) {
        cli_error("--optimizer: %s", po_last_error());
        return false;
    }
    *out = po_optim_opts_default(kind);
    if (lr && !cli_parse_float("--lr", lr, 0.0, 1e30, &out->lr)) return false;
    if (!(out->lr > 0.0f)) {
        cli_error("--lr: must be positive, got %s", lr);
        return false;
    }
    if (weight_decay && !cli_parse_float("--weight-decay", weight_decay, 0.0, 1e30, &out->weight_decay)) return false;
    if (momentum) {
        if (kind != PO_OPTIM_SGD) {
            cli_error("--momentum applies to --optimizer sgd only");
            return false;
        }
        if (!cli_parse_float("--momentum", momentum, 0.0, 1e30, &out->momentum)) return false;
    }
    return true;
}

int cli_bad_option(const char *cmd, int c, char **argv) {
    if (c == ':')
        cli_error("%s needs a value (see paropt %s --help)", argv[optind - 1], cmd);
    else
        cli_error("unknown option \"%s\" (see paropt %s --help)", argv[optind - 1], cmd);
    return CLI_USAGE;
}

/* Where a value sits in JSON text. jansson reports line and column for syntax errors only; the
 * plan and cluster readers find the position of a semantically wrong value with this small
 * scanner, so that every error in those files names its line and column. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/printable.h"
#include "plan/plan_internal.h"

typedef struct {
    const char *s;
    int line, col;
    const char *const *path;
    int depth;
    int best_depth, best_line, best_col;
} scan;

static void adv(scan *sc) {
    if (!*sc->s) return;
    if (*sc->s == '\n') {
        sc->line++;
        sc->col = 1;
    } else if ((*sc->s & 0xC0) != 0x80) {
        sc->col++; /* columns count characters, as jansson's do */
    }
    sc->s++;
}

static void ws(scan *sc) {
    while (*sc->s == ' ' || *sc->s == '\t' || *sc->s == '\n' || *sc->s == '\r')
        adv(sc);
}

/* Reads a string into buf (truncated, escapes kept as the escaped character). */
static int string(scan *sc, char *buf, size_t size) {
    if (*sc->s != '"') return -1;
    adv(sc);
    size_t n = 0;
    while (*sc->s && *sc->s != '"') {
        if (*sc->s == '\\') {
            adv(sc);
            if (!*sc->s) return -1;
        }
        if (buf && n + 1 < size) buf[n++] = *sc->s;
        adv(sc);
    }
    if (*sc->s != '"') return -1;
    adv(sc);
    if (buf) buf[n < size ? n : size - 1] = 0;
    return 0;
}

/* `level`: how many path elements matched to reach this value (-1: off the path). */
static int value(scan *sc, int level) {
    ws(sc);
    if (level >= 0 && level > sc->best_depth) {
        sc->best_depth = level;
        sc->best_line = sc->line;
        sc->best_col = sc->col;
    }
    bool on = level >= 0 && level < sc->depth;
    if (*sc->s == '{') {
        adv(sc);
        ws(sc);
        if (*sc->s == '}') {
            adv(sc);
            return 0;
        }
        for (;;) {
            char key[256];
            ws(sc);
            if (string(sc, key, sizeof key)) return -1;
            bool match = on && strcmp(key, sc->path[level]) == 0;
            ws(sc);
            if (*sc->s != ':') return -1;
            adv(sc);
            if (value(sc, match ? level + 1 : -1)) return -1;
            ws(sc);
            if (*sc->s == ',') {
                adv(sc);
                continue;
            }
            if (*sc->s == '}') {
                adv(sc);
                return 0;
            }
            return -1;
        }
    }
    if (*sc->s == '[') {
        adv(sc);
        ws(sc);
        if (*sc->s == ']') {
            adv(sc);
            return 0;
        }
        for (int idx = 0;; idx++) {
            char want[24];
            snprintf(want, sizeof want, "#%d", idx);
            bool match = on && strcmp(want, sc->path[level]) == 0;
            if (value(sc, match ? level + 1 : -1)) return -1;
            ws(sc);
            if (*sc->s == ',') {
                adv(sc);
                continue;
            }
            if (*sc->s == ']') {
                adv(sc);
                return 0;
            }
            return -1;
        }
    }
    if (*sc->s == '"') return string(sc, NULL, 0);
    if (!*sc->s) return -1;
    while (*sc->s && !strchr(",}] \t\r\n", *sc->s))
        adv(sc);
    return 0;
}

void po__json_locate(const char *text, const char *const *path, int depth, int *line, int *col) {
    scan sc = {text, 1, 1, path, depth, -1, 0, 0};
    value(&sc, 0);
    *line = sc.best_line;
    *col = sc.best_col;
}

po_status po__json_parse_fail(const char *origin, const json_error_t *err) {
    char text[4 * sizeof err->text + 1];
    po__printable(err->text, text, sizeof text, sizeof text);
    return po_fail(PO_ERR_FORMAT, "%s:%d:%d: %s", origin, err->line, err->column, text);
}

po_status po__json_failv(const char *text, const char *origin, const char *const *path, int depth, const char *fmt,
                         va_list ap) {
    int line = 0, col = 0;
    po__json_locate(text, path, depth, &line, &col);
    char where[160] = "", msg[768];
    size_t used = 0;
    for (int i = 0; i < depth && used < sizeof where; i++) {
        if (path[i][0] == '#')
            used += (size_t)snprintf(where + used, sizeof where - used, "[%s]", path[i] + 1);
        else
            used += (size_t)snprintf(where + used, sizeof where - used, "%s%s", i ? "." : "", path[i]);
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    char where_1[4 * sizeof where + 1], msg_1[4 * sizeof msg + 1];
    po__printable(where, where_1, sizeof where_1, sizeof where_1);
    po__printable(msg, msg_1, sizeof msg_1, sizeof msg_1);
    return po_fail(PO_ERR_FORMAT, "%s:%d:%d: %s%s%s", origin, line, col, where_1, where_1[0] ? ": " : "", msg_1);
}

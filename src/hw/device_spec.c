/* Device lists: "auto", "cpu:0,cpu:2-3,cuda:1", options "cpu:1:slowdown=2" (syntax in hw.h). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw_internal.h"

/* --- option registry ------------------------------------------------------------------------- */

typedef struct {
    char key[32];
    char help[96];
} registered_opt;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static registered_opt *reg;
static int n_reg, cap_reg;

po_status po_device_register_option(const char *key, const char *help) {
    size_t len = key ? strlen(key) : 0;
    if (len == 0 || len >= sizeof reg->key)
        return po_fail(PO_ERR_INVALID_ARG, "device option key \"%s\" must have 1 to %zu characters", key ? key : "",
                       sizeof reg->key - 1);
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '_')
            return po_fail(PO_ERR_INVALID_ARG, "device option key \"%s\": only letters, digits and '_'", key);
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < n_reg; i++)
        if (strcmp(reg[i].key, key) == 0) {
            pthread_mutex_unlock(&reg_lock);
            return PO_OK;
        }
    if (n_reg == cap_reg) {
        int cap = cap_reg ? 2 * cap_reg : 8;
        registered_opt *grown = realloc(reg, (size_t)cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&reg_lock);
            return po_fail(PO_ERR_NO_MEMORY, "out of memory registering device option \"%s\"", key);
        }
        reg = grown;
        cap_reg = cap;
    }
    snprintf(reg[n_reg].key, sizeof reg[n_reg].key, "%s", key);
    snprintf(reg[n_reg].help, sizeof reg[n_reg].help, "%s", help ? help : "");
    n_reg++;
    pthread_mutex_unlock(&reg_lock);
    return PO_OK;
}

static bool option_known(const char *key, size_t len) {
    bool known = false;
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < n_reg && !known; i++)
        known = strlen(reg[i].key) == len && memcmp(reg[i].key, key, len) == 0;
    pthread_mutex_unlock(&reg_lock);
    return known;
}

/* "slowdown (run N times slower), ..." or "none are registered". */
static void known_options(char *buf, size_t size) {
    pthread_mutex_lock(&reg_lock);
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n_reg && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s%s%s%s", i ? ", " : "", reg[i].key,
                                 reg[i].help[0] ? " (" : "", reg[i].help, reg[i].help[0] ? ")" : "");
    if (n_reg == 0) snprintf(buf, size, "none are registered");
    pthread_mutex_unlock(&reg_lock);
}

const char *po_device_opt_get(const po_device *d, const char *key) {
    for (int i = 0; i < d->n_opts; i++)
        if (strcmp(d->opt[i].key, key) == 0) return d->opt[i].value;
    return NULL;
}

/* --- parsing --------------------------------------------------------------------------------- */

/* A decimal number without sign: digits only, below 1e6. */
static bool parse_index(const char *s, size_t len, int *out) {
    if (len == 0 || len > 6) return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static void cpu_id(int first, int n, char *buf, size_t size) {
    if (n == 1)
        snprintf(buf, size, "cpu:%d", first);
    else
        snprintf(buf, size, "cpu:%d-%d", first, first + n - 1);
}

static po_status bad(const char *item, const char *why) {
    return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": %s", item, why);
}

/* Parses ":key=value" options (opts points at the first ':' or the end). */
static po_status parse_options(const char *item, const char *opts, po_device *d) {
    while (*opts) {
        const char *key = opts + 1, *end = strchr(key, ':');
        if (!end) end = key + strlen(key);
        const char *eq = memchr(key, '=', (size_t)(end - key));
        if (!eq || eq == key || eq + 1 == end)
            return bad(item, "malformed option (expected DEVICE:key=value, e.g. cpu:1:slowdown=2)");
        size_t klen = (size_t)(eq - key), vlen = (size_t)(end - eq - 1);
        if (!option_known(key, klen)) {
            char known[512];
            known_options(known, sizeof known);
            return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": unknown option \"%.*s\" (known: %s)", item, (int)klen,
                           key, known);
        }
        for (int i = 0; i < d->n_opts; i++)
            if (strlen(d->opt[i].key) == klen && memcmp(d->opt[i].key, key, klen) == 0)
                return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": option \"%.*s\" given twice", item, (int)klen, key);
        if (d->n_opts == PO_DEVICE_MAX_OPTS)
            return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": more than %d options", item, PO_DEVICE_MAX_OPTS);
        if (vlen >= sizeof d->opt[0].value)
            return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": option value longer than %zu characters", item,
                           sizeof d->opt[0].value - 1);
        po_device_opt *o = &d->opt[d->n_opts++];
        snprintf(o->key, sizeof o->key, "%.*s", (int)klen, key);
        snprintf(o->value, sizeof o->value, "%.*s", (int)vlen, eq + 1);
        opts = end;
    }
    return PO_OK;
}

static void fill_cpu(const po_machine *m, int first, int n, po_device *d) {
    d->kind = PO_DEVICE_CPU;
    d->first_core = first;
    d->n_cores = n;
    d->gpu = -1;
    cpu_id(first, n, d->id, sizeof d->id);
    snprintf(d->name, sizeof d->name, "%s", m->cpu.model);
    d->memory_bytes = m->cpu.memory_bytes;
}

static void fill_gpu(const po_machine *m, int i, po_device *d) {
    d->kind = PO_DEVICE_CUDA;
    d->gpu = i;
    snprintf(d->id, sizeof d->id, "cuda:%d", i);
    snprintf(d->name, sizeof d->name, "%s", m->gpus[i].name);
    d->memory_bytes = m->gpus[i].memory_bytes;
}

/* The allowed cores as ranges ("1", "0-3,8"), cut short with "..." when they do not fit. */
static void allowed_cores_text(const po_machine *m, char *out, size_t size) {
    size_t len = 0;
    out[0] = 0;
    for (int c = 0; c < m->cpu.cores; c++) {
        if (!m->cores[c].allowed || (c > 0 && m->cores[c - 1].allowed)) continue;
        int last = c;
        while (last + 1 < m->cpu.cores && m->cores[last + 1].allowed)
            last++;
        int n = last > c ? snprintf(out + len, size - len, "%s%d-%d", len ? "," : "", c, last)
                         : snprintf(out + len, size - len, "%s%d", len ? "," : "", c);
        if (n < 0 || (size_t)n >= size - len) {
            snprintf(out + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
            return;
        }
        len += (size_t)n;
    }
}

static po_status parse_item(const po_machine *m, const char *item, po_device *d) {
    memset(d, 0, sizeof *d);
    const char *colon = strchr(item, ':');
    if (!colon) return bad(item, "expected cpu:N, cpu:N-M, cuda:N or auto");
    size_t kind_len = (size_t)(colon - item);
    const char *id = colon + 1, *opts = strchr(id, ':');
    if (!opts) opts = id + strlen(id);
    size_t id_len = (size_t)(opts - id);
    if (kind_len == 3 && memcmp(item, "cpu", 3) == 0) {
        const char *dash = memchr(id, '-', id_len);
        int first, last;
        if (!parse_index(id, dash ? (size_t)(dash - id) : id_len, &first) ||
            (dash && !parse_index(dash + 1, (size_t)(opts - dash - 1), &last)))
            return bad(item, "malformed core range (expected cpu:N or cpu:N-M, N and M core numbers)");
        if (!dash) last = first;
        if (last < first) {
            char msg[96];
            snprintf(msg, sizeof msg, "the range is reversed (cpu:%d-%d)", last, first);
            return bad(item, msg);
        }
        if (last >= m->cpu.cores)
            return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": no such core %d (this machine has cores 0-%d)", item,
                           last, m->cpu.cores - 1);
        for (int c = first; c <= last; c++)
            if (!m->cores[c].allowed) {
                char allowed[96];
                allowed_cores_text(m, allowed, sizeof allowed);
                return po_fail(PO_ERR_INVALID_ARG,
                               "device \"%s\": core %d is outside this process's CPU affinity (taskset or a cgroup "
                               "allows cores %s)",
                               item, c, allowed);
            }
        fill_cpu(m, first, last - first + 1, d);
    } else if (kind_len == 4 && memcmp(item, "cuda", 4) == 0) {
        int i;
        if (!parse_index(id, id_len, &i)) return bad(item, "malformed GPU index (expected cuda:N)");
        if (i >= m->n_gpus) {
            if (m->n_gpus == 0)
                return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": no such GPU (none present; CUDA %s)", item,
                               m->cuda_status);
            return po_fail(PO_ERR_INVALID_ARG, "device \"%s\": no such GPU (%d present: cuda:0-%d)", item, m->n_gpus,
                           m->n_gpus - 1);
        }
        fill_gpu(m, i, d);
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown device kind \"%.*s\" (expected cpu, cuda or auto)", (int)kind_len, item);
        return bad(item, msg);
    }
    return parse_options(item, opts, d);
}

/* Core groups must not share a core, GPUs must not repeat: a worker owns its device. */
static po_status check_disjoint(const po_device_list *l) {
    for (int i = 0; i < l->n; i++)
        for (int j = 0; j < i; j++) {
            const po_device *a = &l->dev[j], *b = &l->dev[i];
            if (a->kind != b->kind) continue;
            if (a->kind == PO_DEVICE_CUDA && a->gpu == b->gpu)
                return po_fail(PO_ERR_INVALID_ARG, "device \"%s\" is listed twice", b->id);
            if (a->kind == PO_DEVICE_CPU) {
                int lo = a->first_core > b->first_core ? a->first_core : b->first_core;
                int hi_a = a->first_core + a->n_cores, hi_b = b->first_core + b->n_cores;
                if (lo < (hi_a < hi_b ? hi_a : hi_b))
                    return po_fail(PO_ERR_INVALID_ARG, "device \"%s\" overlaps \"%s\" (core %d in both)", b->id, a->id,
                                   lo);
            }
        }
    return PO_OK;
}

static po_status parse_list(const po_machine *m, const char *text, bool auto_gpus, po_device_list *out) {
    memset(out, 0, sizeof *out);
    if (!text) text = "";
    size_t len = strlen(text);
    if (strspn(text, " \t\n") == len)
        return po_fail(PO_ERR_INVALID_ARG,
                       "empty device list (expected cpu:N, cpu:N-M, cuda:N, a list of those, or auto)");
    if (len > 4096) return po_fail(PO_ERR_INVALID_ARG, "device list longer than 4096 characters");
    char *copy = malloc(len + 1);
    /* Items can be no more than commas + 1; auto adds cores + GPUs. */
    int cap = m->cpu.cores + m->n_gpus + 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    po_device_list l = {0, calloc((size_t)cap, sizeof(po_device))};
    if (!copy || !l.dev) {
        free(copy);
        free(l.dev);
        return po_fail(PO_ERR_NO_MEMORY, "out of memory");
    }
    memcpy(copy, text, len + 1);
    po_status st = PO_OK;
    char *save = NULL;
    /* strtok would skip empty items ("cpu:0,,cpu:1"); walk the commas by hand instead. */
    for (char *item = copy; item && !st;) {
        char *comma = strchr(item, ',');
        if (comma) *comma = 0;
        save = comma ? comma + 1 : NULL;
        while (isspace((unsigned char)*item))
            item++;
        size_t n = strlen(item);
        while (n && isspace((unsigned char)item[n - 1]))
            item[--n] = 0;
        if (n == 0) {
            st = po_fail(PO_ERR_INVALID_ARG, "device list \"%s\": empty item (expected cpu:N, cpu:N-M, cuda:N or auto)",
                         text);
        } else if (strcmp(item, "auto") == 0) {
            if (cap != m->cpu.cores + m->n_gpus + 1) {
                st = po_fail(PO_ERR_INVALID_ARG,
                             "device list \"%s\": auto means every device and cannot be combined with others", text);
                break;
            }
            for (int c = 0; c < m->cpu.cores; c++)
                if (m->cores[c].allowed) fill_cpu(m, c, 1, &l.dev[l.n++]);
            for (int g = 0; auto_gpus && g < m->n_gpus; g++)
                fill_gpu(m, g, &l.dev[l.n++]);
        } else {
            st = parse_item(m, item, &l.dev[l.n]);
            if (!st) l.n++;
        }
        item = save;
    }
    if (!st) st = check_disjoint(&l);
    free(copy);
    if (st) {
        free(l.dev);
        return st;
    }
    *out = l;
    return PO_OK;
}

po_status po_devices_parse(const po_machine *m, const char *text, po_device_list *out) {
    return parse_list(m, text, true, out);
}

po_status po_devices_parse_trainable(const po_machine *m, const char *text, po_device_list *out) {
    return parse_list(m, text, false, out);
}

void po_device_list_free(po_device_list *l) {
    if (!l) return;
    free(l->dev);
    l->dev = NULL;
    l->n = 0;
}

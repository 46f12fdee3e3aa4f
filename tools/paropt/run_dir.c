#include "run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"

#define KEEP_CHECKPOINTS 2

static po_status write_atomic(const char *path, const char *text) {
    po_atomic_file af;
    po_status st = po_atomic_begin(path, &af);
    if (st) return st;
    st = po_atomic_write(&af, text, strlen(text));
    if (st) {
        po_atomic_abort(&af);
        return st;
    }
    return po_atomic_commit(&af);
}

static po_status make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat s;
        if (stat(path, &s) == 0 && S_ISDIR(s.st_mode)) return PO_OK;
        return po_fail(PO_ERR_IO, "%s exists and is not a directory", path);
    }
    return po_fail(PO_ERR_IO, "cannot create directory %s: %s", path, strerror(errno));
}

static void join(char *out, size_t size, const char *dir, const char *name) { snprintf(out, size, "%s/%s", dir, name); }

po_status run_dir_create(const char *dir, const char *settings_json) {
    char path[4096];
    po_status st = make_dir(dir);
    if (st) return st;
    join(path, sizeof path, dir, "settings.json");
    if (access(path, F_OK) == 0)
        return po_fail(PO_ERR_INVALID_ARG,
                       "%s already holds a run; continue it with --resume %s or choose another --out", dir, dir);
    join(path, sizeof path, dir, "checkpoints");
    if ((st = make_dir(path))) return st;
    join(path, sizeof path, dir, "settings.json");
    return write_atomic(path, settings_json);
}

po_status run_dir_read_settings(const char *dir, char **json) {
    char path[4096];
    join(path, sizeof path, dir, "settings.json");
    FILE *f = fopen(path, "rb");
    if (!f) return po_fail(PO_ERR_NOT_FOUND, "%s is not a run directory (no settings.json)", dir);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len <= 1) {
            char *grown = cap < (1u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return po_fail(PO_ERR_FORMAT, "%s: settings.json is too large", dir);
    buf[len] = 0;
    *json = buf;
    return PO_OK;
}

static int newest_first(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Steps of the checkpoints in dir/checkpoints, newest first; returns the count (at most max). */
static int list_checkpoints(const char *dir, int64_t *steps, int max) {
    char path[4096];
    join(path, sizeof path, dir, "checkpoints");
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        long long step;
        int end = 0;
        /* Only complete checkpoint names; the atomic writer's temporaries start with a dot. */
        if (sscanf(e->d_name, "step-%lld.safetensors%n", &step, &end) == 1 && end > 0 && e->d_name[end] == 0 &&
            step >= 0)
            steps[n++] = step;
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof *steps, newest_first);
    return n;
}

static void checkpoint_path(char *out, size_t size, const char *dir, int64_t step) {
    snprintf(out, size, "%s/checkpoints/step-%09" PRId64 ".safetensors", dir, step);
}

po_status run_dir_checkpoint(const char *dir, po_params *p, const po_train_position *pos, const char *model_spec) {
    char path[4096];
    checkpoint_path(path, sizeof path, dir, pos->step);
    const char *keys[] = {"model", "paropt"}, *vals[] = {model_spec, PO_VERSION};
    po_status st = po_checkpoint_save(path, p, pos, 2, keys, vals);
    if (st) return st;
    /* Only once the new checkpoint is safely on disk do older ones go. */
    int64_t steps[1024];
    int n = list_checkpoints(dir, steps, 1024);
    for (int i = KEEP_CHECKPOINTS; i < n; i++) {
        checkpoint_path(path, sizeof path, dir, steps[i]);
        unlink(path);
    }
    return PO_OK;
}

po_status run_dir_resume(const char *dir, po_params *p, po_train_position *pos, char *path_used, size_t path_size) {
    int64_t steps[1024];
    int n = list_checkpoints(dir, steps, 1024);
    if (n == 0) return po_fail(PO_ERR_NOT_FOUND, "%s has no checkpoint to resume from", dir);
    po_status st = PO_OK;
    char first_error[512] = "";
    for (int i = 0; i < n; i++) {
        checkpoint_path(path_used, path_size, dir, steps[i]);
        st = po_checkpoint_load(path_used, p, pos);
        if (!st) return PO_OK;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", po_last_error());
    }
    return po_fail(st, "no readable checkpoint in %s (%s)", dir, first_error);
}

po_status run_dir_open_metrics(const char *dir, int64_t keep_until_step, FILE **out) {
    char path[4096];
    join(path, sizeof path, dir, "metrics.jsonl");
    if (keep_until_step >= 0) {
        /* Rewrite (atomically) the records up to the checkpoint: a killed run may have logged
         * steps it will now redo, and its last line may be cut short. */
        FILE *old = fopen(path, "rb");
        po_atomic_file af;
        po_status st = po_atomic_begin(path, &af);
        if (st) {
            if (old) fclose(old);
            return st;
        }
        char line[8192];
        while (old && fgets(line, sizeof line, old)) {
            size_t len = strlen(line);
            if (len == 0 || line[len - 1] != '\n') break; /* a partial last line */
            json_t *rec = json_loads(line, 0, NULL);
            json_t *step = rec ? json_object_get(rec, "step") : NULL;
            bool keep = json_is_integer(step) && json_integer_value(step) <= keep_until_step;
            json_decref(rec);
            if (keep && (st = po_atomic_write(&af, line, len))) break;
        }
        if (old) fclose(old);
        if (st) {
            po_atomic_abort(&af);
            return st;
        }
        if ((st = po_atomic_commit(&af))) return st;
    }
    *out = fopen(path, "ab");
    if (!*out) return po_fail(PO_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    return PO_OK;
}

void run_dir_log(FILE *metrics, const char *json_object) {
    if (!metrics) return;
    fprintf(metrics, "%s\n", json_object);
    fflush(metrics);
}

po_status run_dir_write(const char *dir, const char *name, const char *text) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return po_fail(PO_ERR_INVALID_ARG, "%s: path too long", dir);
    po_atomic_file af;
    po_status st = po_atomic_begin(path, &af);
    if (st) return st;
    st = po_atomic_write(&af, text, strlen(text));
    if (!st) st = po_atomic_write(&af, "\n", 1);
    if (st) {
        po_atomic_abort(&af);
        return st;
    }
    return po_atomic_commit(&af);
}

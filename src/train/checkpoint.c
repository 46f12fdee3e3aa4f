/* Checkpoints: parameters, optimizer state and the training position in one safetensors file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/io.h"
#include "paropt/train.h"

#define POS_KEYS 4
static const char *const pos_keys[POS_KEYS] = {"step", "epoch", "batch_in_epoch", "data_seed"};

po_status po_checkpoint_save(const char *path, po_params *p, const po_train_position *pos, int n_meta,
                             const char *const *meta_keys, const char *const *meta_values) {
    int n = po_params_count(p), slots = po_params_state_slots(p), total = n * (1 + slots);
    const char **names = calloc((size_t)total + 1, sizeof *names);
    char **owned = calloc((size_t)total + 1, sizeof *owned);
    po_tensor **ts = calloc((size_t)total + 1, sizeof *ts);
    const char **keys = calloc((size_t)(POS_KEYS + n_meta), sizeof *keys);
    const char **vals = calloc((size_t)(POS_KEYS + n_meta), sizeof *vals);
    char pos_text[POS_KEYS][32];
    po_status st = names && owned && ts && keys && vals ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory");
    int k = 0;
    for (int i = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        names[k] = pi->name;
        st = po_tensor_wrap(PO_F32, pi->shape, po_params_values(p) + pi->offset, &ts[k++]);
        for (int s = 0; s < slots && !st; s++, k++) {
            size_t len = strlen(pi->name) + 32;
            owned[k] = malloc(len);
            if (!owned[k]) {
                st = po_fail(PO_ERR_NO_MEMORY, "out of memory");
                break;
            }
            snprintf(owned[k], len, "optim.%d.%s", s, pi->name);
            names[k] = owned[k];
            float *state = po_params_state(p) + (size_t)slots * pi->offset + (size_t)s * (size_t)pi->numel;
            st = po_tensor_wrap(PO_F32, pi->shape, state, &ts[k]);
        }
    }
    if (!st) {
        snprintf(pos_text[0], 32, "%" PRId64, pos->step);
        snprintf(pos_text[1], 32, "%" PRId64, pos->epoch);
        snprintf(pos_text[2], 32, "%" PRId64, pos->batch_in_epoch);
        snprintf(pos_text[3], 32, "%" PRIu64, pos->data_seed);
        for (int i = 0; i < POS_KEYS; i++) {
            keys[i] = pos_keys[i];
            vals[i] = pos_text[i];
        }
        for (int i = 0; i < n_meta; i++) {
            keys[POS_KEYS + i] = meta_keys[i];
            vals[POS_KEYS + i] = meta_values[i];
        }
        st = po_st_write(path, k, names, (const po_tensor *const *)ts, POS_KEYS + n_meta, keys, vals);
    }
    for (int i = 0; i < total && ts; i++)
        po_tensor_free(ts[i]);
    for (int i = 0; i < total && owned; i++)
        free(owned[i]);
    free(names);
    free(owned);
    free(ts);
    free(keys);
    free(vals);
    return st;
}

static po_status parse_u64(const char *path, const po_st_file *f, const char *key, uint64_t *out) {
    const char *v = po_st_meta(f, key);
    char *end;
    errno = 0;
    if (!v || !*v || *v == '-') return po_fail(PO_ERR_FORMAT, "%s: not a checkpoint (no \"%s\")", path, key);
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || errno) return po_fail(PO_ERR_FORMAT, "%s: bad \"%s\" value \"%s\"", path, key, v);
    *out = x;
    return PO_OK;
}

po_status po_checkpoint_load(const char *path, po_params *p, po_train_position *pos) {
    po_st_file *f;
    po_status st = po_st_read(path, &f);
    if (st) return st;
    uint64_t v[POS_KEYS];
    for (int i = 0; i < POS_KEYS && !st; i++)
        st = parse_u64(path, f, pos_keys[i], &v[i]);
    int n = po_params_count(p), slots = po_params_state_slots(p);
    /* Validate every tensor before copying any. */
    for (int i = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        for (int s = -1; s < slots && !st; s++) {
            char name[600];
            if (s < 0)
                snprintf(name, sizeof name, "%s", pi->name);
            else
                snprintf(name, sizeof name, "optim.%d.%s", s, pi->name);
            int k = po_st_find(f, name);
            po_shape sh = k >= 0 ? po_st_shape(f, k) : pi->shape;
            if (k < 0)
                st = po_fail(PO_ERR_FORMAT, "%s: checkpoint lacks \"%s\"", path, name);
            else if (po_st_dtype(f, k) != PO_F32 || !po_shape_equal(&sh, &pi->shape))
                st = po_fail(PO_ERR_SHAPE, "%s: \"%s\" does not match this model", path, name);
        }
    }
    po_tensor **ts = st ? NULL : calloc((size_t)(n * (1 + slots)) + 1, sizeof *ts);
    if (!st && !ts) st = po_fail(PO_ERR_NO_MEMORY, "out of memory loading %s", path);
    for (int i = 0, k = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        for (int s = -1; s < slots && !st; s++, k++) {
            char name[600];
            if (s < 0)
                snprintf(name, sizeof name, "%s", pi->name);
            else
                snprintf(name, sizeof name, "optim.%d.%s", s, pi->name);
            st = po_st_get(f, name, &ts[k]);
        }
    }
    for (int i = 0, k = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        size_t bytes = (size_t)pi->numel * sizeof(float);
        memcpy(po_params_values(p) + pi->offset, ts[k++]->data, bytes);
        for (int s = 0; s < slots; s++, k++)
            memcpy(po_params_state(p) + (size_t)slots * pi->offset + (size_t)s * (size_t)pi->numel, ts[k]->data, bytes);
    }
    if (!st) *pos = (po_train_position){(int64_t)v[0], (int64_t)v[1], (int64_t)v[2], v[3]};
    for (int i = 0; ts && i < n * (1 + slots); i++)
        po_tensor_free(ts[i]);
    free(ts);
    po_st_free(f);
    return st;
}

/* Loading and saving parameters by PyTorch state_dict name through safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paropt/io.h"
#include "paropt/params.h"

/* Namespaces a dataset or reference file may carry next to parameters. */
static bool is_data_name(const char *name) {
    static const char *const prefixes[] = {"input.", "expect.", "grad.", "adam1.", "optim."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

po_status po_params_load(po_params *p, const char *path) {
    po_st_file *f;
    po_status st = po_st_read(path, &f);
    if (st) return st;
    int n = po_params_count(p);
    /* Validate everything before touching a value, so a bad file changes nothing. */
    for (int i = 0; i < po_st_count(f) && !st; i++) {
        const char *name = po_st_name(f, i);
        if (!is_data_name(name) && po_params_find(p, name) < 0)
            st = po_fail(PO_ERR_NOT_FOUND, "%s: tensor \"%s\" is not a parameter of this model", path, name);
    }
    for (int i = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        int k = po_st_find(f, pi->name);
        if (k < 0) {
            st = po_fail(PO_ERR_NOT_FOUND, "%s: parameter \"%s\" is missing", path, pi->name);
            break;
        }
        po_shape fs = po_st_shape(f, k);
        if (po_st_dtype(f, k) != PO_F32) {
            st = po_fail(PO_ERR_DTYPE, "%s: parameter \"%s\" is %s, expected F32", path, pi->name,
                         po_dtype_name(po_st_dtype(f, k)));
        } else if (!po_shape_equal(&fs, &pi->shape)) {
            char a[96], b[96];
            st = po_fail(PO_ERR_SHAPE, "%s: parameter \"%s\" has shape %s, the model expects %s", path, pi->name,
                         po_shape_format(&fs, a, sizeof a), po_shape_format(&pi->shape, b, sizeof b));
        }
    }
    /* Read every tensor before writing any value: an allocation failure midway must not
     * leave the parameters half loaded. */
    po_tensor **ts = st ? NULL : calloc((size_t)(n ? n : 1), sizeof *ts);
    if (!st && !ts) st = po_fail(PO_ERR_NO_MEMORY, "out of memory loading %s", path);
    for (int i = 0; i < n && !st; i++)
        st = po_st_get(f, po_params_info(p, i)->name, &ts[i]);
    for (int i = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        memcpy(po_params_values(p) + pi->offset, ts[i]->data, (size_t)pi->numel * sizeof(float));
    }
    for (int i = 0; i < n && ts; i++)
        po_tensor_free(ts[i]);
    free(ts);
    po_st_free(f);
    return st;
}

po_status po_params_save(const po_params *p, const char *path, int n_meta, const char *const *meta_keys,
                         const char *const *meta_values) {
    int n = po_params_count(p);
    const char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    po_tensor **ts = calloc((size_t)(n ? n : 1), sizeof *ts);
    po_status st = (names && ts) ? PO_OK : po_fail(PO_ERR_NO_MEMORY, "out of memory saving parameters");
    float *values = po_params_values((po_params *)p);
    for (int i = 0; i < n && !st; i++) {
        const po_param_info *pi = po_params_info(p, i);
        names[i] = pi->name;
        st = po_tensor_wrap(PO_F32, pi->shape, values + pi->offset, &ts[i]);
    }
    if (!st) st = po_st_write(path, n, names, (const po_tensor *const *)ts, n_meta, meta_keys, meta_values);
    for (int i = 0; i < n && ts; i++)
        po_tensor_free(ts[i]);
    free(ts);
    free(names);
    return st;
}

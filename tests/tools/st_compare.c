/* Compares a parameter file written by `paropt train --save` with a PyTorch reference file,
 * using the tolerances of tests/data/reference/README.md. Exit 0 when every parameter agrees.
 *
 *   st_compare adam OUT REF        OUT[name] against REF["adam1." name]: max |a - b| <= 5e-5
 *                                  where |REF["grad." name]| >= 1e-7; elsewhere the parameter
 *                                  moved by at most lr (1e-3) from REF[name].
 *   st_compare sgd-grad OUT REF LR (REF[name] - OUT[name]) / LR against REF["grad." name] by
 *                                  the reference error measure, <= 1e-3.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po_test.h"

static po_tensor *get(const po_st_file *f, const char *prefix, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    po_tensor *t = NULL;
    if (po_st_get(f, full, &t)) {
        fprintf(stderr, "st_compare: %s\n", po_last_error());
        exit(2);
    }
    return t;
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[1], "sgd-grad") == 0 && argc < 5)) {
        fprintf(stderr, "usage: st_compare adam OUT REF | st_compare sgd-grad OUT REF LR\n");
        return 2;
    }
    bool adam = strcmp(argv[1], "adam") == 0;
    double lr = adam ? 1e-3 : atof(argv[4]);
    po_st_file *out, *ref;
    if (po_st_read(argv[2], &out) || po_st_read(argv[3], &ref)) {
        fprintf(stderr, "st_compare: %s\n", po_last_error());
        return 2;
    }
    int bad = 0;
    for (int i = 0; i < po_st_count(out); i++) {
        const char *name = po_st_name(out, i);
        po_tensor *a = get(out, "", name), *init = get(ref, "", name), *grad = get(ref, "grad.", name);
        int64_t n = po_tensor_numel(a);
        const float *av = a->data, *iv = init->data, *gv = grad->data;
        double worst = 0.0;
        bool ok;
        if (adam) {
            po_tensor *b = get(ref, "adam1.", name);
            const float *bv = b->data;
            double moved = 0.0;
            for (int64_t k = 0; k < n; k++) {
                if (fabs(gv[k]) >= 1e-7)
                    worst = fmax(worst, fabs((double)av[k] - bv[k]));
                else
                    moved = fmax(moved, fabs((double)av[k] - iv[k]));
                if (isnan(av[k])) worst = INFINITY;
            }
            ok = worst <= 5e-5 && moved <= lr * 1.001;
            printf("%-28s max|a-b| %.3g (tol 5e-05), zero-grad moves <= %.3g %s\n", name, worst, moved,
                   ok ? "ok" : "FAIL");
            po_tensor_free(b);
        } else {
            float *derived = malloc((size_t)n * sizeof(float));
            for (int64_t k = 0; k < n; k++)
                derived[k] = (float)(((double)iv[k] - av[k]) / lr);
            worst = po_ref_err(derived, gv, n);
            ok = worst <= 1e-3;
            printf("%-28s gradient err %.3g (tol 1e-3) %s\n", name, worst, ok ? "ok" : "FAIL");
            free(derived);
        }
        bad += !ok;
        po_tensor_free(a);
        po_tensor_free(init);
        po_tensor_free(grad);
    }
    po_st_free(out);
    po_st_free(ref);
    return bad ? 1 : 0;
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "po_test.h"

const char *po_test_data(const char *rel) {
    static char buf[4096];
    const char *root = getenv("PO_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "tests/data", rel);
    return buf;
}

double po_ref_err(const float *a, const float *b, int64_t n) {
    double bmax = 0.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        bmax = fmax(bmax, fabs((double)b[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), 1e-3 * bmax);
        if (!(d <= worst)) worst = d; /* NaN counts as the worst */
        if (isnan(d) || (bmax == 0.0 && a[i] != 0.0f)) worst = INFINITY;
    }
    return worst;
}

void po_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    po_rng r;
    po_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * po_rng_uniform(&r);
}

po_gradcheck_opts po_gradcheck_defaults(void) {
    po_gradcheck_opts o = {1e-2, 2e-2, 1e-2, 40, -1.0f, 1.0f, 1234};
    return o;
}

void po_test_run_new(po_graph *g, uint64_t seed, po_test_run *r) {
    PO_CHECK(po_graph_status(g));
    PO_CHECK(po_params_new(g, &r->params));
    po_test_fill_uniform(po_params_values(r->params), (int64_t)po_params_total(r->params), -1.0f, 1.0f, seed);
    PO_CHECK(po_exec_new(g, r->params, &r->exec));
}

void po_test_run_free(po_test_run *r) {
    po_exec_free(r->exec);
    po_params_free(r->params);
    r->exec = NULL;
    r->params = NULL;
}

static const po_param_info *find(po_test_run *r, const char *name) {
    int i = po_params_find(r->params, name);
    if (i < 0) fail_msg("no parameter %s", name);
    return po_params_info(r->params, i);
}

float *po_test_param(po_test_run *r, const char *name) { return po_params_values(r->params) + find(r, name)->offset; }

float *po_test_grad(po_test_run *r, const char *name) { return po_params_grads(r->params) + find(r, name)->offset; }

static double run_loss(po_exec *ex, po_node *loss) {
    PO_CHECK(po_exec_run(ex));
    return (double)*(const float *)po_exec_output(ex, loss);
}

double po_gradcheck(po_graph *g, po_node *y, void (*setup)(po_exec *, void *), void *ctx,
                    const po_gradcheck_opts *opts) {
    po_gradcheck_opts o = opts ? *opts : po_gradcheck_defaults();
    po_node *R = po_input(g, "gradcheck.R", PO_F32, po_node_shape(y));
    po_node *loss = po_sum_to(g, po_mul(g, y, R), po_shape_make(0, NULL));
    PO_CHECK(po_graph_backward(g, loss));
    po_params *p;
    po_exec *ex;
    PO_CHECK(po_params_new(g, &p));
    po_test_fill_uniform(po_params_values(p), (int64_t)po_params_total(p), o.lo, o.hi, o.seed);
    PO_CHECK(po_exec_new(g, p, &ex));
    po_shape ys = po_node_shape(y);
    po_test_fill_uniform(po_exec_input_data(ex, R), po_shape_numel(&ys), -1.0f, 1.0f, o.seed + 1);
    if (setup) setup(ex, ctx);
    run_loss(ex, loss);
    size_t total = po_params_total(p);
    float *analytic = malloc(total * sizeof(float));
    memcpy(analytic, po_params_grads(p), total * sizeof(float));
    float *values = po_params_values(p);
    double worst = 0.0;
    for (int i = 0; i < po_params_count(p); i++) {
        const po_param_info *pi = po_params_info(p, i);
        int64_t step = pi->numel > o.max_elems ? pi->numel / o.max_elems : 1;
        for (int64_t k = 0; k < pi->numel; k += step) {
            float *v = &values[pi->offset + (size_t)k];
            float saved = *v;
            *v = saved + (float)o.h;
            double up = run_loss(ex, loss);
            *v = saved - (float)o.h;
            double down = run_loss(ex, loss);
            *v = saved;
            double numeric = (up - down) / (2.0 * o.h), a = analytic[pi->offset + (size_t)k];
            double err = fabs(a - numeric) / fmax(fabs(numeric), o.floor);
            if (err > o.tol)
                print_message("gradcheck %s[%lld]: analytic %.6g numeric %.6g\n", pi->name, (long long)k, a, numeric);
            if (!(err <= worst)) worst = err;
        }
    }
    free(analytic);
    po_exec_free(ex);
    po_params_free(p);
    return worst;
}

unsigned char *po_test_read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    assert_true(n >= 0);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

void po_test_write_file(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

void po_test_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            po_test_remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

po_tensor *po_test_ref_tensor(po_st_file *f, const char *prefix, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    po_tensor *t = NULL;
    PO_CHECK(po_st_get(f, full, &t));
    return t;
}

void po_test_check_adam1(po_st_file *f, po_params *p, const char *what) {
    for (int i = 0; i < po_params_count(p); i++) {
        const po_param_info *pi = po_params_info(p, i);
        po_tensor *g = po_test_ref_tensor(f, "grad.", pi->name), *a1 = po_test_ref_tensor(f, "adam1.", pi->name);
        po_tensor *init = po_test_ref_tensor(f, "", pi->name);
        const float *gv = g->data, *av = a1->data, *iv = init->data;
        const float *mine = po_params_grads(p) + pi->offset, *after = po_params_values(p) + pi->offset;
        double ge = po_ref_err(mine, gv, pi->numel), worst = 0.0, moved = 0.0;
        for (int64_t k = 0; k < pi->numel; k++) {
            if (fabsf(gv[k]) >= 1e-7f)
                worst = fmax(worst, fabs((double)after[k] - av[k]));
            else
                moved = fmax(moved, fabs((double)after[k] - iv[k]));
        }
        if (ge > 1e-3 || worst > 5e-5 || moved > 1.001e-3)
            fail_msg("%s %s: gradient err %.3g, adam1 max err %.3g, zero-grad move %.3g", what, pi->name, ge, worst,
                     moved);
        po_tensor_free(g);
        po_tensor_free(a1);
        po_tensor_free(init);
    }
}

void po_test_load_batch(po_st_file *f, po_trainer *t) {
    po_tensor *x, *y;
    PO_CHECK(po_st_get(f, "input.x", &x));
    PO_CHECK(po_st_get(f, "input.y", &y));
    PO_CHECK(po_tensor_copy(po_trainer_input(t, 0), x));
    PO_CHECK(po_tensor_copy(po_trainer_input(t, 1), y));
    po_tensor_free(x);
    po_tensor_free(y);
}

/* Test support: reference-file access, the reference tolerance measure, a finite-difference
 * gradient checker and small helpers shared by the unit tests. Include after cmocka's
 * prerequisites (stdarg.h, stddef.h, setjmp.h, stdint.h) and cmocka.h. */
#ifndef PO_TEST_H
#define PO_TEST_H

#include <stdint.h>

#include "paropt/paropt.h"

/* $PO_TEST_DATA/rel (tests/data in the source tree) in a static buffer. */
const char *po_test_data(const char *rel);

/* The reference README's measure: max |a - b| / max(|b|, 1e-3 * max|b|) over n elements. */
double po_ref_err(const float *a, const float *b, int64_t n);

/* Files: the whole of path (malloc'd, one spare byte; *len its size), path written with
 * exactly len bytes, and dir removed with everything under it (missing is fine). The first
 * two fail the test on any error. */
unsigned char *po_test_read_file(const char *path, size_t *len);
void po_test_write_file(const char *path, const void *data, size_t len);
void po_test_remove_tree(const char *dir);

/* The reference file's tensor prefix + name (caller frees); fails the test when it is missing. */
po_tensor *po_test_ref_tensor(po_st_file *f, const char *prefix, const char *name);

/* After one Adam step from f's parameters on f's batch: every parameter's gradient in p within
 * 1e-3 (po_ref_err) of f's grad.*, its value within 5e-5 of adam1.* where the reference
 * gradient is at least 1e-7, and moved no more than lr (1.001e-3) from its start elsewhere.
 * Fails the test naming what (a label) and the parameter. */
void po_test_check_adam1(po_st_file *f, po_params *p, const char *what);

/* Copies a reference file's batch (input.x, input.y) into t's inputs; fails the test on error. */
void po_test_load_batch(po_st_file *f, po_trainer *t);

/* Fills n floats uniformly in [lo, hi) from a generator seeded with seed. */
void po_test_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed);

typedef struct po_gradcheck_opts {
    double h;      /* central-difference step (default 1e-2) */
    double tol;    /* allowed |analytic - numeric| / max(|numeric|, floor) (default 2e-2) */
    double floor;  /* magnitude below which errors are absolute (default 1e-2) */
    int max_elems; /* elements checked per parameter, spread over it (default 40) */
    float lo, hi;  /* parameter values drawn from U(lo, hi) (default -1, 1) */
    uint64_t seed;
} po_gradcheck_opts;
po_gradcheck_opts po_gradcheck_defaults(void);

/* Checks the gradient of every parameter of g against central differences of
 * L = sum(y * R), R a fixed random tensor. Adds R, L and the backward pass to g. `setup`,
 * if not NULL, fills g's other inputs once the executor exists. Returns the largest error
 * found (in the opts' measure) and prints every element over tol. */
double po_gradcheck(po_graph *g, po_node *y, void (*setup)(po_exec *ex, void *ctx), void *ctx,
                    const po_gradcheck_opts *opts);

/* Builds an executor for g (params initialised by uniform values from seed): a test
 * convenience that fails the test on error. */
typedef struct po_test_run {
    po_params *params;
    po_exec *exec;
} po_test_run;
void po_test_run_new(po_graph *g, uint64_t seed, po_test_run *r);
void po_test_run_free(po_test_run *r);
/* The value of parameter `name` (its values buffer) and its gradient. */
float *po_test_param(po_test_run *r, const char *name);
float *po_test_grad(po_test_run *r, const char *name);

/* Fails the test with the library's last error when st is not PO_OK. */
#define PO_CHECK(expr)                                                                                                 \
    do {                                                                                                               \
        po_status po_check_st_ = (expr);                                                                               \
        if (po_check_st_ != PO_OK) fail_msg("%s: %s", #expr, po_last_error());                                         \
    } while (0)

#endif

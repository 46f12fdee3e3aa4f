/* Checkpoints: a run continued from a checkpoint ends bit-identical to an uninterrupted one;
 * bad or foreign checkpoints are refused and change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "po_test.h"

#define SPEC "tiny_gpt:vocab=32,d_model=16,layers=2,heads=2,seq=8"

typedef struct {
    po_model *m;
    po_trainer *t;
    po_dataset *d;
} run;

static void run_new(run *r, po_optim_kind kind) {
    PO_CHECK(po_model_build(SPEC, 3, &r->m));
    po_optim_opts o = po_optim_opts_default(kind);
    o.momentum = kind == PO_OPTIM_SGD ? 0.9f : 0.0f;
    PO_CHECK(po_trainer_new(r->m, &o, 5, &r->t));
    PO_CHECK(po_dataset_synthetic(r->m, 12, 9, &r->d));
}

static void run_free(run *r) {
    po_dataset_free(r->d);
    po_trainer_free(r->t);
    po_model_free(r->m);
}

static void steps(run *r, int64_t from, int64_t to) {
    for (int64_t s = from; s < to; s++) {
        float loss;
        PO_CHECK(po_dataset_batch(r->d, s, po_trainer_input(r->t, 0), po_trainer_input(r->t, 1)));
        PO_CHECK(po_trainer_step(r->t, &loss));
    }
}

static char path[256];

static void resume_is_bit_identical(po_optim_kind kind) {
    run a, b;
    run_new(&a, kind);
    run_new(&b, kind);
    steps(&a, 0, 3);
    po_train_position pos = {3, 1, 0, 77}, back;
    PO_CHECK(po_checkpoint_save(path, po_trainer_params(a.t), &pos, 0, NULL, NULL));
    steps(&a, 3, 7);
    /* b starts from other random values: everything it needs comes from the checkpoint. */
    PO_CHECK(po_checkpoint_load(path, po_trainer_params(b.t), &back));
    assert_memory_equal(&pos, &back, sizeof pos);
    po_exec_set_steps(po_trainer_exec(b.t), back.step);
    steps(&b, 3, 7);
    po_params *pa = po_trainer_params(a.t), *pb = po_trainer_params(b.t);
    size_t bytes = po_params_total(pa) * sizeof(float);
    assert_memory_equal(po_params_values(pa), po_params_values(pb), bytes);
    assert_memory_equal(po_params_state(pa), po_params_state(pb), bytes * (size_t)po_params_state_slots(pa));
    run_free(&a);
    run_free(&b);
}

static void adam_resume(void **st) {
    (void)st;
    resume_is_bit_identical(PO_OPTIM_ADAM);
}

static void sgd_momentum_resume(void **st) {
    (void)st;
    resume_is_bit_identical(PO_OPTIM_SGD);
}

static void refuses_bad_checkpoints(void **st) {
    (void)st;
    run a;
    run_new(&a, PO_OPTIM_ADAM);
    po_params *p = po_trainer_params(a.t);
    size_t bytes = po_params_total(p) * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, po_params_values(p), bytes);
    po_train_position pos;
    /* A plain parameter file is not a checkpoint. */
    PO_CHECK(po_params_save(p, path, 0, NULL, NULL));
    assert_int_equal(po_checkpoint_load(path, p, &pos), PO_ERR_FORMAT);
    /* A checkpoint of another model (other sizes) is refused. */
    po_model *m;
    PO_CHECK(po_model_build("tiny_gpt:vocab=32,d_model=16,layers=1,heads=2,seq=8", 3, &m));
    po_optim_opts o = po_optim_opts_default(PO_OPTIM_ADAM);
    po_trainer *t;
    PO_CHECK(po_trainer_new(m, &o, 1, &t));
    po_train_position zero = {0, 0, 0, 0};
    PO_CHECK(po_checkpoint_save(path, po_trainer_params(t), &zero, 0, NULL, NULL));
    assert_int_not_equal(po_checkpoint_load(path, p, &pos), PO_OK);
    assert_memory_equal(before, po_params_values(p), bytes);
    po_trainer_free(t);
    po_model_free(m);
    free(before);
    run_free(&a);
}

static int setup(void **st) {
    (void)st;
    snprintf(path, sizeof path, "/tmp/po_test_ckpt_%d.safetensors", (int)getpid());
    return 0;
}

static int teardown(void **st) {
    (void)st;
    unlink(path);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adam_resume),
        cmocka_unit_test(sgd_momentum_resume),
        cmocka_unit_test(refuses_bad_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

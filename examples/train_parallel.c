/* examples/train_mlp.c with one line changed: po_parallel_new measures this machine's cores,
 * lets the planner choose how each step runs on them (one core, or data parallel with shares
 * by measured speed) for time or for energy, and returns a trainer that runs that plan. The
 * training loop is untouched.
 * Usage: train_parallel [DEVICES [time|energy|edp]]   (default: auto time) */
#include <math.h>
#include <stdio.h>

#include "paropt/paropt.h"

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        if ((call) != PO_OK) {                                                                                         \
            fprintf(stderr, "train_parallel: %s\n", po_last_error());                                                  \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

int main(int argc, char **argv) {
    po_model *model;
    CHECK(po_model_build("mnist_mlp:d_in=64,hidden=128,classes=10", 32, &model));
    po_optim_opts adam = po_optim_opts_default(PO_OPTIM_ADAM);
    adam.lr = 3e-3f;
    po_trainer *trainer;
    po_parallel_opts opts = po_parallel_opts_default(); /* every core, the fastest plan */
    opts.devices = argc > 1 ? argv[1] : NULL;
    if (argc > 2) CHECK(po_objective_parse(argv[2], &opts.objective)); /* or the least energy */
    po_plan plan;
    /* The one changed line (was: po_trainer_new(model, &adam, 42, &trainer)). */
    CHECK(po_parallel_new(model, &adam, /*seed=*/42, &opts, &plan, &trainer));
    char summary[256];
    printf("plan: %s, predicted %.3g ms per step\n", po_plan_summary(&plan, NULL, summary, sizeof summary),
           plan.predicted.step_ms);
    for (int i = 0; i < plan.n_explanation; i++)
        printf("  %s\n", plan.explanation[i]);

    po_dataset *data;
    CHECK(po_dataset_synthetic(model, 4 * model->batch, /*seed=*/7, &data));
    float loss = 0.0f;
    for (int step = 0; step < 100; step++) {
        CHECK(po_dataset_batch(data, step, po_trainer_input(trainer, 0), po_trainer_input(trainer, 1)));
        CHECK(po_trainer_step(trainer, &loss));
        if (step % 20 == 0) printf("step %2d  loss %.4f\n", step, loss);
    }
    printf("final loss %.4f on %d workers\n", loss, po_trainer_n_workers(trainer));
    po_plan_free(&plan);
    po_dataset_free(data);
    po_trainer_free(trainer);
    po_model_free(model);
    return 0;
}

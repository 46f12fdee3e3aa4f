/* examples/train_mlp.c with one line changed: po_trainer_new_parallel spreads every step over
 * all the cores of this machine (data parallel; shares follow measured speed). The training
 * loop is untouched. Usage: train_parallel [DEVICES]   (default: auto) */
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
    /* The one changed line (was: po_trainer_new(model, &adam, 42, &trainer)). */
    CHECK(po_trainer_new_parallel(model, &adam, /*seed=*/42, argc > 1 ? argv[1] : NULL, &trainer));

    po_dataset *data;
    CHECK(po_dataset_synthetic(model, 4 * model->batch, /*seed=*/7, &data));
    float loss = 0.0f;
    for (int step = 0; step < 100; step++) {
        CHECK(po_dataset_batch(data, step, po_trainer_input(trainer, 0), po_trainer_input(trainer, 1)));
        CHECK(po_trainer_step(trainer, &loss));
        if (step % 20 == 0) printf("step %2d  loss %.4f\n", step, loss);
    }
    printf("final loss %.4f on %d workers\n", loss, po_trainer_n_workers(trainer));
    po_dataset_free(data);
    po_trainer_free(trainer);
    po_model_free(model);
    return 0;
}

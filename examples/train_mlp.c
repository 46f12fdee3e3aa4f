/* Trains a small MLP on synthetic data with the C API, then saves it.
 * Build: part of the CMake build (build/examples/train_mlp). Usage: train_mlp [OUT.safetensors] */
#include <stdio.h>

#include "paropt/paropt.h"

#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        if ((call) != PO_OK) {                                                                                         \
            fprintf(stderr, "train_mlp: %s\n", po_last_error());                                                       \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

int main(int argc, char **argv) {
    po_model *model;
    CHECK(po_model_build("mnist_mlp:d_in=64,hidden=128,classes=10", 32, &model));

    po_optim_opts adam = po_optim_opts_default(PO_OPTIM_ADAM);
    adam.lr = 3e-3f;
    po_trainer *trainer;
    CHECK(po_trainer_new(model, &adam, /*seed=*/42, &trainer));

    po_dataset *data;
    CHECK(po_dataset_synthetic(model, 4 * model->batch, /*seed=*/7, &data));
    float loss = 0.0f;
    for (int step = 0; step < 100; step++) {
        CHECK(po_dataset_batch(data, step, po_trainer_input(trainer, 0), po_trainer_input(trainer, 1)));
        CHECK(po_trainer_step(trainer, &loss));
        if (step % 20 == 0) printf("step %2d  loss %.4f\n", step, loss);
    }
    printf("final loss %.4f\n", loss);
    if (argc > 1) CHECK(po_params_save(po_trainer_params(trainer), argv[1], 0, NULL, NULL));

    po_dataset_free(data);
    po_trainer_free(trainer);
    po_model_free(model);
    return 0;
}

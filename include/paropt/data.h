/* Datasets and the batch loader.
 *
 * A dataset is one split (train or test) of N samples held in memory, each a sample x (F32
 * features/images, or I64 token ids) and a target y (I64 class id, or I64 ids for tokens).
 * Image datasets keep their pixels as bytes and scale them to [0, 1] as batches are made,
 * exactly as PyTorch's `torch.tensor(x, dtype=torch.float32) / 255.0` does: (float)p / 255.0f.
 *
 * Specs (po_dataset_open):
 *   fashion-mnist       idx:/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
 *   idx:DIR             DIR/{train,t10k}-images-idx3-ubyte and -labels-idx1-ubyte, each plain
 *                       or gzip (NAME or NAME.gz; detected by the gzip magic bytes). Images
 *                       [1, H, W] F32 in [0, 1], labels 0..9 (classes 10).
 *   cifar10:DIR         CIFAR-10 binary batches: DIR/data_batch_1.bin .. data_batch_5.bin
 *                       (train) and DIR/test_batch.bin (test), or the same files in
 *                       DIR/cifar-10-batches-bin. Records of 1 label byte (0..9) + 3072 pixel
 *                       bytes (3x32x32, channel-major); any whole number of records per file.
 *                       Images [3, 32, 32] F32 in [0, 1], classes 10.
 *   text:FILE           every byte of FILE (read as is, never decompressed) is a token, vocab
 *                       256. Sample k is the window of seq+1 bytes at offset k*seq:
 *                       x = bytes[k*seq, k*seq + seq), y = bytes[k*seq + 1, k*seq + seq + 1),
 *                       both I64 [seq]. W = (size - 1) / seq windows (non-overlapping inputs);
 *                       train = the first floor(0.9 W) windows, test = the rest, each at least
 *                       one when W >= 2. With exactly one window both splits are that window
 *                       (a file that small can only be memorised; the test figures say so).
 *                       Fewer than seq + 1 bytes is PO_ERR_RANGE.
 *   FILE.safetensors    (any other spec is taken as the path of a safetensors file) tensors
 *                       "input.x" (F32 samples or I32/I64 ids) and "input.y" (I32/I64 targets)
 *                       are the train split. The test split is "test.x"/"test.y" when the file
 *                       holds both, else the same input.x/input.y (so evaluation on such a file
 *                       measures the training data). Classes = 1 + the largest target (and,
 *                       for I64 samples, token id) of the split; negative ones are PO_ERR_RANGE.
 * Synthetic data (po_dataset_synthetic) needs a model, so it has no spec.
 *
 * Errors: every malformed input is one line starting with the file path: PO_ERR_IO (missing or
 * unreadable file), PO_ERR_FORMAT (wrong magic, truncated data, trailing bytes, corrupt gzip,
 * image/label counts that disagree), PO_ERR_RANGE (a label above 9, dims whose product
 * overflows or exceeds the limit below, text shorter than one window). Sizes from a header are
 * checked against the bytes actually present before anything is allocated for them.
 *
 * Thread safety: a dataset is immutable once opened; any number of loaders and threads may
 * read it. It must outlive every loader made from it. */
#ifndef PAROPT_DATA_H
#define PAROPT_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "paropt/models.h"
#include "paropt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct po_dataset po_dataset;

/* Which part of a dataset to open. (Not `po_split`: that name is the graph op in graph.h.) */
typedef enum { PO_SPLIT_TRAIN, PO_SPLIT_TEST } po_data_split;

/* Largest decompressed file (or text split) a reader accepts: 4 GiB. */
#define PO_DATASET_MAX_BYTES ((uint64_t)1 << 32)

/* Opens one split of the dataset named by spec (see above). seq (> 0) is the window length of
 * text data and ignored otherwise. *out is NULL on failure. */
po_status po_dataset_open(const char *spec, po_data_split split, int64_t seq, po_dataset **out);
/* The train split of a safetensors file (see FILE.safetensors above). */
po_status po_dataset_open_safetensors(const char *path, po_dataset **out);
/* Random samples shaped for model m: N(0, 1) features, or ids and targets uniform over the
 * vocabulary/classes; `samples` of them, drawn from `seed`. */
po_status po_dataset_synthetic(const po_model *m, int64_t samples, uint64_t seed, po_dataset **out);
void po_dataset_free(po_dataset *d); /* NULL is a no-op */

int64_t po_dataset_size(const po_dataset *d); /* N, the sample count (>= 1) */
/* One sample, without the batch dim: [1, 28, 28] (IDX), [3, 32, 32] (CIFAR), [seq] (text),
 * input.x's shape after its first dim (safetensors). */
po_shape po_dataset_sample_shape(const po_dataset *d);
/* One sample's targets: [] (a class id) for images, [seq] for text. */
po_shape po_dataset_target_shape(const po_dataset *d);
/* The dtype of batched samples: PO_F32 for images and features, PO_I64 for token ids. Targets
 * are always PO_I64. */
po_dtype po_dataset_sample_dtype(const po_dataset *d);
/* Target classes: 10 (IDX, CIFAR-10), 256 (text), 1 + the largest target or id (safetensors),
 * the model's class count (synthetic). For token data it is also the vocabulary. */
int64_t po_dataset_classes(const po_dataset *d);
/* The spec the dataset was opened with ("fashion-mnist", "idx:DIR", the safetensors path;
 * "synthetic" for synthetic data): for messages and to record a run's settings. Owned by d. */
const char *po_dataset_name(const po_dataset *d);
/* Whether po_dataset_classes is the dataset's fixed class count (IDX, CIFAR, text, synthetic)
 * rather than one more than the largest target present (safetensors). */
bool po_dataset_classes_known(const po_dataset *d);

/* Checks that d fits model m: sample dtype; sample shape (equal to the model's input after the
 * batch dim, or, for a model taking [B, F] features, F = the sample's element count, so
 * mnist_mlp reads [1, 28, 28] images flattened as PyTorch's reshape(B, -1) does); target shape;
 * every target in [0, classes) and every token id in [0, vocab). One-line error naming the
 * first problem. */
po_status po_dataset_check(const po_dataset *d, const po_model *m);

/* Copies batch number `index` (samples index*B .. index*B + B - 1, modulo N; B = the first dim
 * of x_out) into x_out and y_out, which must be contiguous and shaped [B, ...] with each row
 * holding one sample / one sample's targets (same element count; images scaled to [0, 1]).
 * A simple, unshuffled, synchronous alternative to the loader. */
po_status po_dataset_batch(const po_dataset *d, int64_t index, po_tensor *x_out, po_tensor *y_out);

/* ---- Batch loader ----
 *
 * Serves batches of B samples epoch after epoch, indefinitely; the caller decides when to
 * stop. Positions are (epoch, batch_in_epoch), both from 0. po_loader_next gathers the batch
 * straight into the caller's tensors, on the caller's thread (datasets are held in memory, so
 * this costs about a copy of the batch; see src/data/loader.c for why no background thread).
 * Data order is a pure function of (dataset, B, seed, shuffle, epoch): a run resumes exactly
 * from a saved position with po_loader_seek.
 *
 * A loader is used by one thread at a time. */
typedef struct po_loader po_loader;

/* A training loader: each epoch is floor(N / B) full batches (the last N mod B samples of the
 * epoch's order are dropped, as PyTorch's drop_last=True and ../shared/peer/torch_fashion.py
 * do). With shuffle, epoch e visits the samples in a Fisher-Yates permutation drawn from the
 * project RNG seeded by a hash of (shuffle_seed, e); without, in file order. B > N is
 * PO_ERR_INVALID_ARG (an epoch would have no batch). Starts at (0, 0). d must outlive it. */
po_status po_loader_new(const po_dataset *d, int64_t batch, uint64_t shuffle_seed, bool shuffle, po_loader **out);
/* An evaluation loader: file order, ceil(N / B) batches per epoch covering every sample once;
 * the last batch holds N - (ceil(N/B) - 1) * B rows (po_loader_rows) when B does not divide N.
 * Any B > 0 is valid (B > N gives one short batch). */
po_status po_loader_new_eval(const po_dataset *d, int64_t batch, po_loader **out);
void po_loader_free(po_loader *l); /* NULL is a no-op */

/* Fills x_out [B, ...] (contiguous, the dataset's sample dtype, each row one sample's element
 * count: [B, 1, 28, 28] and [B, 784] both take Fashion-MNIST) and y_out (contiguous I64,
 * [B, ...] with each row one sample's targets) with the batch at the current position, then
 * advances the position. In a short final evaluation batch, rows past po_loader_rows are zero
 * (samples 0, targets 0) and must be ignored. Mismatched tensors are PO_ERR_SHAPE or
 * PO_ERR_DTYPE, leaving the position unchanged. */
po_status po_loader_next(po_loader *l, po_tensor *x_out, po_tensor *y_out);
/* Valid rows of the batch the last po_loader_next handed over: B, or fewer in the final batch
 * of an evaluation loader's epoch; 0 before the first next() and after a seek. */
int64_t po_loader_rows(const po_loader *l);
/* The position of the batch the next po_loader_next will hand over: after (e, last) comes
 * (e + 1, 0). */
void po_loader_position(const po_loader *l, int64_t *epoch, int64_t *batch_in_epoch);
/* Moves to (epoch, batch_in_epoch): the next po_loader_next gives exactly the batch that
 * iterating from (0, 0) would give there. epoch >= 0 and 0 <= batch_in_epoch <
 * po_loader_batches_per_epoch, else PO_ERR_RANGE. */
po_status po_loader_seek(po_loader *l, int64_t epoch, int64_t batch_in_epoch);
int64_t po_loader_batches_per_epoch(const po_loader *l);
int64_t po_loader_batch_size(const po_loader *l); /* B */

#ifdef __cplusplus
}
#endif
#endif

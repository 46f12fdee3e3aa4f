#!/usr/bin/env bash
# Bad data gives one clear line on stderr and a non-zero exit, and never alters an existing run
# directory's checkpoints.
source "$(dirname "$0")/lib.sh"

# idx_dir DIR IMG_MAGIC N_IMAGES N_LABELS PIXEL_BYTES LABEL_BYTE: 2x2 images, train and test.
idx_dir() {
  local dir=$1 magic=$2 ni=$3 nl=$4 pixels=$5 label=$6
  mkdir -p "$dir"
  for split in train t10k; do
    { printf "\\x00\\x00\\x08\\x$magic\\x00\\x00\\x00\\x0$ni\\x00\\x00\\x00\\x02\\x00\\x00\\x00\\x02"
      head -c "$pixels" /dev/zero; } >"$dir/$split-images-idx3-ubyte"
    { printf "\\x00\\x00\\x08\\x01\\x00\\x00\\x00\\x0$nl"
      for _ in $(seq "$nl"); do printf "\\x$label"; done; } >"$dir/$split-labels-idx1-ubyte"
  done
}
train() { "$PO_BIN" train --model mnist_mlp:hidden=8 --batch 2 --steps 1 "$@"; }

idx_dir "$TMP/good" 03 4 4 16 05
train --data "idx:$TMP/good" >/dev/null 2>&1 || fail "a valid tiny IDX dataset should train"
idx_dir "$TMP/magic" 04 4 4 16 05
idx_dir "$TMP/short" 03 4 4 15 05
idx_dir "$TMP/count" 03 4 3 16 05
idx_dir "$TMP/label" 03 4 4 16 0c
expect_error "--data" train --data "idx:$TMP/missing"
expect_error "magic" train --data "idx:$TMP/magic"
expect_error "--data" train --data "idx:$TMP/short"
expect_error "--data" train --data "idx:$TMP/count"
expect_error "--data" train --data "idx:$TMP/label"
mkdir -p "$TMP/cifar" && head -c 3000 /dev/zero >"$TMP/cifar/data_batch_1.bin"
expect_error "--data" "$PO_BIN" train --model cifar_cnn --batch 2 --steps 1 --data "cifar10:$TMP/cifar"
printf 'too short' >"$TMP/short.txt"
expect_error "--data" "$PO_BIN" train --model tiny_gpt:seq=16 --batch 1 --steps 1 --data "text:$TMP/short.txt"

# A run on text data; its data then goes bad: resuming fails and leaves the checkpoints alone.
head -c 20000 /dev/urandom >"$TMP/corpus.txt"
"$PO_BIN" train --model tiny_gpt:layers=1,d_model=16,heads=2,seq=16 --batch 4 --steps 6 --data "text:$TMP/corpus.txt" \
  --out "$TMP/run" --checkpoint-every 2 >/dev/null 2>&1 || fail "text run failed"
grep -q '"test_accuracy"' "$TMP/run/metrics.jsonl" || fail "no evaluation recorded"
before=$(cat "$TMP/run/checkpoints/"* | md5sum)
printf 'x' >"$TMP/corpus.txt"
expect_error "--data" "$PO_BIN" train --resume "$TMP/run"
expect_error "--data" "$PO_BIN" train --model tiny_gpt:seq=16 --data "text:$TMP/corpus.txt" --out "$TMP/run"
[ "$before" = "$(cat "$TMP/run/checkpoints/"* | md5sum)" ] || fail "checkpoints changed"
finish

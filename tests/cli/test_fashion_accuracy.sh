#!/usr/bin/env bash
# End to end on real data: mnist_mlp, Adam lr 1e-3, batch 128, 2 epochs of Fashion-MNIST reaches
# test accuracy >= 0.86 (PyTorch with the same setup: 0.866, ../shared/peer/torch_fashion.py).
# About a minute on one core; skipped in sanitizer builds (too slow) and without the dataset.
source "$(dirname "$0")/lib.sh"
[ "${PO_SANITIZED:-0}" = 1 ] && { echo "skipped: sanitizer build"; exit 77; }
[ -d /usr/share/datasets/fashion-mnist ] || { echo "skipped: dataset-fashion-mnist not installed"; exit 77; }
"$PO_BIN" train --model mnist_mlp --data fashion-mnist --epochs 2 --batch 128 --optimizer adam --lr 1e-3 \
  --json --out "$TMP/run" >"$TMP/out" 2>"$TMP/err" || fail "training failed: $(tail -1 "$TMP/err")"
acc=$(tail -n 1 "$TMP/out" | sed 's/.*"test_accuracy":\([0-9.]*\).*/\1/')
echo "test accuracy $acc"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.86) }' || fail "test accuracy $acc < 0.86"
# One evaluation per epoch, recorded in the run directory.
[ "$(grep -c '"test_accuracy"' "$TMP/run/metrics.jsonl")" -eq 2 ] || fail "expected 2 evaluations in metrics.jsonl"
finish

#!/usr/bin/env bash
# The README's C API example builds (as part of the build), runs, learns and saves a file that
# paropt train can load.
source "$(dirname "$0")/lib.sh"
: "${PO_EXAMPLE:?}"
"$PO_EXAMPLE" "$TMP/mlp.safetensors" >"$TMP/out" 2>&1 || fail "example failed: $(cat "$TMP/out")"
loss=$(sed -n 's/^final loss //p' "$TMP/out")
awk -v l="$loss" 'BEGIN { exit !(l < 1.0) }' || fail "example did not learn: final loss $loss"
"$PO_BIN" train --model mnist_mlp:d_in=64,hidden=128,classes=10 --batch 32 --steps 1 \
  --init "$TMP/mlp.safetensors" >/dev/null 2>&1 || fail "paropt cannot load the example's output"
# The parallel variant, one line different, learns the same way on every core.
: "${PO_EXAMPLE_PARALLEL:?}"
"$PO_EXAMPLE_PARALLEL" >"$TMP/out" 2>&1 || fail "parallel example failed: $(cat "$TMP/out")"
loss=$(sed -n 's/^final loss \([0-9.]*\) on.*/\1/p' "$TMP/out")
workers=$(sed -n 's/.* on \([0-9]*\) workers/\1/p' "$TMP/out")
awk -v l="$loss" 'BEGIN { exit !(l < 1.0) }' || fail "parallel example did not learn: final loss $loss"
[ "$workers" -eq "$(nproc)" ] || fail "expected $(nproc) workers, got $workers"
finish

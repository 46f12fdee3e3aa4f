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
# The parallel variant, one line different: the planner's choice for time, then for energy, learns
# the same way; it prints the plan and trains on the plan's devices.
: "${PO_EXAMPLE_PARALLEL:?}"
for objective in time energy; do
  "$PO_EXAMPLE_PARALLEL" auto $objective >"$TMP/out" 2>&1 || fail "parallel example ($objective) failed: $(cat "$TMP/out")"
  plan=$(sed -n 's/^plan: //p' "$TMP/out")
  loss=$(sed -n 's/^final loss \([0-9.]*\) on.*/\1/p' "$TMP/out")
  workers=$(sed -n 's/.* on \([0-9]*\) workers/\1/p' "$TMP/out")
  echo "$objective: plan $plan; $workers worker(s), final loss $loss"
  awk -v l="$loss" 'BEGIN { exit !(l < 1.0) }' || fail "parallel example did not learn: final loss $loss"
  grep -q "Chosen for $objective" "$TMP/out" || fail "no explanation for $objective: $(cat "$TMP/out")"
  case "$plan" in
    single*) [ "$workers" -eq 1 ] || fail "single plan on $workers workers" ;;
    dp*) [ "$workers" -eq "$(echo "$plan" | grep -o 'cpu:[0-9-]*' | wc -l)" ] || fail "dp plan $plan on $workers workers" ;;
    *) fail "the example trained an unexpected plan: $plan" ;;
  esac
done
finish

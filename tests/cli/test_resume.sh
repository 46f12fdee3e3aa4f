#!/usr/bin/env bash
# A run killed with SIGKILL at arbitrary moments (also while it writes a checkpoint) and resumed
# with --resume ends with parameters bit-identical to an uninterrupted run.
source "$(dirname "$0")/lib.sh"
ARGS=(--model mnist_mlp:d_in=200,hidden=512 --data synthetic --batch 32 --steps 120 --seed 7 --checkpoint-every 1)

"$PO_BIN" train "${ARGS[@]}" --out "$TMP/whole" >/dev/null 2>&1 || fail "uninterrupted run failed"

"$PO_BIN" train "${ARGS[@]}" --out "$TMP/killed" >/dev/null 2>&1 &
pid=$!
# Kills start once the run has written its first checkpoint: one before that finds no run to
# resume (nothing damaged, nothing to test), and under load (sanitizers, ctest -j 2) start-up
# alone outlasted the first delay once (2026-12-05).
for _ in $(seq 200); do
  ls "$TMP/killed/checkpoints" 2>/dev/null | grep -q '^step-' && break
  sleep 0.05
done
kills=0
# Kill at uneven moments; checkpoints (with fsync) are written every step, so kills land in
# every part of a step, writing checkpoints included.
for delay in 0.13 0.21 0.08 0.17 0.25 0.11 0.19 0.3; do
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then
    kills=$((kills + 1))
    wait "$pid" 2>/dev/null
    ls "$TMP/killed/checkpoints" | grep -q '^step-' || fail "no checkpoint survived a kill"
    "$PO_BIN" train --resume "$TMP/killed" >/dev/null 2>"$TMP/resume.err" &
    pid=$!
  else
    break
  fi
done
wait "$pid" || fail "final resume failed: $(cat "$TMP/resume.err")"
echo "killed $kills times"
[ "$kills" -ge 3 ] || fail "the run finished before it could be killed three times (make it longer)"
cmp -s "$TMP/whole/model.safetensors" "$TMP/killed/model.safetensors" \
  || fail "resumed run's parameters differ from the uninterrupted run's"
# The metrics hold each step once, in order.
steps=$(grep -o '"step":[0-9]*' "$TMP/killed/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')
[ "$steps" = "$(grep -o '"step":[0-9]*' "$TMP/whole/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')" ] \
  || fail "metrics differ: $steps"
# Resuming a finished run is harmless.
"$PO_BIN" train --resume "$TMP/killed" >/dev/null 2>&1 || fail "resuming a finished run failed"
cmp -s "$TMP/whole/model.safetensors" "$TMP/killed/model.safetensors" || fail "re-resume changed the model"

# Refusals that must leave existing runs untouched.
sum_before=$(cat "$TMP/whole/checkpoints/"* | md5sum)
expect_error "already holds a run" "$PO_BIN" train "${ARGS[@]}" --out "$TMP/whole"
expect_error "not a run directory" "$PO_BIN" train --resume "$TMP/nowhere"
mkdir -p "$TMP/empty/checkpoints" && cp "$TMP/whole/settings.json" "$TMP/empty/"
expect_error "no checkpoint" "$PO_BIN" train --resume "$TMP/empty"
expect_error "only --save and --json" "$PO_BIN" train --resume "$TMP/whole" --lr 0.1
[ "$sum_before" = "$(cat "$TMP/whole/checkpoints/"* | md5sum)" ] || fail "a refused command altered checkpoints"
finish

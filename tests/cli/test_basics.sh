#!/usr/bin/env bash
# Help, version, the JSON summary, and training actually lowering the loss.
source "$(dirname "$0")/lib.sh"

"$PO_BIN" --help | grep -q "usage: paropt COMMAND" || fail "paropt --help"
"$PO_BIN" --version | grep -Eq "^paropt [0-9]+\.[0-9]+\.[0-9]+$" || fail "paropt --version"
"$PO_BIN" train --help | grep -q -- "--optimizer" || fail "paropt train --help"
"$PO_BIN" >/dev/null 2>&1 && fail "paropt without a command should fail"

# --json: the last stdout line is one object with the documented keys; progress goes to stderr.
"$PO_BIN" train --model mnist_mlp:d_in=64,hidden=32 --batch 32 --steps 60 --lr 3e-3 --json \
  >"$TMP/out" 2>"$TMP/err" || fail "train --json"
last=$(tail -n 1 "$TMP/out")
for key in model steps batch final_loss samples_per_s ms_per_step; do
  echo "$last" | grep -q "\"$key\":" || fail "JSON summary lacks $key: $last"
done
[ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "stdout should hold only the summary"
grep -q "step 60/60  loss" "$TMP/err" || fail "no progress lines on stderr"
# Synthetic data repeats every 4 batches, so 60 Adam steps must fit it: the loss falls well
# below ln(10) = 2.30 (chance level).
loss=$(echo "$last" | sed 's/.*"final_loss":\([^,}]*\).*/\1/')
awk -v l="$loss" 'BEGIN { exit !(l < 1.5) }' || fail "loss did not fall: $loss"

# Same seed, same result; the saved file reloads.
"$PO_BIN" train --model mnist_mlp:d_in=64,hidden=32 --batch 32 --steps 5 --seed 3 --save "$TMP/a.st" >/dev/null 2>&1
"$PO_BIN" train --model mnist_mlp:d_in=64,hidden=32 --batch 32 --steps 5 --seed 3 --save "$TMP/b.st" >/dev/null 2>&1
cmp -s "$TMP/a.st" "$TMP/b.st" || fail "same seed gave different parameters"
"$PO_BIN" train --model mnist_mlp:d_in=64,hidden=32 --batch 32 --steps 1 --init "$TMP/a.st" >/dev/null 2>&1 \
  || fail "a saved file does not load back"
finish

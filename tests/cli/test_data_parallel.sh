#!/usr/bin/env bash
# Data parallel over two cores: emulated slow devices, re-splitting by measured speed, errors.
source "$(dirname "$0")/lib.sh"
[ "$(nproc)" -ge 2 ] || { echo "skipped: one core"; exit 77; }
MODEL=(--model mnist_mlp:d_in=256,hidden=512 --batch 64)

# cpu:1 three times slower from the start: the batch is re-split toward cpu:0.
"$PO_BIN" train "${MODEL[@]}" --steps 40 --devices cpu:0,cpu:1:slowdown=3 --out "$TMP/slow" --log-every 5 --json \
  >"$TMP/out" 2>"$TMP/err" || fail "slow-device run failed: $(tail -1 "$TMP/err")"
grep -q '"event":"rebalance"' "$TMP/slow/metrics.jsonl" || fail "no re-split recorded"
rows=$(tail -n 1 "$TMP/out" | grep -o '"rows":[0-9]*' | cut -d: -f2 | tr '\n' ' ')
read -r r0 r1 <<<"$rows"
echo "final rows: cpu:0 $r0, cpu:1 $r1"
[ "$((r0 + r1))" -eq 64 ] && [ "$r1" -lt "$r0" ] || fail "expected cpu:1 to take fewer rows, got $rows"
grep -q '"busy"' "$TMP/slow/metrics.jsonl" || fail "no per-device busy fraction in metrics"

# A device slowing down mid-run is noticed and the split follows.
"$PO_BIN" train "${MODEL[@]}" --steps 40 --devices cpu:0,cpu:1 --slowdown-at 12:cpu:1:3 --out "$TMP/mid" \
  >/dev/null 2>"$TMP/err" || fail "--slowdown-at run failed: $(tail -1 "$TMP/err")"
grep -q "cpu:1 now runs 3x slower" "$TMP/err" || fail "the slowdown was not announced"
awk '/"event":"rebalance"/' "$TMP/mid/metrics.jsonl" | grep -o '"step":[0-9]*' | cut -d: -f2 | awk '$1 > 12 {ok=1} END {exit !ok}' \
  || fail "no re-split after the slowdown at step 12"

# Fixed shares are kept as given.
"$PO_BIN" train "${MODEL[@]}" --steps 20 --devices cpu:0,cpu:1:slowdown=3 --shares 1,1 --json >"$TMP/out" 2>/dev/null
[ "$(tail -n 1 "$TMP/out" | grep -o '"rows":[0-9]*' | cut -d: -f2 | tr '\n' ' ')" = "32 32 " ] || fail "--shares not kept"

expect_error "slowdown" "$PO_BIN" train --devices cpu:0,cpu:1:slowdown=abc
expect_error "slowdown" "$PO_BIN" train --devices cpu:0,cpu:1:slowdown=0.5
expect_error "--slowdown-at" "$PO_BIN" train --devices cpu:0,cpu:1 --slowdown-at 5:cpu:7:2
expect_error "--slowdown-at" "$PO_BIN" train --devices cpu:0,cpu:1 --slowdown-at five:cpu:1:2
expect_error "--shares" "$PO_BIN" train --devices cpu:0,cpu:1 --shares 1,0
finish

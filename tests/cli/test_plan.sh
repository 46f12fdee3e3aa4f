#!/usr/bin/env bash
# paropt plan: a plan for this machine's two cores (its form: what is picked depends on the load),
# even shares on two alike described devices; --json, --out, the plan cache; a described cluster where an extra device adds little
# speed at full power (--objective energy uses fewer devices than --objective time); --strategy;
# one-line errors with line and column for bad cluster files.
source "$(dirname "$0")/lib.sh"
export XDG_CACHE_HOME="$TMP/cache"

"$PO_BIN" --help | grep -q "plan " || fail "paropt --help does not list plan"
"$PO_BIN" plan --help | grep -q -- "--cluster FILE.json" || fail "paropt plan --help"

count_devices() { grep -o '"device":"[^"]*"' "$1" | sort -u | wc -l; }
stage_devices() { sed 's/"predicted".*//' "$1" | grep -o '"device":"[^"]*"' | wc -l; }

# --- this machine ---------------------------------------------------------------------------------
# What the planner picks here depends on measurements taken while other tests may run, so only
# its form is checked; the shares of alike devices are checked on a described cluster below.
if [ "$(nproc)" -ge 2 ] && "$PO_BIN" plan --model mnist_mlp --devices cpu:0,cpu:1 --json >"$TMP/m.json" 2>"$TMP/m.err"; then
  [ "$(wc -l <"$TMP/m.json")" -eq 1 ] || fail "--json should print one line"
  grep -Eq '^\{"format":"paropt plan 1","strategy":"(single|dp|pp|hybrid|opsplit)"' "$TMP/m.json" || fail "plan JSON: $(head -c 300 "$TMP/m.json")"
  for key in objective stages layers replicas micro_batches schedule predicted step_ms samples_per_s \
    energy_j_per_sample energy_source peak_memory_bytes busy explanation alternatives; do
    grep -q "\"$key\":" "$TMP/m.json" || fail "plan JSON lacks $key"
  done
  grep -q '"energy_source":"estimated:model"' "$TMP/m.json" || fail "predicted energy must say estimated:model"
  # text: the reasons, and the plan cache on the second call
  "$PO_BIN" plan --model mnist_mlp --devices cpu:0,cpu:1 --out "$TMP/plan.json" >"$TMP/m.txt" 2>&1 || fail "text: $(cat "$TMP/m.txt")"
  cat "$TMP/m.txt"
  for w in "^plan       [a-z]" "Bottleneck:" "Binding constraint:" "Runner-up:" "Utilisation: cpu:" \
    "samples/s" "per sample (estimated:model)" "(plan from the cache)"; do
    grep -q -- "$w" "$TMP/m.txt" || fail "text output lacks '$w'"
  done
  grep -Eq '^  "strategy": "[a-z]+",' "$TMP/plan.json" || fail "--out: $(head -5 "$TMP/plan.json")"
  ls "$XDG_CACHE_HOME"/paropt/plans/plan-*.json >/dev/null 2>&1 || fail "no plan cache file"
else
  echo "fewer than two cores here: the two-core plan is not checked ($(cat "$TMP/m.err" 2>/dev/null))"
fi

# Two alike devices: data parallel with even shares.
cat >"$TMP/twins.json" <<'EOF'
{"devices": [{"id": "c", "kind": "cpu", "peak_gflops": 80, "mem_bandwidth_gbs": 12, "memory_gb": 16,
              "tdp_w": 10, "idle_w": 2, "count": 2}],
 "default_link": {"bandwidth_gbs": 50, "latency_us": 0.1}}
EOF
"$PO_BIN" plan --cluster "$TMP/twins.json" --model mnist_mlp --strategy dp --json --no-cache >"$TMP/tw.json" || fail "twins"
shares=$(sed 's/"predicted".*//' "$TMP/tw.json" | grep -o '"share":[0-9.e+-]*' | cut -d: -f2 | tr '\n' ' ')
echo "mnist_mlp on two alike devices: shares $shares"
set -- $shares
[ $# -eq 2 ] || fail "want two replicas: $shares"
for sh in "$@"; do
  awk -v s="$sh" 'BEGIN { exit !(s >= 0.49 && s <= 0.51) }' || fail "share $sh is not 0.5 (devices alike)"
done

# --- a described cluster ------------------------------------------------------------------------
cat >"$TMP/c.json" <<'EOF'
{"devices": [{"id": "f", "kind": "cpu", "peak_gflops": 100, "mem_bandwidth_gbs": 20, "memory_gb": 16,
              "tdp_w": 10, "idle_w": 2, "dispatch_us": 0.2, "count": 2},
             {"id": "weak", "kind": "cpu", "peak_gflops": 12, "mem_bandwidth_gbs": 2.4, "memory_gb": 16,
              "tdp_w": 10, "idle_w": 2, "dispatch_us": 1.6}],
 "default_link": {"bandwidth_gbs": 100, "latency_us": 1}}
EOF
"$PO_BIN" plan --cluster "$TMP/c.json" --json --no-cache >"$TMP/t.json" || fail "cluster, time"
"$PO_BIN" plan --cluster "$TMP/c.json" --objective energy --json --no-cache >"$TMP/e.json" || fail "cluster, energy"
nt=$(stage_devices "$TMP/t.json")
ne=$(stage_devices "$TMP/e.json")
echo "time objective: $nt devices; energy objective: $ne devices"
[ "$nt" -eq 3 ] || fail "--objective time should use all three devices: $(cat "$TMP/t.json")"
[ "$ne" -lt "$nt" ] || fail "--objective energy should use fewer devices: $(cat "$TMP/e.json")"
"$PO_BIN" plan --cluster "$TMP/c.json" --objective energy --max-slowdown 10 --no-cache >"$TMP/s.txt" || fail "max-slowdown"
grep -q "objective energy within 10% of the fastest" "$TMP/s.txt" || fail "--max-slowdown: $(head -3 "$TMP/s.txt")"
"$PO_BIN" plan --cluster "$TMP/c.json" --strategy pp --json --no-cache >"$TMP/p.json" || fail "--strategy pp"
grep -q '"strategy":"pp"' "$TMP/p.json" || fail "--strategy pp: $(cat "$TMP/p.json")"
"$PO_BIN" plan --cluster "$TMP/c.json" --model tiny_gpt:layers=2 --batch 4 --objective edp --top 2 --no-cache \
  >"$TMP/g.txt" || fail "tiny_gpt edp"
[ "$(grep -c '^  [0-9]\.' "$TMP/g.txt")" -le 1 ] || fail "--top 2 keeps one alternative: $(cat "$TMP/g.txt")"

# --- errors: one line, non-zero --------------------------------------------------------------
printf '{"devices": [\n  {"id": "g", "type": "A200"}]}\n' >"$TMP/bad.json"
expect_error "bad.json:2:23: devices\[0\].type: \"A200\" is not in the hardware catalog" "$PO_BIN" plan --cluster "$TMP/bad.json"
printf '{"devices": [{"id": "g", "type": "t4"}],\n "links": [{"between": ["g", "h"], "bandwidth_gbs": 1, "latency_us": 1}]}\n' >"$TMP/bad2.json"
expect_error "bad2.json:2:30: links\[0\].between\[1\]: unknown device" "$PO_BIN" plan --cluster "$TMP/bad2.json"
printf '{"devices": [{"id": "g" "type": "t4"}]}\n' >"$TMP/bad3.json"
expect_error "bad3.json:1:" "$PO_BIN" plan --cluster "$TMP/bad3.json"
expect_error "cannot open" "$PO_BIN" plan --cluster "$TMP/missing.json"
printf '{"devices": [{"id": "g", "type": "t4", "memory_gb": 0.001}]}\n' >"$TMP/small.json"
expect_error "no plan fits in memory" "$PO_BIN" plan --cluster "$TMP/small.json" --no-cache
expect_error "--objective: unknown objective \"fast\"" "$PO_BIN" plan --cluster "$TMP/c.json" --objective fast
expect_error "--max-slowdown applies to --objective energy" "$PO_BIN" plan --cluster "$TMP/c.json" --max-slowdown 5
expect_error "exclude each other" "$PO_BIN" plan --cluster "$TMP/c.json" --devices cpu:0
expect_error "--strategy: unknown strategy" "$PO_BIN" plan --cluster "$TMP/c.json" --strategy fastest
expect_error "--model:" "$PO_BIN" plan --model nosuch --cluster "$TMP/c.json"
expect_error "--devices:" "$PO_BIN" plan --devices cpu:4096
expect_error "--top" "$PO_BIN" plan --cluster "$TMP/c.json" --top 0
expect_error "--out" "$PO_BIN" plan --cluster "$TMP/c.json" --out "$TMP/no/such/dir/p.json"
expect_error "unknown option" "$PO_BIN" plan --fast
finish

#!/usr/bin/env bash
# paropt analyze: the table, the JSON fields, the DOT and SVG files, and one-line errors.
source "$(dirname "$0")/lib.sh"

"$PO_BIN" --help | grep -q "analyze" || fail "paropt --help does not list analyze"
"$PO_BIN" analyze --help | grep -q -- "--dot FILE" || fail "paropt analyze --help"

# The table: one row per layer, the totals, memory and the critical path.
"$PO_BIN" analyze --model mnist_mlp --batch 128 >"$TMP/table" 2>"$TMP/err" || fail "analyze (table)"
for want in "^l1 " "^l2 " "^l3 " "^total " "GFLOP per step" "MFLOP per" "memory +peak" "critical " "levels, widest"; do
  grep -Eq "$want" "$TMP/table" || fail "table lacks '$want': $(cat "$TMP/table")"
done
[ -s "$TMP/err" ] && fail "analyze wrote to stderr: $(cat "$TMP/err")"

# --json: one line, one object, with the documented fields; the forward FLOPs are the three GEMMs
# plus bias, ReLU and loss work (README legend).
"$PO_BIN" analyze --model mnist_mlp --batch 128 --json >"$TMP/json" 2>"$TMP/err" || fail "analyze --json"
[ "$(wc -l <"$TMP/json")" -eq 1 ] || fail "--json should print one line"
json=$(cat "$TMP/json")
for key in totals flops_forward flops_backward flops_optimizer flops_per_step flops_per_sample params \
  peak_memory_bytes live_peak_bytes arena_bytes layers name activation_bytes critical_path level_widths; do
  echo "$json" | grep -q "\"$key\":" || fail "JSON lacks $key: $json"
done
field() { echo "$json" | sed -n "s/.*\"totals\":{[^}]*\"$1\":\([0-9.e+]*\).*/\1/p"; }
want_fwd=$((2 * 128 * (784 * 1024 + 1024 * 1024 + 1024 * 10) + 128 * (1024 + 1024 + 10) + 2 * 128 * 1024 + 14 * 128 * 10))
[ "$(field flops_forward)" = "$want_fwd" ] || fail "flops_forward $(field flops_forward), want $want_fwd"
[ "$(field params)" = "1863690" ] || fail "params $(field params)"
[ "$(field flops_optimizer)" = "$((12 * 1863690))" ] || fail "flops_optimizer $(field flops_optimizer)"
echo "$json" | grep -q '"layers":\[{"name":"l1","nodes":[0-9]*,"params":803840,' || fail "layer l1 in $json"

# --nodes lists every node.
"$PO_BIN" analyze --model mnist_mlp:hidden=32 --nodes | grep -q "slack MFLOP" || fail "--nodes table"
"$PO_BIN" analyze --model mnist_mlp:hidden=32 --nodes --json | grep -q '"nodes":\[{"id":0,' || fail "--nodes JSON"

# --dot for the three workloads; Graphviz must accept each when it is installed.
for m in mnist_mlp cifar_cnn tiny_gpt; do
  "$PO_BIN" analyze --model $m --dot "$TMP/$m.dot" >/dev/null 2>"$TMP/err" || fail "--dot $m: $(cat "$TMP/err")"
  head -n 1 "$TMP/$m.dot" | grep -q "^digraph paropt {" || fail "$m.dot is not a digraph"
  grep -q "subgraph cluster_0" "$TMP/$m.dot" || fail "$m.dot has no layer cluster"
  if command -v dot >/dev/null; then
    dot -Tsvg -o "$TMP/$m.svg" "$TMP/$m.dot" 2>"$TMP/err" || fail "dot -Tsvg rejects $m.dot: $(cat "$TMP/err")"
  fi
done
if command -v dot >/dev/null; then
  "$PO_BIN" analyze --model cifar_cnn --svg "$TMP/c.svg" >/dev/null || fail "--svg"
  grep -q "<svg" "$TMP/c.svg" || fail "--svg did not write an SVG"
  ls "$TMP" | grep -q "c.svg\..*\.\|c.svg.dot" && fail "--svg left temporary files: $(ls "$TMP")"
else
  echo "dot not installed: DOT files not rendered (apt-get install graphviz)"
fi

# Without Graphviz --svg says how to get it, before any work.
expect_error "apt-get install graphviz" env PATH=/nonexistent "$PO_BIN" analyze --svg "$TMP/x.svg"
[ -e "$TMP/x.svg" ] && fail "--svg without dot created a file"

# Bad input: one line, non-zero exit.
expect_error "unknown model" "$PO_BIN" analyze --model nope
expect_error "--model" "$PO_BIN" analyze --model mnist_mlp:wings=2
expect_error "--batch" "$PO_BIN" analyze --batch 0
expect_error "--batch" "$PO_BIN" analyze --batch many
expect_error "--optimizer" "$PO_BIN" analyze --optimizer lbfgs
expect_error "--momentum" "$PO_BIN" analyze --momentum 0.9
expect_error "--dot" "$PO_BIN" analyze --dot /nonexistent/dir/g.dot
expect_error "--dot" "$PO_BIN" analyze --dot "$TMP"
expect_error "--svg" "$PO_BIN" analyze --svg /nonexistent/dir/g.svg
expect_error "unknown option" "$PO_BIN" analyze --colour
expect_error "needs a value" "$PO_BIN" analyze --dot
expect_error "unexpected argument" "$PO_BIN" analyze extra
finish

#!/usr/bin/env bash
# A training loop whose graph changes between steps: paropt train --seq-lens. Each length's
# step must be the step a model of that length takes from the same state (checked against runs
# of one length each, chained by hand); planned runs plan each graph once; bad input is one line.
source "$(dirname "$0")/lib.sh"
export XDG_CACHE_HOME="$TMP/cache" # device figures: a cache of the test's own
command -v python3 >/dev/null || { echo "skipped: python3 is needed to make the data and compare"; exit 77; }
PY=python3
SPEC=tiny_gpt:vocab=32,d_model=16,layers=1,heads=2

# Token data: input.x / input.y int64 [4, 16] (d16), and the same cropped to 8 tokens (d8).
$PY - "$TMP" <<'EOF' || fail "making the data"
import json, random, struct, sys
def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, rows in tensors.items():
        b = b"".join(struct.pack("<%dq" % len(r), *r) for r in rows)
        header[name] = {"dtype": "I64", "shape": [len(rows), len(rows[0])], "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
rng = random.Random(7)
x = [[rng.randrange(32) for _ in range(17)] for _ in range(4)]
save(sys.argv[1] + "/d16.safetensors", {"input.x": [r[:16] for r in x], "input.y": [r[1:] for r in x]})
save(sys.argv[1] + "/d8.safetensors", {"input.x": [r[:8] for r in x], "input.y": [r[1:9] for r in x]})
EOF

# compare A B TOL: A and B hold the same tensors (F32; safetensors parsed by hand: 8-byte
# little-endian header length, JSON header, raw data), no element differing by more than TOL.
compare() {
  $PY - "$1" "$2" "$3" <<'EOF'
import json, struct, sys
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n]); base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__": continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack("<%df" % ((b - a) // 4), data[base + a:base + b]))
    return out
x, y, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
assert sorted(x) == sorted(y), (sorted(x), sorted(y))
worst = 0.0
for k in x:
    assert x[k][0] == y[k][0], (k, x[k][0], y[k][0])
    worst = max([worst] + [abs(p - q) for p, q in zip(x[k][1], y[k][1])])
print("%d tensors, largest difference %.3g" % (len(x), worst))
sys.exit(0 if worst <= tol else 1)
EOF
}
[ "$failures" -eq 0 ] || finish
D16=$TMP/d16.safetensors
D8=$TMP/d8.safetensors
COMMON=(--batch 4 --seed 5)

# A starting point: any parameters of the max_seq=16 model.
"$PO_BIN" train --model "$SPEC,seq=16" --data "$D16" "${COMMON[@]}" --steps 1 --optimizer sgd --lr 0.5 \
  --save "$TMP/init.safetensors" >/dev/null 2>"$TMP/err" || fail "init run: $(tail -1 "$TMP/err")"

# (a) SGD (no optimizer state): --seq-lens 8,16 for two steps == a seq=8 step, then a seq=16 step
# from its parameters. (The second batch's rows come in another order, so rounding may differ.)
"$PO_BIN" train --model "$SPEC" --data "$D16" "${COMMON[@]}" --init "$TMP/init.safetensors" --optimizer sgd \
  --lr 0.1 --seq-lens 8,16 --steps 2 --save "$TMP/v.safetensors" --json >"$TMP/v.json" 2>"$TMP/err" ||
  fail "varlen sgd run: $(tail -1 "$TMP/err")"
[ "$(grep -c '^graph seq=' "$TMP/err")" -eq 2 ] || fail "expected two 'graph seq=' lines: $(cat "$TMP/err")"
"$PO_BIN" train --model "$SPEC,seq=8,max_seq=16" --data "$D8" "${COMMON[@]}" --init "$TMP/init.safetensors" \
  --optimizer sgd --lr 0.1 --steps 1 --save "$TMP/h1.safetensors" >/dev/null 2>"$TMP/err" ||
  fail "seq=8 step: $(tail -1 "$TMP/err")"
"$PO_BIN" train --model "$SPEC,seq=16" --data "$D16" "${COMMON[@]}" --init "$TMP/h1.safetensors" \
  --optimizer sgd --lr 0.1 --steps 1 --save "$TMP/h2.safetensors" >/dev/null 2>"$TMP/err" ||
  fail "seq=16 step: $(tail -1 "$TMP/err")"
compare "$TMP/v.safetensors" "$TMP/h2.safetensors" 1e-6 || fail "sgd: --seq-lens 8,16 differs from the steps by hand"
compare "$TMP/v.safetensors" "$TMP/h1.safetensors" 1e-4 >/dev/null && fail "sgd: the seq=16 step changed nothing"
# (Each step ends an epoch of d16, evaluated at the longest length: that evaluation meets seq=16
# first, so step 2 switches to a graph met before: one hit.)
tail -n 1 "$TMP/v.json" | $PY -c 'import json,sys; d=json.loads(sys.stdin.read())
assert d["seq_lens"] == [8, 16] and d["graphs"] == 2 and d["plan_cache"] == {"hits": 1, "misses": 2}, d
assert d["config"]["seq"] == 16 and d["config"]["max_seq"] == 16, d["config"]' || fail "sgd summary"

# (a) Adam: optimizer state and step count carry over. By hand: a seq=8 step with --out (the
# checkpoint keeps Adam's moments and the step), then the run's settings switched to the seq=16
# model and data and resumed for one more step: the same batch, so the same bits.
"$PO_BIN" train --model "$SPEC" --data "$D16" "${COMMON[@]}" --init "$TMP/init.safetensors" --optimizer adam \
  --lr 0.01 --seq-lens 8,16 --steps 2 --save "$TMP/va.safetensors" >/dev/null 2>"$TMP/err" ||
  fail "varlen adam run: $(tail -1 "$TMP/err")"
"$PO_BIN" train --model "$SPEC,seq=8,max_seq=16" --data "$D8" "${COMMON[@]}" --init "$TMP/init.safetensors" \
  --optimizer adam --lr 0.01 --steps 1 --out "$TMP/ha" >/dev/null 2>"$TMP/err" || fail "adam seq=8 step: $(tail -1 "$TMP/err")"
$PY - "$TMP/ha/settings.json" "$D16" <<'EOF' || fail "editing settings.json"
import json, sys
s = json.load(open(sys.argv[1]))
assert ",seq=8," in s["model"] and "max_seq=16" in s["model"], s["model"]
s["model"] = s["model"].replace(",seq=8,", ",seq=16,"); s["data"] = sys.argv[2]; s["steps"] = 2
json.dump(s, open(sys.argv[1], "w"))
EOF
"$PO_BIN" train --resume "$TMP/ha" --save "$TMP/ha.safetensors" >/dev/null 2>"$TMP/err" ||
  fail "adam seq=16 step (resumed): $(tail -1 "$TMP/err")"
compare "$TMP/va.safetensors" "$TMP/ha.safetensors" 0 || fail "adam: --seq-lens 8,16 differs from the steps by hand"

# One length is the plain run, bit for bit.
"$PO_BIN" train --model "$SPEC" --data "$D16" "${COMMON[@]}" --seq-lens 16 --steps 3 --save "$TMP/one.safetensors" \
  >/dev/null 2>&1 || fail "--seq-lens 16"
"$PO_BIN" train --model "$SPEC,seq=16" --data "$D16" "${COMMON[@]}" --steps 3 --save "$TMP/plain.safetensors" \
  >/dev/null 2>&1 || fail "plain seq=16 run"
compare "$TMP/one.safetensors" "$TMP/plain.safetensors" 0 || fail "--seq-lens 16 differs from a seq=16 run"

# A run directory: metrics name each step's length; a resumed run ends as an uninterrupted one.
"$PO_BIN" train --model "$SPEC" --data "$D16" "${COMMON[@]}" --seq-lens 8,16,12 --steps 6 --log-every 1 \
  --out "$TMP/run" >/dev/null 2>"$TMP/err" || fail "run with --out: $(tail -1 "$TMP/err")"
[ "$(grep -o '"seq":[0-9]*' "$TMP/run/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')" = "8 16 12 8 16 12 " ] ||
  fail "metrics.jsonl lengths: $(grep -o '"seq":[0-9]*' "$TMP/run/metrics.jsonl" | tr '\n' ' ')"
grep -q '"test_loss"' "$TMP/run/metrics.jsonl" || fail "no evaluation recorded"
grep -q '"graphs": 3' "$TMP/run/summary.json" || fail "summary.json lacks graphs 3"
"$PO_BIN" train --model "$SPEC" --data "$D16" "${COMMON[@]}" --seq-lens 8,16,12 --steps 4 --out "$TMP/part" \
  >/dev/null 2>&1 || fail "partial run"
$PY -c 'import json,sys; p=sys.argv[1]; s=json.load(open(p)); s["steps"]=6; json.dump(s, open(p, "w"))' \
  "$TMP/part/settings.json"
"$PO_BIN" train --resume "$TMP/part" >/dev/null 2>"$TMP/err" || fail "resume: $(tail -1 "$TMP/err")"
compare "$TMP/run/model.safetensors" "$TMP/part/model.safetensors" 0 || fail "resumed --seq-lens run differs"

# (b) Planned: each graph is planned once (two misses), every later switch back to a graph met
# before takes its plan (steps 3..8: six hits).
if [ "$(nproc)" -ge 2 ]; then
  "$PO_BIN" train --model "$SPEC" --batch 4 --devices cpu:0,cpu:1 --plan auto --calibrate 1 --seq-lens 8,16,8,16 \
    --steps 8 --json >"$TMP/p.json" 2>"$TMP/err" || fail "planned run: $(tail -1 "$TMP/err")"
  tail -n 1 "$TMP/p.json" | $PY -c 'import json,math,sys; d=json.loads(sys.stdin.read())
assert d["graphs"] == 2 and d["plan_cache"] == {"hits": 6, "misses": 2}, (d["graphs"], d["plan_cache"])
assert d["final_loss"] is not None and math.isfinite(d["final_loss"]), d["final_loss"]' ||
    fail "planned summary: $(tail -c 400 "$TMP/p.json")"
  [ "$(grep -c '^graph seq=[0-9]*: planned (.*), cache miss$' "$TMP/err")" -eq 2 ] ||
    fail "expected two 'planned ..., cache miss' lines: $(grep '^graph' "$TMP/err")"
  # Parallel plans, one per graph, give the single-worker run's parameters (SGD, so rounding
  # stays small): data parallel with fixed shares, and each length's best pipeline.
  W64=(--model tiny_gpt:vocab=32,d_model=64,layers=1,heads=2 --batch 4 --seq-lens 8,16,12 --steps 6 --optimizer sgd
    --lr 0.1 --calibrate 0)
  "$PO_BIN" train "${W64[@]}" --save "$TMP/w1.safetensors" >/dev/null 2>&1 || fail "one-worker run"
  "$PO_BIN" train "${W64[@]}" --devices cpu:0,cpu:1 --plan dp --shares 1,1 --save "$TMP/wdp.safetensors" \
    >/dev/null 2>"$TMP/err" || fail "dp run: $(tail -1 "$TMP/err")"
  compare "$TMP/w1.safetensors" "$TMP/wdp.safetensors" 1e-5 || fail "--plan dp --seq-lens differs from one worker"
  "$PO_BIN" train "${W64[@]}" --devices cpu:0,cpu:1 --plan pp --save "$TMP/wpp.safetensors" \
    >/dev/null 2>"$TMP/err" || fail "pp run: $(tail -1 "$TMP/err")"
  compare "$TMP/w1.safetensors" "$TMP/wpp.safetensors" 1e-5 || fail "--plan pp --seq-lens differs from one worker"
  # --plan-cache DIR: a second run finds both plans on disk (no calibration, so the key is the
  # same run to run); the first run primes the device figures.
  for run in prime first second; do
    dir=$TMP/plans; [ $run = prime ] && dir=$TMP/plans-prime
    "$PO_BIN" train --model "$SPEC" --batch 4 --devices cpu:0,cpu:1 --plan auto --calibrate 0 --seq-lens 8,16 \
      --steps 4 --plan-cache "$dir" --json >"$TMP/$run.json" 2>"$TMP/err-$run" || fail "--plan-cache $run: $(tail -1 "$TMP/err-$run")"
  done
  grep -q '"plan_cache":{"hits":2,"misses":2}' "$TMP/first.json" || fail "first run: $(tail -c 200 "$TMP/first.json")"
  grep -q '"plan_cache":{"hits":4,"misses":0}' "$TMP/second.json" || fail "second run: $(tail -c 200 "$TMP/second.json")"
  [ "$(grep -c 'cache hit$' "$TMP/err-second")" -eq 2 ] || fail "second run: $(grep '^graph' "$TMP/err-second")"
else
  echo "planned checks skipped: one core"
fi

# (c) Bad input: one line each.
expect_error "--seq-lens" "$PO_BIN" train --model "$SPEC" --seq-lens 0
expect_error "--seq-lens" "$PO_BIN" train --model "$SPEC" --seq-lens abc
expect_error "--seq-lens" "$PO_BIN" train --model "$SPEC" --seq-lens 8,,16
expect_error "model mnist_mlp takes no sequences" "$PO_BIN" train --model mnist_mlp --seq-lens 8
expect_error "exceeds the model's max_seq=8" "$PO_BIN" train --model "$SPEC,max_seq=8" --seq-lens 8,16
expect_error "max_seq=8 must be at least seq=16" "$PO_BIN" train --model "$SPEC,seq=16,max_seq=8" --steps 1
expect_error "24 is longer than the data's sequences (16 tokens)" "$PO_BIN" train --model "$SPEC" --data "$D16" \
  --batch 4 --seq-lens 8,24
expect_error "must be the data's sequence length, 16" "$PO_BIN" train --model "$SPEC" --data "$D16" --batch 4 \
  --seq-lens 8
expect_error "--seq-lens: not with --slowdown-at" "$PO_BIN" train --model "$SPEC" --seq-lens 8 --devices cpu:0 \
  --slowdown-at 2:cpu:0:2
expect_error "--plan-cache needs --devices" "$PO_BIN" train --model "$SPEC" --plan-cache "$TMP/pc"
expect_error "only --save and --json" "$PO_BIN" train --resume "$TMP/run" --seq-lens 8
finish

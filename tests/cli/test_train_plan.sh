#!/usr/bin/env bash
# paropt train --plan: the plan is printed and trained with; the --json summary and the run
# directory carry the plan, predicted against measured step time, per-device busy fractions and
# energy with its source; trace.json is a Chrome trace with one track per device; an emulated
# slow device is discovered by measurement; errors are one line.
source "$(dirname "$0")/lib.sh"
[ "$(nproc)" -ge 2 ] || { echo "skipped: one core"; exit 77; }
MODEL=(--model mnist_mlp:d_in=256,hidden=512 --batch 64)

"$PO_BIN" train "${MODEL[@]}" --steps 30 --devices cpu:0,cpu:1 --plan auto --out "$TMP/run" --log-every 5 --json \
  >"$TMP/out" 2>"$TMP/err" || fail "--plan auto failed: $(tail -3 "$TMP/err")"
for w in "^plan       " "^predicted  .* ms per step" "^why        Chosen for time"; do
  grep -q "$w" "$TMP/err" || fail "the plan is not printed before training ('$w'): $(head -5 "$TMP/err")"
done
tail -n 1 "$TMP/out" >"$TMP/summary.json"
python3 - "$TMP/summary.json" "$TMP/run" <<'EOF' || fail "summary / run directory checks"
import json, sys, os
s = json.load(open(sys.argv[1]))
run = sys.argv[2]
def need(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)
plan = s["plan"]
need(isinstance(plan, dict) and plan["strategy"] in ("single", "dp", "opsplit"), "plan object: %r" % (plan,))
used = [r["device"] for st in plan["stages"] for r in st["replicas"]]
need(set(used) <= {"cpu:0", "cpu:1"}, "plan devices %r" % used)
need(abs(sum(r["share"] for r in plan["stages"][0]["replicas"]) - 1) < 1e-6, "shares sum to 1")
need(s["predicted_step_ms"] == round(plan["predicted"]["step_ms"], 3), "predicted_step_ms is the plan's")
need(s["measured_step_ms"] == s["ms_per_step"], "measured_step_ms")
err = s["measured_step_ms"] / s["predicted_step_ms"] - 1
need(abs(s["prediction_error"] - err) < 1e-3 * max(1, abs(err)) + 1e-3, "prediction_error %r vs %r" % (s["prediction_error"], err))
need(set(s["busy"]) == set(used) and all(0 < b <= 1.05 for b in s["busy"].values()), "busy %r" % s["busy"])
need(s["energy_j"] > 0 and s["energy_source"].split("+")[0] in ("measured:rapl", "measured:nvml", "estimated:model"),
     "energy %r %r" % (s["energy_j"], s["energy_source"]))
print("plan %s over %s; predicted %.3f ms, measured %.3f ms (error %+.1f%%); busy %s; %.3g J (%s)" % (
    plan["strategy"], used, s["predicted_step_ms"], s["measured_step_ms"], 100 * err, s["busy"], s["energy_j"],
    s["energy_source"]))
# The run directory keeps the same summary and the plan.
need(json.load(open(os.path.join(run, "summary.json"))) == s, "summary.json differs from the --json line")
def same_stages(a, b):  # plan.json keeps shares to 10 digits, the summary line to 9
    strip = lambda st: [dict(x, replicas=[dict(r, share=round(r["share"], 6)) for r in x["replicas"]]) for x in st]
    return strip(a) == strip(b)
need(same_stages(json.load(open(os.path.join(run, "plan.json")))["stages"], plan["stages"]), "plan.json")
# metrics.jsonl: step time, memory, power and energy with its source on every step record.
steps = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if '"loss"' in l]
need(len(steps) == 6, "%d step records" % len(steps))
for r in steps:
    for k in ("step_ms", "rss_bytes", "power_w", "energy_j", "energy_source") + (("workers",) if len(used) > 1 else ()):
        need(k in r, "metrics record lacks %s: %r" % (k, r))
# trace.json: Chrome trace, one named track per device, op slices, all-reduce slices, flows in pairs.
t = json.load(open(os.path.join(run, "trace.json")))
ev = t["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
need(sorted(names.values()) == sorted(used), "track names %r" % names)
x = [e for e in ev if e["ph"] == "X"]
need(all(e["dur"] >= 0 and e["ts"] >= 0 and "step" in e["args"] for e in x), "slice fields")
traced = sorted({e["args"]["step"] for e in x})
need(30 in traced and 1 in traced and len(traced) <= 8, "traced steps %r" % traced)
need({e["tid"] for e in x} == set(names), "slices on every track")
need({"linear", "relu"} <= {e["name"] for e in x}, "op slices")
if plan["strategy"] == "dp":
    need(any(e["name"] == "all-reduce" for e in x), "all-reduce slices")
    s_ids = sorted(e["id"] for e in ev if e["ph"] == "s")
    f_ids = sorted(e["id"] for e in ev if e["ph"] == "f")
    need(s_ids and s_ids == f_ids, "flow start/finish pairs")
if plan["strategy"] == "opsplit":  # every device applies its dealt part of the optimizer
    need({e["tid"] for e in x if e["name"] == "optimizer"} == set(names), "optimizer slices on every track")
# Slices of one track within one step do not overlap (a track is one worker's timeline), apart
# from a one-device run's "step" slice, which encloses its ops.
for tid in names:
    for step in traced:
        sl = sorted((e["ts"], e["ts"] + e["dur"]) for e in x
                    if e["tid"] == tid and e["args"]["step"] == step and e["cat"] != "step")
        need(all(a[1] <= b[0] + 1e-3 for a, b in zip(sl, sl[1:])), "overlapping slices on track %d" % tid)
EOF

# TensorBoard scalars: TFRecord framing with masked CRC-32C, read back here by an independent
# reader (Python, CRC-32C from its polynomial), every record's CRCs checked.
python3 - "$TMP/run" <<'EOF' || fail "TensorBoard events file"
import glob, json, struct, sys
files = glob.glob(sys.argv[1] + "/events.out.tfevents.*")
if len(files) != 1: print("FAIL: events files", files); sys.exit(1)
table = []
for i in range(256):
    c = i
    for _ in range(8): c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b: c = table[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
def masked(b):
    c = crc32c(b)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
assert masked(b"\x1a\x11CRC test, one two") == 0x5794D08A
def varint(b, i):
    v = s = 0
    while True:
        v |= (b[i] & 0x7F) << s; s += 7; i += 1
        if b[i - 1] < 0x80: return v, i
def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i); f, wt = key >> 3, key & 7
        if wt == 0: v, i = varint(b, i)
        elif wt == 1: v = b[i:i + 8]; i += 8
        elif wt == 5: v = b[i:i + 4]; i += 4
        elif wt == 2: n, i = varint(b, i); v = b[i:i + n]; i += n
        else: raise ValueError("wire type %d" % wt)
        yield f, v
data = open(files[0], "rb").read()
i, events = 0, []
while i < len(data):
    hdr = data[i:i + 8]; (n,) = struct.unpack("<Q", hdr)
    assert struct.unpack("<I", data[i + 8:i + 12])[0] == masked(hdr), "length CRC"
    body = data[i + 12:i + 12 + n]
    assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == masked(body), "data CRC"
    i += 16 + n
    events.append(dict(fields(body)))
assert events[0].get(3) == b"brain.Event:2", events[0]
scalars = {}
for e in events[1:]:
    step = e.get(2, 0)
    for f, v in fields(e[5]):
        val = dict(fields(v))
        scalars.setdefault(val[1].decode(), []).append((step, struct.unpack("<f", val[2])[0]))
print("events:", {k: len(v) for k, v in scalars.items()})
assert [s for s, _ in scalars["train/loss"]] == [5, 10, 15, 20, 25, 30], scalars["train/loss"]
assert any(k.startswith("energy/power_w [") and k.endswith("]") for k in scalars), "power with its source"
m = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
for (step, v), r in zip(scalars["train/loss"], m):
    assert step == r["step"] and abs(v - r["loss"]) <= 1e-6 * abs(r["loss"]), (step, v, r)
EOF

# A data-parallel run's trace: all-reduce slices and gradient transfers as flows, in pairs (the
# automatic plan above may be an operator split, which has neither).
"$PO_BIN" train "${MODEL[@]}" --steps 4 --devices cpu:0,cpu:1 --plan dp --calibrate 0 --out "$TMP/dprun" >/dev/null \
  2>"$TMP/err" || fail "--plan dp with --out: $(tail -3 "$TMP/err")"
python3 - "$TMP/dprun/trace.json" <<'EOF' || fail "data-parallel trace"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
x = [e for e in ev if e["ph"] == "X"]
assert any(e["name"] == "all-reduce" for e in x), "no all-reduce slices"
s_ids = sorted(e["id"] for e in ev if e["ph"] == "s")
f_ids = sorted(e["id"] for e in ev if e["ph"] == "f")
assert s_ids and s_ids == f_ids, "flows not in start/finish pairs: %r %r" % (s_ids, f_ids)
EOF

# A device three times slower (emulated) is found by measuring it: the planner gives it the
# smaller share before the first step.
"$PO_BIN" train "${MODEL[@]}" --steps 3 --devices cpu:0,cpu:1:slowdown=3 --plan auto --json >"$TMP/out" 2>"$TMP/err" \
  || fail "slow device: $(tail -3 "$TMP/err")"
python3 - "$TMP/out" <<'EOF' || fail "the slow device's planned share"
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
reps = {r["device"]: r["share"] for r in s["plan"]["stages"][0]["replicas"]}
print("planned shares with cpu:1 three times slower:", reps)
if s["plan"]["strategy"] in ("dp", "opsplit") and not reps["cpu:1"] < 0.45:
    print("FAIL: cpu:1 should get clearly less than half"); sys.exit(1)
if s["plan"]["strategy"] == "single" and "cpu:0" not in reps:
    print("FAIL: a single-device plan should use the fast cpu:0"); sys.exit(1)
EOF

# --plan single pins to the first device; the plan file round trip: paropt plan --out, then train.
"$PO_BIN" plan "${MODEL[@]}" --devices cpu:0,cpu:1 --strategy dp --out "$TMP/p.json" >/dev/null 2>&1 || fail "paropt plan --out"
"$PO_BIN" train "${MODEL[@]}" --steps 3 --plan "$TMP/p.json" --calibrate 0 --json >"$TMP/out" 2>"$TMP/err" \
  || fail "--plan FILE: $(tail -2 "$TMP/err")"
grep -q '"strategy":"dp"' "$TMP/out" || fail "--plan FILE did not train its dp plan"

# A pipeline re-partitions its layers when a device slows down mid-run: from a plan file giving
# cpu:1 two of mnist_mlp's three layers, and from the planner's pipeline (--plan pp) of tiny_gpt's
# six. Each rebalance record names every device's layer range; the slow device's last range is
# smaller than the plan gave it (when it had more than one) and, from the plan file (which gives
# it the heavier half already), so is its first, and it is never given more. The planner's
# partition may first move the other way: its calibration can read cpu:1 faster than the steps
# before the slowdown find it (CI saw 3 -> 4 -> 1 layers). The slowdown is 8x: at
# 4x, cpu:1 takes about 26 ms for the layer it gives up (ASan build), and cpu:0, loaded by a busy
# loop, took 22 ms for its two; a neighbouring test loading cpu:0 a little more (ctest runs two at
# once) makes giving the layer back the right move for what is measured, and CI saw a run end
# where it began.
printf '{"strategy": "pp", "objective": "time", "batch": 64, "micro_batches": 2, "schedule": "1f1b",\n "stages": [{"layers": [0, 0], "replicas": [{"device": "cpu:0", "share": 1}]}, {"layers": [1, 2], "replicas": [{"device": "cpu:1", "share": 1}]}]}\n' >"$TMP/pp.json"
"$PO_BIN" train "${MODEL[@]}" --steps 40 --devices cpu:0,cpu:1 --plan "$TMP/pp.json" --calibrate 0 \
  --slowdown-at 5:cpu:1:8 --out "$TMP/pp_file" >/dev/null 2>"$TMP/err" || fail "pp plan file with --slowdown-at: $(tail -2 "$TMP/err")"
grep -q "step 5: cpu:1 now runs 8x slower" "$TMP/err" || fail "the pipeline's slowdown was not announced"
grep -q 're-partitioned the pipeline by measured speed: \[{"device":"cpu:0","layers":"0-' "$TMP/err" \
  || fail "no re-partition message: $(grep -v '^epoch' "$TMP/err" | tail -3)"
GPT=(--model tiny_gpt:vocab=64,d_model=64,layers=4,heads=4,seq=32 --batch 8)
"$PO_BIN" train "${GPT[@]}" --steps 40 --devices cpu:0,cpu:1 --plan pp --calibrate 1 --slowdown-at 5:cpu:1:8 \
  --out "$TMP/pp_auto" >/dev/null 2>"$TMP/err" || fail "--plan pp with --slowdown-at: $(tail -2 "$TMP/err")"
for run in pp_file pp_auto; do
  python3 - "$TMP/$run" <<'EOF' || fail "$run: the slow device's layers after re-partitioning"
import json, os, sys
run = sys.argv[1]
def need(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)
plan = json.load(open(os.path.join(run, "plan.json")))
need(plan["strategy"] == "pp", "not a pipeline: %r" % plan["strategy"])
devices = [st["replicas"][0]["device"] for st in plan["stages"]]
initial = {d: st["layers"][1] - st["layers"][0] + 1 for d, st in zip(devices, plan["stages"])}
n_layers = plan["stages"][-1]["layers"][1] + 1
records = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
events = [r for r in records if r.get("event") == "rebalance"]
def layers(w):
    a, b = map(int, w["layers"].split("-"))
    return b - a + 1
for e in events:
    ws = e["workers"]
    need([w["device"] for w in ws] == devices, "devices kept in order: %r" % ws)
    need(ws[0]["layers"].startswith("0-") and sum(layers(w) for w in ws) == n_layers, "ranges cover the model: %r" % ws)
    # A re-partition before the slowdown is not an error: under ctest -j 2 a neighbouring test
    # can load a core for a window and the pipeline rightly moves a layer off it (CI saw it in
    # test_pp_rebalance). Such a move in pp_file can only take a layer from cpu:1 (cpu:0 keeps one).
    if e["step"] < 5:
        print("a re-partition before the slowdown (a loaded core?): %r" % e)
    slow = [layers(w) for w in ws if w["device"] == "cpu:1"][0]
    if os.path.basename(run) == "pp_file":
        need(slow <= initial["cpu:1"], "cpu:1 given more layers (%d) than the plan's %d" % (slow, initial["cpu:1"]))
last_step = [r for r in records if "loss" in r][-1]
final = [layers(w) for w in last_step["workers"] if w["device"] == "cpu:1"][0]
print("%s: the plan gave cpu:1 %d of %d layers; re-partitioned at steps %s; cpu:1 ends with %d" % (
    os.path.basename(run), initial["cpu:1"], n_layers, [e["step"] for e in events], final))
if initial["cpu:1"] > 1:
    need(events, "cpu:1, eight times slower, was never re-partitioned")
    if os.path.basename(run) == "pp_file":
        first = [layers(w) for w in events[0]["workers"] if w["device"] == "cpu:1"][0]
        need(first < initial["cpu:1"], "the first re-partition gave cpu:1 %d layers, the plan %d" % (first, initial["cpu:1"]))
    # Most steps after the first re-partition give cpu:1 fewer layers than the plan (not only the
    # last: under a loaded machine, as CI's parallel tests make it, a late re-partition may move a
    # layer back: seen [9, 14, 23, 40] ending with the plan's 3 of 6).
    after = [r for r in records if "loss" in r and r.get("step", 0) > events[0]["step"]]
    fewer = sum(1 for r in after if [layers(w) for w in r["workers"] if w["device"] == "cpu:1"][0] < initial["cpu:1"])
    need(after and 2 * fewer >= len(after), "cpu:1, eight times slower, had fewer layers than the plan's %d in only %d of %d steps" % (initial["cpu:1"], fewer, len(after)))
EOF
done

expect_error "--plan hybrid: no plan of the requested strategies exists for these devices (a hybrid plan needs four devices" \
  "$PO_BIN" train "${MODEL[@]}" --steps 1 --devices cpu:0,cpu:1 --plan hybrid --calibrate 0
# --plan opsplit: the best operator split over the devices, trained as planned.
"$PO_BIN" train "${MODEL[@]}" --steps 2 --devices cpu:0,cpu:1 --plan opsplit --calibrate 0 --json >"$TMP/out" 2>"$TMP/err" \
  || fail "--plan opsplit: $(tail -2 "$TMP/err")"
grep -q '"strategy":"opsplit"' "$TMP/out" || fail "--plan opsplit did not train an operator split"
expect_error "neither auto, single, dp" "$PO_BIN" train --plan "$TMP/missing.json"
printf '{"strategy": "dp", "objective": "time", "batch": 64, "micro_batches": 1, "schedule": "none", "stages": [{"layers": [0, 2], "replicas": [{"device": "cpu:9", "share": 1}]}]}\n' >"$TMP/bad.json"
expect_error "cpu:9" "$PO_BIN" train "${MODEL[@]}" --steps 1 --devices cpu:0,cpu:1 --plan "$TMP/bad.json" --calibrate 0
printf '{"strategy": "dp", "objective": "time", "batch": 64,\n "stages": [}\n' >"$TMP/bad2.json"
expect_error "bad2.json:2:" "$PO_BIN" train "${MODEL[@]}" --steps 1 --plan "$TMP/bad2.json" --calibrate 0

# On a machine with GPUs (the fake CUDA driver and NVML found first on the library path: two
# GPUs), training with the default devices runs on the CPU cores: auto leaves the GPUs out until
# the runtime can train on them. A GPU named explicitly is a one-line error.
mkdir -p "$TMP/gpulib"
ln -s "$PO_FAKE_CUDA" "$TMP/gpulib/libcuda.so.1"
ln -s "$PO_FAKE_NVML" "$TMP/gpulib/libnvidia-ml.so.1"
gpu_env=(env LD_LIBRARY_PATH="$TMP/gpulib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
"${gpu_env[@]}" "$PO_BIN" devices --devices cuda:0 --json 2>/dev/null | grep -q '"id":"cuda:0"' ||
  fail "the fake GPU libraries are not found on the library path"
for p in dp auto; do
  "${gpu_env[@]}" "$PO_BIN" train "${MODEL[@]}" --steps 2 --plan $p --calibrate 0 --json >"$TMP/gpu_$p" 2>"$TMP/gpu_$p.err" ||
    fail "--plan $p on a machine with GPUs: $(tail -2 "$TMP/gpu_$p.err")"
  tail -n 1 "$TMP/gpu_$p" | grep -q '"device":"cuda' && fail "--plan $p trained on a GPU: $(tail -n 1 "$TMP/gpu_$p")"
  tail -n 1 "$TMP/gpu_$p" | grep -q '"device":"cpu:0"' || fail "--plan $p did not train on cpu:0: $(tail -n 1 "$TMP/gpu_$p")"
done
expect_error "cuda:0: the runtime trains on CPU devices only so far" \
  "${gpu_env[@]}" "$PO_BIN" train "${MODEL[@]}" --steps 1 --devices cpu:0,cuda:0 --calibrate 0
"${gpu_env[@]}" "$PO_EXAMPLE_PARALLEL" auto time >"$TMP/gpu_example" 2>&1 ||
  fail "the parallel example on a machine with GPUs: $(tail -3 "$TMP/gpu_example")"

expect_error "--max-slowdown applies to --objective energy" "$PO_BIN" train --plan auto --max-slowdown 5
expect_error "--objective" "$PO_BIN" train --plan auto --objective fastest
expect_error "--calibrate" "$PO_BIN" train --plan auto --calibrate -1
finish

#!/usr/bin/env bash
# paropt bench: a --quick suite of one tiny workload over two cores (one where there is one) with a
# fixture PyTorch peer file. results.json must hold the machine, every run's exact command and its
# summary, and a table whose every figure is recomputed here, independently, from those summaries;
# an embedded summary must be what that command prints. report.html must be well-formed, have its
# sections and charts, and load and run nothing. A failing run leaves an earlier output untouched;
# bad input is one error line before any run; torch_bench.sh skips cleanly without torch.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skipped: python3 is needed to check the results"; exit 77; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=mnist_mlp:d_in=64,hidden=48,batch=32 # each run well under a second
DEVICES=cpu:0
[ "$(nproc)" -ge 2 ] && DEVICES=cpu:0,cpu:1 || echo "one core: the two-device runs are not tested"

"$PO_BIN" --help | grep -q "^  bench " || fail "paropt --help does not list bench"
"$PO_BIN" bench --help | grep -q "^usage: paropt bench \[--workloads LIST\]" || fail "paropt bench --help"

# --- bad input: one line, exit status 2, no run started, nothing created ------------------------
touch "$TMP/afile"
mkdir "$TMP/other" && touch "$TMP/other/notes.txt"
printf '{"workload": "mnist_mlp", "threads": 1, "ms_per_step": 2}\n{bad\n' >"$TMP/bad_json.jsonl"
printf '{"workload": "mnist_mlp", "threads": 0, "ms_per_step": 2}\n' >"$TMP/bad_threads.jsonl"
printf '{"workload": "mnist_mlp", "threads": 1}\n' >"$TMP/no_ms.jsonl"
printf '[1, 2]\n' >"$TMP/array.jsonl"
: >"$TMP/empty.jsonl"
E=(--quick --out "$TMP/never")
expect_error 'unknown model "nope"' "$PO_BIN" bench "${E[@]}" --workloads mnist_mlp,nope
expect_error 'has no key "foo"' "$PO_BIN" bench "${E[@]}" --workloads mnist_mlp:foo=1
expect_error '"hidden=3" is not a model name' "$PO_BIN" bench "${E[@]}" --workloads hidden=3
expect_error 'given twice' "$PO_BIN" bench "${E[@]}" --workloads mnist_mlp,mnist_mlp
expect_error '--devices: .*cpu:4096' "$PO_BIN" bench "${E[@]}" --devices cpu:4096
expect_error '--devices: .*cpu:x' "$PO_BIN" bench "${E[@]}" --devices cpu:x
expect_error '--out: cannot create' "$PO_BIN" bench --out "$TMP/afile/sub"
expect_error '--out: .* is not a directory' "$PO_BIN" bench --out "$TMP/afile"
expect_error '--out: .* is not empty' "$PO_BIN" bench --out "$TMP/other"
expect_error '--peer: cannot open' "$PO_BIN" bench "${E[@]}" --peer "$TMP/missing.jsonl"
expect_error '--peer .*bad_json.jsonl:2: not a JSON object' "$PO_BIN" bench "${E[@]}" --peer "$TMP/bad_json.jsonl"
expect_error '--peer .*bad_threads.jsonl:1: a record needs' "$PO_BIN" bench "${E[@]}" --peer "$TMP/bad_threads.jsonl"
expect_error '--peer .*no_ms.jsonl:1: a record needs' "$PO_BIN" bench "${E[@]}" --peer "$TMP/no_ms.jsonl"
expect_error '--peer .*array.jsonl:1: not a JSON object' "$PO_BIN" bench "${E[@]}" --peer "$TMP/array.jsonl"
expect_error '--peer .*empty.jsonl: no records' "$PO_BIN" bench "${E[@]}" --peer "$TMP/empty.jsonl"
expect_error '--steps' "$PO_BIN" bench "${E[@]}" --steps 0
expect_error '--warmup 8 leaves no step' "$PO_BIN" bench "${E[@]}" --steps 8 --warmup 8
expect_error 'unknown option "--frob"' "$PO_BIN" bench --frob
expect_error 'unexpected argument "extra"' "$PO_BIN" bench "${E[@]}" extra
# --rounds: 1..20; anything else is one usage line, exit status 2, before any run.
for bad in 0 21 abc; do
  expect_error "--rounds" "$PO_BIN" bench "${E[@]}" --rounds "$bad"
  rc=0; "$PO_BIN" bench "${E[@]}" --rounds "$bad" >"$TMP/out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "--rounds $bad: exit status $rc, not 2"
  grep -q "^bench:" "$TMP/out" && fail "--rounds $bad started a run"
done
"$PO_BIN" bench --help | grep -q -- "--rounds N" || fail "paropt bench --help lacks --rounds"
[ -e "$TMP/never" ] && fail "a rejected command created its --out directory"
[ "$(ls -A "$TMP/other")" = "notes.txt" ] || fail "a refused --out directory was changed"

# --- the suite ------------------------------------------------------------------------------------
# The fixture peer file: two one-thread records at the workload's batch and parameter count
# (median 11), one two-thread record, and records that must not match (another batch, another
# parameter count, another model).
cat >"$TMP/peer.jsonl" <<'EOF'
{"workload": "mnist_mlp", "threads": 1, "ms_per_step": 10.0, "samples_per_s": 3200.0, "batch": 32, "params": 5962}
{"workload": "mnist_mlp", "threads": 1, "ms_per_step": 12.0, "batch": 32}

{"workload": "mnist_mlp", "threads": 2, "ms_per_step": 8.0, "batch": 32, "params": 5962}
{"workload": "mnist_mlp", "threads": 1, "ms_per_step": 40.0, "batch": 128}
{"workload": "mnist_mlp", "threads": 1, "ms_per_step": 1000.0, "batch": 32, "params": 999}
{"workload": "tiny_gpt", "threads": 1, "ms_per_step": 400.0, "batch": 32}
EOF
OUT="$TMP/bench"
"$PO_BIN" bench --quick --workloads "$W" --devices "$DEVICES" --out "$OUT" --peer "$TMP/peer.jsonl" \
  >"$TMP/bench.out" 2>"$TMP/bench.err" || fail "paropt bench failed: $(tail -3 "$TMP/bench.err")"
grep -q "^bench: \[1/[0-9]*\] $W: baseline on cpu:0 \.\.\. .* ms/step" "$TMP/bench.err" ||
  fail "no progress line: $(head -3 "$TMP/bench.err")"
grep -q "^wrote $OUT/results.json and $OUT/report.html" "$TMP/bench.out" || fail "stdout: $(tail -3 "$TMP/bench.out")"
grep -q "^  auto plan .* ms/step" "$TMP/bench.out" || fail "stdout lacks the table: $(cat "$TMP/bench.out")"
[ "$(ls -A "$OUT" | sort | tr '\n' ' ')" = "report.html results.json " ] || fail "out directory holds: $(ls -A "$OUT")"

python3 - "$OUT/results.json" "$W" "$DEVICES" <<'EOF' || fail "results.json (above)"
import json, math, statistics, sys
r = json.load(open(sys.argv[1]))
spec, devices = sys.argv[2], sys.argv[3].split(",")
bad = []
def need(cond, what):
    if not cond: bad.append(what)
def close(a, b, what):
    ok = (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
    need(ok, "%s: table has %r, recomputed %r" % (what, a, b))

need(r["format"] == "paropt bench 1", "format")
need(isinstance(r["paropt_version"], str) and r["paropt_version"], "paropt_version")
m = r["machine"]
for k in ("hostname", "cpu_model", "cores", "date", "os"):
    need(k in m and m[k] not in (None, ""), "machine." + k)
need(m["date"].endswith("Z") and m["date"][4] == "-", "machine.date is ISO 8601 UTC: %r" % m["date"])
s = r["settings"]
need(s["quick"] is True and s["steps"] == 8 and s["warmup"] == 2 and s["calibrate"] == 1, "settings %r" % s)
need(s["rounds"] == 1 and all(x["round"] == 1 for x in r["runs"]), "one round by default: settings.rounds, run rounds")
need(s["devices"] == devices and [w["spec"] for w in s["workloads"]] == [spec], "settings devices/workloads")
need(s["workloads"][0]["params"] == 64 * 48 + 48 + 48 * 48 + 48 + 48 * 10 + 10, "params %r" % s["workloads"][0])

# Every run: its exact command and its summary.
runs = r["runs"]
n = len(devices)
kinds = ["baseline", "auto", "energy"] + ["scaling"] * (n - 1)
need([x["kind"] for x in runs] == kinds, "run kinds %r" % [x["kind"] for x in runs])
for i, x in enumerate(runs):
    a, summ = x["argv"], x["summary"]
    need(x["index"] == i and x["workload"] == spec, "run %d index/workload" % i)
    need(a[1] == "train" and a[-1] == "--json", "run %d argv %r" % (i, a))
    opt = {a[j]: a[j + 1] for j in range(2, len(a) - 1) if a[j].startswith("--") and not a[j + 1].startswith("--")}
    need(opt.get("--model") == spec and opt.get("--data") == "synthetic" and opt.get("--steps") == "8" and
         opt.get("--warmup") == "2" and opt.get("--calibrate") == "1", "run %d options %r" % (i, opt))
    k = 1 if x["kind"] == "baseline" else n if x["kind"] in ("auto", "energy") else i - 1
    need(opt.get("--devices") == ",".join(devices[:k]) and x["devices"] == devices[:k], "run %d devices %r" % (i, opt))
    need(opt.get("--plan") == {"baseline": "single", "auto": "auto", "energy": "auto", "scaling": "dp"}[x["kind"]],
         "run %d --plan" % i)
    need(opt.get("--objective") == ("energy" if x["kind"] == "energy" else None), "run %d --objective" % i)
    for key in ("ms_per_step", "samples_per_s", "busy", "energy_j_per_sample", "energy_source", "plan",
                "predicted_step_ms", "measured_step_ms", "prediction_error"):
        need(key in summ, "run %d summary lacks %s" % (i, key))
    need(summ["steps"] == 8 and summ["batch"] == 32 and summ["model"] == "mnist_mlp", "run %d summary" % i)
    need(x["wall_s"] > 0, "run %d wall_s" % i)

# The table, recomputed from the summaries alone.
need(len(r["table"]) == 1, "one table row per workload")
t = r["table"][0]
def S(i): return runs[i]["summary"]
def plan_devs(summ): return [rep["device"] for st in summ["plan"]["stages"] for rep in st["replicas"]]
def plan_shares(summ): return [rep["share"] for st in summ["plan"]["stages"] for rep in st["replicas"]]
def busy(summ):
    v = [summ["busy"][d] for d in plan_devs(summ) if d in summ["busy"]]
    return sum(v) / len(v) if v else None
def kind(src): return "measured" if "measured" in src and "estimated" not in src else \
    "estimated" if "estimated" in src and "measured" not in src else "mixed"
b = S(0)
need(t["workload"] == spec and t["model"] == b["model"] and t["batch"] == b["batch"] and t["config"] == b["config"],
     "workload fields")
tb = t["baseline"]
need(tb["run"] == 0 and tb["devices"] == plan_devs(b) == ["cpu:0"] and tb["strategy"] == "single", "baseline run")
for key in ("ms_per_step", "samples_per_s", "energy_j_per_sample"):
    close(tb[key], b[key], "baseline." + key)
need(tb["energy_source"] == b["energy_source"], "baseline.energy_source")
close(tb["busy_mean"], busy(b), "baseline.busy_mean")
for name, i in (("auto", 1), ("energy", 2)):
    e, p = t[name], S(i)
    need(e["run"] == i and e["strategy"] == p["plan"]["strategy"] and e["objective"] == p["plan"]["objective"],
         name + " run/strategy")
    need(e["devices"] == plan_devs(p), name + ".devices")
    need(all(math.isclose(u, v) for u, v in zip(e["shares"], plan_shares(p))) and
         len(e["shares"]) == len(plan_shares(p)), name + ".shares")
    need(abs(sum(e["shares"]) - 1) < 1e-6, name + ": shares sum to 1")
    need(set(e["devices"]) <= set(devices), name + ": devices among --devices")
    for key in ("ms_per_step", "samples_per_s", "energy_j_per_sample"):
        close(e[key], p[key], name + "." + key)
    close(e["speedup"], b["ms_per_step"] / p["ms_per_step"], name + ".speedup")
    close(e["energy_per_sample_change_pct"], (p["energy_j_per_sample"] / b["energy_j_per_sample"] - 1) * 100,
          name + ".energy change")
    need(e["energy_source"] == p["energy_source"] and e["baseline_energy_source"] == b["energy_source"],
         name + ": both energy sources named")
    basis = kind(p["energy_source"]) if kind(p["energy_source"]) == kind(b["energy_source"]) != "mixed" else "mixed"
    need(e["energy_basis"] == basis, name + ".energy_basis %r, expected %r" % (e["energy_basis"], basis))
    close(e["busy_mean"], busy(p), name + ".busy_mean")
    close(e["baseline_busy_mean"], busy(b), name + ".baseline_busy_mean")
    close(e["utilization_change_pp"], (busy(p) - busy(b)) * 100, name + ".utilization change")
need([p["k"] for p in t["scaling"]] == list(range(1, n + 1)), "scaling k %r" % t["scaling"])
for p in t["scaling"]:
    i = 0 if p["k"] == 1 else 3 + p["k"] - 2
    need(p["run"] == i and p["devices"] == devices[:p["k"]], "scaling k=%d run" % p["k"])
    close(p["ms_per_step"], S(i)["ms_per_step"], "scaling ms")
    close(p["speedup"], b["ms_per_step"] / S(i)["ms_per_step"], "scaling speedup")
    close(p["efficiency"], b["ms_per_step"] / S(i)["ms_per_step"] / p["k"], "scaling efficiency")
need([p["run"] for p in t["prediction"]] == list(range(len(runs))), "a prediction per run")
for p in t["prediction"]:
    for key in ("predicted_step_ms", "measured_step_ms", "prediction_error"):
        close(p[key], S(p["run"])[key], "prediction run %d %s" % (p["run"], key))
    need(p["label"] == runs[p["run"]]["label"], "prediction label")

# PyTorch: the records of this model at batch 32 and 5962 parameters; medians per thread count.
need(r["peer"]["file"].endswith("peer.jsonl") and len(r["peer"]["records"]) == 6, "peer records kept")
pt = t["pytorch"]
close(pt["one_thread_ms_per_step"], 11.0, "pytorch one thread (median of 10 and 12)")
need(pt["one_thread_records"] == 2 and pt["threads"] == 2 and pt["threads_records"] == 1, "pytorch record counts")
close(pt["threads_ms_per_step"], 8.0, "pytorch 2 threads")
close(pt["best_ms_per_step"], 8.0, "pytorch best")
need(pt["best_threads"] == 2, "pytorch best threads")
close(pt["speedup_baseline_vs_one_thread"], 11.0 / b["ms_per_step"], "paropt vs pytorch one thread")
close(pt["speedup_auto_vs_best"], 8.0 / S(1)["ms_per_step"], "paropt auto vs pytorch best")
if bad:
    print("\n".join("FAIL: " + x for x in bad)); sys.exit(1)
e = t["auto"]
print("baseline %.3f ms; auto %s over %s: %.2fx, energy %+.1f%% (%s); scaling %s; pytorch 1 thread %.3gx" % (
    tb["ms_per_step"], e["strategy"], e["devices"], e["speedup"], e["energy_per_sample_change_pct"],
    e["energy_basis"], [round(p["efficiency"], 2) for p in t["scaling"]], pt["speedup_baseline_vs_one_thread"]))
EOF

# An embedded summary is what its command prints: rerun the baseline's command (deterministic on
# one device: same loss, same fields).
python3 -c 'import json,sys; print("\0".join(json.load(open(sys.argv[1]))["runs"][0]["argv"]), end="")' \
  "$OUT/results.json" | xargs -0 sh -c '"$@" 2>/dev/null | tail -n 1' sh >"$TMP/rerun.json" ||
  fail "the baseline's command failed when run again"
python3 - "$OUT/results.json" "$TMP/rerun.json" <<'EOF' || fail "embedded summary differs from its command's"
import json, sys
emb = json.load(open(sys.argv[1]))["runs"][0]["summary"]
again = json.load(open(sys.argv[2]))
assert set(emb) == set(again), (sorted(set(emb) ^ set(again)))
for k in ("model", "config", "steps", "batch", "final_loss", "plan_strategy"):
    if k == "plan_strategy":
        assert emb["plan"]["strategy"] == again["plan"]["strategy"]
    else:
        assert emb[k] == again[k], (k, emb[k], again[k])
EOF

# --- report.html -----------------------------------------------------------------------------------
python3 - "$OUT/report.html" "$(echo "$DEVICES" | tr ',' ' ' | wc -w)" <<'EOF' || fail "report.html (above)"
import sys
from html.parser import HTMLParser
path, n_dev = sys.argv[1], int(sys.argv[2])
text = open(path, encoding="utf-8").read()
VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col", "area", "base", "embed", "param", "track"}
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.stack, s.errors, s.sections, s.h2 = [], [], [], {}; s.svgs = 0; s.tags = set()
    def handle_starttag(s, tag, attrs):
        s.tags.add(tag)
        a = dict(attrs)
        for k, v in attrs:
            if k.startswith("on"): s.errors.append("event handler attribute " + k)
            if k in ("src", "href") and v and not v.startswith("#"): s.errors.append("resource %s=%s" % (k, v))
        if tag == "section": s.sections.append(a.get("id"))
        if tag == "svg": s.svgs += 1
        if tag == "h2" and s.stack and s.stack[-1] == "section": s.h2[s.sections[-1]] = True
        if tag not in VOID: s.stack.append(tag)
    def handle_startendtag(s, tag, attrs):
        s.tags.add(tag)
    def handle_endtag(s, tag):
        if tag in VOID: return
        if not s.stack or s.stack[-1] != tag:
            s.errors.append("</%s> closes <%s>" % (tag, s.stack[-1] if s.stack else "nothing")); return
        s.stack.pop()
p = P(); p.feed(text); p.close()
assert text.startswith("<!DOCTYPE html>\n"), "no doctype"
assert not p.errors, p.errors[:5]
assert not p.stack, "unclosed: %r" % p.stack
want = ["results", "speedup", "energy", "scaling", "prediction", "pytorch", "runs", "notes"]
assert p.sections == want, "sections %r" % p.sections
assert all(p.h2.get(s) for s in want), "a section without its heading: %r" % p.h2
# Charts: speed-up bars, energy bars per workload, the scaling line chart, prediction bars per workload.
assert p.svgs == 4, "%d charts" % p.svgs
assert "script" not in p.tags and "iframe" not in p.tags and "object" not in p.tags, p.tags
low = text.lower()
for bad in ("<script", "http://", "https://", "@import", "url(", "javascript:"):
    assert bad not in low, "found %r" % bad
for must in ("<style>", "estimated:model", "mnist_mlp:d_in=64,hidden=48,batch=32", "1 thread 11 ms/step",
             "cpu:0", "Notes on sources", "not a measurement"):
    assert must in text, "missing %r" % must
print("report.html: %d sections, %d charts, well-formed" % (len(p.sections), p.svgs))
EOF

# --- --rounds 2: every run kept with its round, rounds one after the other, medians in the table ---
OUT2="$TMP/bench2"
"$PO_BIN" bench --quick --rounds 2 --workloads "$W" --devices "$DEVICES" --out "$OUT2" --peer "$TMP/peer.jsonl" \
  >"$TMP/bench2.out" 2>"$TMP/bench2.err" || fail "paropt bench --rounds 2 failed: $(tail -3 "$TMP/bench2.err")"
NR=$(($(echo "$DEVICES" | tr ',' ' ' | wc -w) + 2)) # runs per round
for rd in 1 2; do
  for i in $(seq 1 "$NR"); do
    grep -q "^bench: round $rd/2 \[$i/$NR\] $W: .* ms/step" "$TMP/bench2.err" ||
      fail "no progress line for round $rd/2 [$i/$NR]: $(cat "$TMP/bench2.err")"
  done
done
[ "$(grep -c '^bench: round ' "$TMP/bench2.err")" -eq $((2 * NR)) ] || fail "progress lines: $(cat "$TMP/bench2.err")"
grep -q "medians of 2 rounds" "$TMP/bench2.out" || fail "stdout does not say medians: $(head -1 "$TMP/bench2.out")"
grep -q "^  auto plan .* ms/step .* spread [0-9.]*%" "$TMP/bench2.out" || fail "stdout lacks spreads: $(cat "$TMP/bench2.out")"
grep -q "^  baseline .* spread [0-9.]*%" "$TMP/bench2.out" || fail "stdout lacks the baseline's spread"
python3 - "$OUT2/results.json" "$W" "$DEVICES" <<'EOF' || fail "results.json with --rounds 2 (above)"
import json, math, statistics, sys
r = json.load(open(sys.argv[1]))
spec, devices = sys.argv[2], sys.argv[3].split(",")
n, R = len(devices), 2
bad = []
def need(cond, what):
    if not cond: bad.append(what)
def close(a, b, what):
    ok = (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
    need(ok, "%s: table has %r, recomputed %r" % (what, a, b))
need(r["settings"]["rounds"] == R, "settings.rounds %r" % r["settings"].get("rounds"))
runs = r["runs"]
per = 3 + n - 1
kinds = ["baseline", "auto", "energy"] + ["scaling"] * (n - 1)
need(len(runs) == R * per, "%d runs, expected %d" % (len(runs), R * per))
# Every run has its round; round 1's runs all come before round 2's; each round is the same
# configurations in the same order, with the same command.
need(all("round" in x for x in runs), "a run without its round")
need([x.get("round") for x in runs] == [1] * per + [2] * per, "rounds %r" % [x.get("round") for x in runs])
need([x["index"] for x in runs] == list(range(len(runs))), "run indices")
need([x["kind"] for x in runs] == kinds * R, "run kinds %r" % [x["kind"] for x in runs])
for i in range(per):
    a, b = runs[i], runs[per + i]
    need(a["argv"] == b["argv"] and a["devices"] == b["devices"] and a["workload"] == b["workload"] == spec,
         "run %d and %d are not the same configuration" % (i, per + i))
    need(a["summary"]["steps"] == 8 and b["summary"]["steps"] == 8, "run %d steps" % i)

# The table, recomputed from the embedded runs: each configuration's median over its rounds.
def cfg(kind, k):
    return [x for x in runs if x["kind"] == kind and x["devices"] == devices[:k]]
def plan_devs(summ): return [rep["device"] for st in summ["plan"]["stages"] for rep in st["replicas"]]
def plan_shares(summ): return [rep["share"] for st in summ["plan"]["stages"] for rep in st["replicas"]]
def busy(summ):
    v = [summ["busy"][d] for d in plan_devs(summ) if d in summ["busy"]]
    return sum(v) / len(v) if v else None
def med(c, key):
    v = [busy(x["summary"]) if key == "busy" else x["summary"][key] for x in c]
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
def kind(src): return "measured" if "measured" in src and "estimated" not in src else \
    "estimated" if "estimated" in src and "measured" not in src else "mixed"
def check_rounds(e, c, what):
    need(len(c) == R, what + ": %d runs" % len(c))
    need(e["run"] == c[0]["index"] and e["runs"] == [x["index"] for x in c], what + ".runs %r" % e.get("runs"))
    ms = [x["summary"]["ms_per_step"] for x in c]
    need(len(e["ms_per_step_rounds"]) == R, what + ".ms_per_step_rounds")
    for a, b in zip(e["ms_per_step_rounds"], ms): close(a, b, what + ".ms_per_step_rounds")
    close(e["ms_per_step_spread"], max(ms) / min(ms) - 1, what + ".ms_per_step_spread")
t = r["table"][0]
B = cfg("baseline", 1)
bms, be, bbusy = med(B, "ms_per_step"), med(B, "energy_j_per_sample"), med(B, "busy")
tb = t["baseline"]
check_rounds(tb, B, "baseline")
close(tb["ms_per_step"], bms, "baseline.ms_per_step (median)")
close(tb["samples_per_s"], med(B, "samples_per_s"), "baseline.samples_per_s (median)")
close(tb["energy_j_per_sample"], be, "baseline.energy_j_per_sample (median)")
close(tb["busy_mean"], bbusy, "baseline.busy_mean (median)")
need(tb["devices"] == ["cpu:0"] and tb["strategy"] == "single", "baseline plan")
srcs = lambda c: ", ".join(dict.fromkeys(x["summary"]["energy_source"] for x in c))
need(tb["energy_source"] == srcs(B), "baseline.energy_source")
for name in ("auto", "energy"):
    e, c = t[name], cfg(name, n)
    check_rounds(e, c, name)
    p0 = c[0]["summary"]
    need(e["strategy"] == p0["plan"]["strategy"] and e["devices"] == plan_devs(p0) and
         len(e["shares"]) == len(plan_shares(p0)), name + ": the first round's plan")
    need(e["strategy_rounds"] == [x["summary"]["plan"]["strategy"] for x in c], name + ".strategy_rounds")
    ms, en, bu = med(c, "ms_per_step"), med(c, "energy_j_per_sample"), med(c, "busy")
    close(e["ms_per_step"], ms, name + ".ms_per_step (median)")
    close(e["samples_per_s"], med(c, "samples_per_s"), name + ".samples_per_s (median)")
    close(e["energy_j_per_sample"], en, name + ".energy_j_per_sample (median)")
    close(e["busy_mean"], bu, name + ".busy_mean (median)")
    close(e["baseline_busy_mean"], bbusy, name + ".baseline_busy_mean (median)")
    close(e["speedup"], bms / ms, name + ".speedup (of medians)")
    close(e["energy_per_sample_change_pct"], (en / be - 1) * 100, name + ".energy change (of medians)")
    close(e["utilization_change_pp"], (bu - bbusy) * 100, name + ".utilization change (of medians)")
    need(e["energy_source"] == srcs(c) and e["baseline_energy_source"] == srcs(B), name + ": energy sources")
    basis = kind(e["energy_source"]) if kind(e["energy_source"]) == kind(srcs(B)) != "mixed" else "mixed"
    need(e["energy_basis"] == basis, name + ".energy_basis")
need([p["k"] for p in t["scaling"]] == list(range(1, n + 1)), "scaling k")
for p in t["scaling"]:
    c = cfg("baseline" if p["k"] == 1 else "scaling", p["k"])
    check_rounds(p, c, "scaling k=%d" % p["k"])
    ms = med(c, "ms_per_step")
    close(p["ms_per_step"], ms, "scaling k=%d ms (median)" % p["k"])
    close(p["samples_per_s"], med(c, "samples_per_s"), "scaling k=%d samples/s (median)" % p["k"])
    close(p["speedup"], bms / ms, "scaling k=%d speedup (of medians)" % p["k"])
    close(p["efficiency"], bms / ms / p["k"], "scaling k=%d efficiency (of medians)" % p["k"])
need([p["run"] for p in t["prediction"]] == list(range(per)), "a prediction per configuration")
for p in t["prediction"]:
    x = runs[p["run"]]
    c = [y for y in runs if y["kind"] == x["kind"] and y["devices"] == x["devices"]]
    check_rounds(p, c, "prediction %d" % p["run"])
    need(p["label"] == x["label"], "prediction label")
    for key in ("predicted_step_ms", "measured_step_ms", "prediction_error"):
        close(p[key], med(c, key), "prediction run %d %s (median)" % (p["run"], key))
pt = t["pytorch"]
close(pt["speedup_baseline_vs_one_thread"], 11.0 / bms, "paropt (median) vs pytorch one thread")
close(pt["speedup_auto_vs_best"], 8.0 / med(cfg("auto", n), "ms_per_step"), "paropt auto (median) vs pytorch best")
if bad:
    print("\n".join("FAIL: " + x for x in bad)); sys.exit(1)
print("--rounds 2: baseline %s ms -> median %.4g, spread %.0f%%" % (
    tb["ms_per_step_rounds"], tb["ms_per_step"], tb["ms_per_step_spread"] * 100))
EOF
python3 - "$OUT2/report.html" <<'EOF' || fail "report.html with --rounds 2 (above)"
import sys
from html.parser import HTMLParser
text = open(sys.argv[1], encoding="utf-8").read()
VOID = {"meta", "br"}
class P(HTMLParser):
    def __init__(s): super().__init__(); s.stack, s.errors = [], []
    def handle_starttag(s, tag, attrs):
        if tag not in VOID: s.stack.append(tag)
    def handle_endtag(s, tag):
        if tag in VOID: return
        if not s.stack or s.stack[-1] != tag: s.errors.append("</%s>" % tag); return
        s.stack.pop()
p = P(); p.feed(text); p.close()
assert not p.errors and not p.stack, (p.errors[:5], p.stack)
for must in ("It ran 2 rounds", "spread (ms/step by round)", "<th>round</th>", "Rounds: the suite ran 2 rounds",
             "medians over a configuration"):
    assert must in text, "missing %r" % must
print("report.html with --rounds 2: well-formed, medians and spreads")
EOF

# --- a failing run leaves the earlier output as it was --------------------------------------------
cp "$OUT/results.json" "$TMP/results.before"
cp "$OUT/report.html" "$TMP/report.before"
rc=0
"$PO_BIN" bench --quick --workloads "$W" --devices cpu:0:slowdown=0.5 --out "$OUT" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ "$rc" -ne 0 ] || fail "a failing run gave exit status 0"
tail -n 1 "$TMP/err" | grep -q "^paropt: error: bench run 1/3 ($W: baseline on cpu:0:slowdown=0.5) failed: exit status 2: .*slowdown" ||
  fail "failing run: $(cat "$TMP/err")"
[ "$(grep -c '^paropt: error:' "$TMP/err")" -eq 1 ] || fail "more than one error line: $(cat "$TMP/err")"
cmp -s "$OUT/results.json" "$TMP/results.before" && cmp -s "$OUT/report.html" "$TMP/report.before" ||
  fail "a failing suite changed the earlier output"
[ "$(ls -A "$OUT" | wc -l)" -eq 2 ] || fail "a failing suite left files: $(ls -A "$OUT")"
rc=0
"$PO_BIN" bench --quick --workloads "$W" --devices cpu:0:slowdown=0.5 --out "$TMP/fresh" >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$TMP/fresh" ] || fail "a failing suite left the directory it created"

# An earlier bench output is replaced by a new suite (one device here: three runs).
"$PO_BIN" bench --quick --steps 4 --warmup 1 --workloads "$W" --devices cpu:0 --out "$OUT" >/dev/null 2>"$TMP/err" ||
  fail "a suite into an earlier output failed: $(tail -1 "$TMP/err")"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["settings"]["devices"]==["cpu:0"] and len(r["runs"])==3 and r["settings"]["steps"]==4 and "peer" not in r and "pytorch" not in r["table"][0]' \
  "$OUT/results.json" || fail "the earlier output was not replaced"
grep -q 'id="pytorch"' "$OUT/report.html" && fail "a PyTorch section without --peer"

# --- the PyTorch peer script skips cleanly without torch ------------------------------------------
rc=0
bash "$ROOT/bench/peer/torch_bench.sh" --python /bin/false --out "$TMP/torch.jsonl" >"$TMP/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "skipped" "$TMP/out" && [ ! -e "$TMP/torch.jsonl" ] ||
  fail "torch_bench.sh without torch: exit $rc, $(cat "$TMP/out")"
finish

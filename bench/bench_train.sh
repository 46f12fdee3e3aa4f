#!/usr/bin/env bash
# Training throughput: paropt against PyTorch (Debian's python3-torch), the three reference
# workloads at benchmark size, alternated in rounds so all see the same machine state.
#   one core:  paropt on one pinned core against PyTorch with one thread on the same core;
#   all cores: paropt with the automatic plan over every core it may run on (--devices auto --plan
#              auto; `taskset -c 2,3 bench/bench_train.sh --core 2` holds the whole run to two) against
#              paropt's best single core (each round runs paropt pinned to every one of those
#              cores, just before the all-cores run of that workload: on a shared machine one core
#              can be slower than another for minutes) and against PyTorch's best of one thread
#              and one thread per core (its threaded OpenBLAS/OpenMP), with the plan chosen and its
#              prediction error (measured / predicted - 1).
# Prints medians and their ratios, and per-round ratios (one core against PyTorch; all cores
# against that round's best core).
#
#   bench/bench_train.sh [--rounds N] [--steps N] [--core C] [--workloads "a b"] [--out FILE]
#
# Needs build/paropt (make build) and PyTorch (scripts/deps.sh --peer). The peer script is
# ../shared/peer/torch_baseline.py unless PO_PEER_DIR says otherwise; PO_BIN names another paropt
# binary and PO_PYTHON another Python with torch (default /usr/bin/python3, Debian's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=5 steps=30 core=0 workloads="mnist_mlp cifar_cnn tiny_gpt" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --core) core=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench_train: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$steps" -gt 3 ] 2>/dev/null || { echo "bench_train: --steps must be more than the 3 warm-up steps" >&2; exit 2; }
bin="${PO_BIN:-$root/build/paropt}"
peer="${PO_PEER_DIR:-$root/../shared/peer}/torch_baseline.py"
python="${PO_PYTHON:-/usr/bin/python3}"
[ -x "$bin" ] || { echo "bench_train: build first (make build)" >&2; exit 1; }
[ -f "$peer" ] || { echo "bench_train: no peer script at $peer" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || { echo "bench_train: PyTorch missing (scripts/deps.sh --peer)" >&2; exit 1; }

cores=$(nproc)
allowed=$("$python" -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), core $core; $(date -u +%FT%TZ)"
echo "paropt: $("$bin" --version), torch $("$python" -c 'import torch; print(torch.__version__)'); $((steps - 3)) timed steps after 3 warm-up steps a run"
for r in $(seq 1 "$rounds"); do
  # Each workload's single-core runs and its all-cores run back to back, so the ratio between
  # them sees one machine state (on a shared VM the cores' speed and the cost of data crossing
  # between them change over minutes).
  for w in $workloads; do
    taskset -c "$core" "$bin" train --model "$w" --steps "$steps" --warmup 3 --json 2>/dev/null \
      | tail -n 1 | sed "s/^{/{\"round\":$r,\"who\":\"paropt\",\"core\":$core,/" >>"$tmp/results.jsonl"
    for c in $allowed; do
      [ "$c" = "$core" ] && continue
      taskset -c "$c" "$bin" train --model "$w" --steps "$steps" --warmup 3 --json 2>/dev/null \
        | tail -n 1 | sed "s/^{/{\"round\":$r,\"who\":\"paropt-core\",\"core\":$c,/" >>"$tmp/results.jsonl"
    done
    if [ "$cores" -ge 2 ]; then
      "$bin" train --model "$w" --steps "$steps" --warmup 3 --devices auto --plan auto --json 2>/dev/null \
        | tail -n 1 | sed "s/^{/{\"round\":$r,\"who\":\"paropt-all\",/" >>"$tmp/results.jsonl"
    fi
  done
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c "$core" "$python" "$peer" 1 "$steps" \
    2>/dev/null | grep "^{" | sed "s/^{/{\"round\":$r,\"who\":\"pytorch\",/" >>"$tmp/results.jsonl"
  if [ "$cores" -ge 2 ]; then
    OMP_NUM_THREADS=$cores OPENBLAS_NUM_THREADS=$cores "$python" "$peer" "$cores" "$steps" 2>/dev/null | grep "^{" \
      | sed "s/^{/{\"round\":$r,\"who\":\"pytorch-all\",/" >>"$tmp/results.jsonl"
  fi
  echo "round $r/$rounds done" >&2
done
[ -n "$out" ] && cp "$tmp/results.jsonl" "$out"
"$python" - "$tmp/results.jsonl" "$workloads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def ms(who, w):
    return [r["ms_per_step"] for r in rows if r["who"] == who and r.get("model", r.get("workload")) == w]
def best_core(w):
    """paropt's best single core: the lowest of the cores' medians over the rounds, and every core's."""
    runs = [r for r in rows if r["who"] in ("paropt", "paropt-core") and r.get("model") == w]
    med = {c: statistics.median(r["ms_per_step"] for r in runs if r["core"] == c) for c in {r["core"] for r in runs}}
    return min(med.values()), med
print(f"one core: {'workload':<10} {'paropt ms/step':>15} {'PyTorch ms/step':>16} {'speedup':>8}   per-round")
for w in sys.argv[2].split():
    p, t = ms("paropt", w), ms("pytorch", w)
    if not p or not t: continue
    per = [b / a for a, b in zip(p, t)]
    print(f"          {w:<10} {statistics.median(p):>15.2f} {statistics.median(t):>16.2f} "
          f"{statistics.median(t) / statistics.median(p):>7.2f}x   " + " ".join(f"{x:.2f}" for x in per))
if any(r["who"] == "paropt-all" for r in rows):
    print(f"all cores: {'workload':<9} {'paropt auto':>11} {'best core':>9} {'PyTorch 1 thr':>14} {'PyTorch n thr':>14} "
          f"{'vs best core':>13} {'vs PyTorch best':>16} {'pred. error':>12}  plan; each core's median")
    for w in sys.argv[2].split():
        d, p, t1, tn = ms("paropt-all", w), ms("paropt", w), ms("pytorch", w), ms("pytorch-all", w)
        if not d or not p or not t1 or not tn: continue
        md, m1, mn = (statistics.median(x) for x in (d, t1, tn))
        mp, per_core = best_core(w)
        auto = [r for r in rows if r["who"] == "paropt-all" and r.get("model") == w]
        err = statistics.median(r["prediction_error"] for r in auto if r.get("prediction_error") is not None)
        plans = sorted({r["plan"]["strategy"] + " " + ",".join(
            "%s:%.2f" % (x["device"], x["share"]) for x in r["plan"]["stages"][0]["replicas"]) for r in auto})
        print(f"           {w:<9} {md:>11.2f} {mp:>9.2f} {m1:>14.2f} {mn:>14.2f} {mp / md:>12.2f}x {min(m1, mn) / md:>15.2f}x"
              f" {100 * err:>+11.1f}%  {' | '.join(plans)}; "
              + ", ".join(f"cpu:{c} {v:.2f}" for c, v in sorted(per_core.items())))
    print("per round (the all-cores run against that round's best core, run just before it):")
    for w in sys.argv[2].split():
        single = [r for r in rows if r["who"] in ("paropt", "paropt-core") and r.get("model") == w]
        auto = {r["round"]: r["ms_per_step"] for r in rows if r["who"] == "paropt-all" and r.get("model") == w}
        per = [min(r["ms_per_step"] for r in single if r["round"] == k) / auto[k]
               for k in sorted(auto) if any(r["round"] == k for r in single)]
        if per:
            print(f"           {w:<9} " + " ".join(f"{x:.2f}" for x in per) + f"   median {statistics.median(per):.2f}x")
PY

#!/usr/bin/env bash
# PyTorch peer figures for `paropt bench --peer FILE.jsonl`: runs torch_baseline.py (the reference
# workloads' PyTorch training step at their benchmark sizes; a copy of ../shared/peer's, with its
# model definitions torch_baseline_models.py) with one thread pinned to one core, then with one
# thread per core, and writes one JSON line per workload and thread count:
#   {"workload", "threads", "ms_per_step", "samples_per_s", "batch", "params"}
#
#   bench/peer/torch_bench.sh [--steps N] [--out FILE.jsonl] [--python PATH]
#
# --steps: timed steps per workload after 3 warm-up steps (default 30); --out: default
# torch-peer.jsonl, written whole or not at all; --python: the interpreter (default /usr/bin/python3,
# Debian's, which python3-torch installs into; else python3 on PATH). When that interpreter cannot
# import torch, says so and exits 0 without writing anything.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
steps=30 out=torch-peer.jsonl python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=${2:?--steps needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --python) python=${2:?--python needs a value}; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "torch_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$steps" in '' | *[!0-9]* | 0) echo "torch_bench: --steps must be a positive integer, got \"$steps\"" >&2; exit 2 ;; esac
if [ -z "$python" ]; then
  if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi
if ! "$python" -c "import torch" >/dev/null 2>&1; then
  echo "torch_bench: skipped: $python cannot import torch (install python3-torch: scripts/deps.sh --peer)"
  exit 0
fi

cores=$(nproc)
dir=$(dirname -- "$out")
[ -d "$dir" ] || { echo "torch_bench: --out: directory \"$dir\" does not exist" >&2; exit 1; }
tmp=$(mktemp "$dir/.torch-peer.XXXXXX")
trap 'rm -f "$tmp"' EXIT

# run THREADS [taskset args]: one JSON line per workload appended to $tmp.
run() {
  local threads=$1; shift
  echo "torch_bench: PyTorch with $threads thread(s), $steps steps per workload" >&2
  OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
    "$@" "$python" "$here/torch_baseline.py" "$threads" "$steps" | grep '^{' >>"$tmp"
}
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
run 1 "${pin[@]}"
[ "$cores" -gt 1 ] && run "$cores"
chmod go+r "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "torch_bench: wrote $out ($(wc -l <"$out") records)" >&2

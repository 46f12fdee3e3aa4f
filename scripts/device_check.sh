#!/usr/bin/env bash
# Runs on the GPU device machine, from the repository root, with .devkit carried (see
# scripts/device_kit.sh): unpacks the kit, then writes into $OUT (at most 8 files come back)
#   machine.txt  CPU, GPU and driver; paropt devices (real CUDA and NVML discovery)
#   ctest.log    the whole test suite (the GPU-only tests run instead of skipping)
#   bench2.txt   bench/bench_train.sh on two cores (2-3), against the machine's PyTorch
#   cores4.txt   mnist_mlp and tiny_gpt on four cores (4-7) under every plan family
# Each part has its own time limit, so a slow one cannot starve the rest; the whole run takes
# about 6 minutes (at most 9) on the H100 host.
set -uo pipefail
: "${OUT:?OUT must name the folder for results}"
root=$PWD
kit=$root/.devkit
[ -f "$kit/kit.tar.zst" ] || { echo "device_check: no kit: run scripts/device_kit.sh and carry .devkit" >&2; exit 1; }
work=/tmp/paropt-kit
rm -rf "$work" && mkdir -p "$work"
LD_LIBRARY_PATH=$kit/zstd-lib "$kit/zstd" -q --long=30 -dc "$kit/kit.tar.zst" | tar -x -C "$work" || exit 1
rm -rf "$root/build-device" && mv "$work/build-device" "$root/build-device"
# CTest files name the source and build trees where the kit was built: point that path here.
built_at=$(cat "$work/ROOT")
if [ "$built_at" != "$root" ] && [ ! -e "$built_at" ]; then
  mkdir -p "$(dirname "$built_at")" && ln -s "$root" "$built_at"
fi
export LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$root/build-device/paropt
ctest_bin=$(command -v ctest || echo /opt/torch/.venv/bin/ctest)
python=$(command -v python3)

{
  date -u +%FT%TZ
  lscpu | grep -E 'Model name|^CPU\(s\)|L3'
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  "$python" -c 'import torch; print("torch", torch.__version__)' 2>&1
  timeout 120 "$bin" devices 2>&1
} >"$OUT/machine.txt"

timeout 240 "$ctest_bin" --test-dir "$root/build-device" -j3 --timeout 150 --output-on-failure >"$OUT/ctest.log" 2>&1
echo "ctest exit $?" >>"$OUT/ctest.log"

PO_BIN=$bin PO_PYTHON=$python PO_PEER_DIR=$root/bench/peer timeout 120 taskset -c 2,3 \
  bash "$root/bench/bench_train.sh" --rounds 2 --steps 12 --core 2 >"$OUT/bench2.txt" 2>&1
echo "bench exit $?" >>"$OUT/bench2.txt"

for w in mnist_mlp tiny_gpt; do
  for p in single dp hybrid opsplit auto; do
    printf '%s %s: ' "$w" "$p"
    timeout 40 taskset -c 4-7 "$bin" train --model "$w" --steps 20 --warmup 3 --plan "$p" --json 2>/dev/null | tail -n 1 |
      "$python" -c 'import json, sys
try:
    d = json.load(sys.stdin)
    print(d["ms_per_step"], "ms/step, predicted", round(d.get("predicted_step_ms") or 0, 2), "error",
          d.get("prediction_error"), d["plan"]["strategy"], d.get("busy"))
except Exception as e:
    print("no result", e)'
  done
done >"$OUT/cores4.txt" 2>&1

#!/usr/bin/env bash
# Acceptance through the command line: one Adam step from PyTorch's parameters must match the
# reference's adam1.* tensors, and one SGD step with lr 1000 must give back its gradients.
source "$(dirname "$0")/lib.sh"

check() { # FILE SPEC BATCH [EXTRA FLAGS...]
  local file=$1 spec=$2 batch=$3
  shift 3
  "$PO_BIN" train --model "$spec" --init "$file" --data "$file" --steps 1 --batch "$batch" "$@" \
      --optimizer adam --lr 1e-3 --save "$TMP/adam.safetensors" --json >"$TMP/json" 2>"$TMP/err" \
    || { fail "train (adam) failed for $spec $*: $(tail -n 2 "$TMP/err")"; return; }
  tail -n 1 "$TMP/json" | grep -q '"final_loss"' || fail "no JSON summary for $spec"
  "$PO_ST_COMPARE" adam "$TMP/adam.safetensors" "$file" >"$TMP/cmp" || { fail "adam1 mismatch for $spec"; cat "$TMP/cmp"; }
  "$PO_BIN" train --model "$spec" --init "$file" --data "$file" --steps 1 --batch "$batch" "$@" \
      --optimizer sgd --lr 1000 --save "$TMP/sgd.safetensors" >/dev/null 2>"$TMP/err" \
    || { fail "train (sgd) failed for $spec $*: $(tail -n 2 "$TMP/err")"; return; }
  "$PO_ST_COMPARE" sgd-grad "$TMP/sgd.safetensors" "$file" 1000 >"$TMP/cmp" || { fail "gradient mismatch for $spec"; cat "$TMP/cmp"; }
  echo "ok: $spec $*"
}

check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16
check "$REF/cifar_cnn.safetensors" "cifar_cnn:c1=8,c2=16,hidden=32,classes=10,image=3x32x32" 4
check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2
check "$EXTRA/mnist_mlp_small.safetensors" "mnist_mlp:d_in=30,hidden=20,classes=7" 5
check "$EXTRA/cifar_cnn_fashion.safetensors" "cifar_cnn:c1=4,c2=6,hidden=12,classes=5,image=1x28x28" 3
check "$EXTRA/tiny_gpt_3l6h.safetensors" "tiny_gpt:vocab=50,d_model=48,layers=3,heads=6,seq=12" 3
# Every plan gives the same numbers: data parallel over two cores (even and uneven shares), the
# planner's choice, named families, plan files, pipelines.
if [ "$(nproc)" -ge 2 ]; then
  check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --devices cpu:0,cpu:1
  check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2 --devices cpu:0,cpu:1
  check "$REF/cifar_cnn.safetensors" "cifar_cnn:c1=8,c2=16,hidden=32,classes=10,image=3x32x32" 4 \
    --devices cpu:0,cpu:1 --shares 3,1
  # Each --plan: the planner's choice, a named family, and plan files forcing a family (uneven
  # shares, devices in another order).
  for plan in auto single dp; do
    check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --devices cpu:0,cpu:1 \
      --plan $plan --calibrate 1
    check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2 --devices cpu:0,cpu:1 \
      --plan $plan --calibrate 1
  done
  plan_file() { # STRATEGY BATCH LAST_LAYER REPLICAS...
    local strategy=$1 batch=$2 last=$3 reps=""
    shift 3
    for r in "$@"; do reps="$reps${reps:+, }{\"device\": \"${r%=*}\", \"share\": ${r#*=}}"; done
    printf '{"strategy": "%s", "objective": "time", "batch": %s, "micro_batches": 1, "schedule": "none",\n "stages": [{"layers": [0, %s], "replicas": [%s]}]}\n' \
      "$strategy" "$batch" "$last" "$reps" >"$TMP/plan-$strategy.json"
  }
  plan_file dp 16 2 cpu:1=0.75 cpu:0=0.25
  check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --plan "$TMP/plan-dp.json" --calibrate 0
  plan_file single 16 2 cpu:1=1
  check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --plan "$TMP/plan-single.json" --calibrate 0
  # Operator split: large matrix products shared out between two cores by share (cpu:1 first in
  # the second, so the core that runs the graph is cpu:1).
  plan_file opsplit 16 2 cpu:0=0.6 cpu:1=0.4
  check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --plan "$TMP/plan-opsplit.json" --calibrate 0
  grep -q '"strategy":"opsplit"' "$TMP/json" || fail "the opsplit plan file did not train an opsplit plan"
  plan_file opsplit 2 3 cpu:1=0.25 cpu:0=0.75
  check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2 --plan "$TMP/plan-opsplit.json" --calibrate 0
  grep -q '"strategy":"opsplit"' "$TMP/json" || fail "the opsplit plan file did not train an opsplit plan"
  # Pipelines: two stages over micro-batches, GPipe and 1F1B (layers: mnist_mlp l1 | l2 l3;
  # tiny_gpt embed blocks.0 | blocks.1 head), and the planner's best pipeline (--plan pp).
  pp_file() { # NAME BATCH MICRO SCHEDULE CUT LAST
    printf '{"strategy": "pp", "objective": "time", "batch": %s, "micro_batches": %s, "schedule": "%s",\n "stages": [{"layers": [0, %s], "replicas": [{"device": "cpu:1", "share": 1}]}, {"layers": [%s, %s], "replicas": [{"device": "cpu:0", "share": 1}]}]}\n' \
      "$2" "$3" "$4" "$5" "$(($5 + 1))" "$6" >"$TMP/$1.json"
  }
  for sched in gpipe 1f1b; do
    pp_file mlp-$sched 16 4 $sched 0 2
    check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --plan "$TMP/mlp-$sched.json" --calibrate 0
    pp_file gpt-$sched 2 2 $sched 1 3
    check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2 --plan "$TMP/gpt-$sched.json" --calibrate 0
  done
  check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2 --devices cpu:0,cpu:1 \
    --plan pp --calibrate 1
  grep -q '"strategy":"pp"' "$TMP/json" || fail "--plan pp did not train a pipeline: $(tail -c 300 "$TMP/json")"
else
  echo "data-parallel checks skipped: one core"
fi
# Hybrid: two stages, each data parallel over two cores (uneven lane shares, 1F1B), and the
# planner's best hybrid (--plan hybrid). Four devices are needed; on fewer cores the runtime's
# hybrid numbers are checked by unit/test_hybrid with workers sharing cores.
if [ "$(nproc)" -ge 4 ]; then
  hy_file() { # NAME BATCH MICRO SCHEDULE CUT LAST
    printf '{"strategy": "hybrid", "objective": "time", "batch": %s, "micro_batches": %s, "schedule": "%s",\n "stages": [{"layers": [0, %s], "replicas": [{"device": "cpu:0", "share": 0.25}, {"device": "cpu:1", "share": 0.75}]}, {"layers": [%s, %s], "replicas": [{"device": "cpu:2", "share": 0.25}, {"device": "cpu:3", "share": 0.75}]}]}\n' \
      "$2" "$3" "$4" "$5" "$(($5 + 1))" "$6" >"$TMP/$1.json"
  }
  hy_file mlp-hybrid 16 2 1f1b 0 2
  check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --plan "$TMP/mlp-hybrid.json" --calibrate 0
  grep -q '"strategy":"hybrid"' "$TMP/json" || fail "the hybrid plan file did not train a hybrid plan"
  printf '{"strategy": "hybrid", "objective": "time", "batch": 2, "micro_batches": 1, "schedule": "gpipe",\n "stages": [{"layers": [0, 1], "replicas": [{"device": "cpu:0", "share": 0.5}, {"device": "cpu:1", "share": 0.5}]}, {"layers": [2, 3], "replicas": [{"device": "cpu:2", "share": 0.5}, {"device": "cpu:3", "share": 0.5}]}]}\n' >"$TMP/gpt-hybrid.json"
  check "$REF/tiny_gpt.safetensors" "tiny_gpt:vocab=64,d_model=64,layers=2,heads=4,seq=32" 2 --plan "$TMP/gpt-hybrid.json" --calibrate 0
  check "$REF/mnist_mlp.safetensors" "mnist_mlp:d_in=784,hidden=64,classes=10" 16 --devices cpu:0,cpu:1,cpu:2,cpu:3 \
    --plan hybrid --calibrate 1
  grep -q '"strategy":"hybrid"' "$TMP/json" || fail "--plan hybrid did not train a hybrid plan"
else
  echo "hybrid checks skipped: fewer than four cores (unit/test_hybrid covers the runtime)"
fi
finish

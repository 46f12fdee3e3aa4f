#!/usr/bin/env bash
# Bad input gives one clear line on stderr and a non-zero exit; nothing on disk is damaged.
source "$(dirname "$0")/lib.sh"
MNIST="$REF/mnist_mlp.safetensors"
SPEC="mnist_mlp:d_in=784,hidden=64,classes=10"
train() { "$PO_BIN" train --model "$SPEC" --batch 16 --steps 1 "$@"; }

# Malformed safetensors files.
head -c 5 "$MNIST" >"$TMP/tiny.st"
head -c 3000 "$MNIST" >"$TMP/trunc_header.st"
head -c 200000 "$MNIST" >"$TMP/trunc_data.st"
{ printf '\xff\xff\xff\x00\x00\x00\x00\x00'; tail -c +9 "$MNIST"; } >"$TMP/hdrlen.st"
perl -0777 -pe 's/"F32"/"F16"/' "$MNIST" >"$TMP/f16.st"
perl -0777 -pe 's/"F32"/"Q99"/' "$MNIST" >"$TMP/q99.st"
printf '\x02\x00\x00\x00\x00\x00\x00\x00{]' >"$TMP/badjson.st"
expect_error "--init" train --init "$TMP/tiny.st"
expect_error "--init" train --init "$TMP/trunc_header.st"
expect_error "--init" train --init "$TMP/trunc_data.st"
expect_error "header" train --init "$TMP/hdrlen.st"
expect_error "F16" train --init "$TMP/f16.st"
expect_error "Q99" train --init "$TMP/q99.st"
expect_error "--init" train --init "$TMP/badjson.st"
expect_error "--data" train --data "$TMP/trunc_data.st"
expect_error "--init" train --init "$TMP/does-not-exist.st"
# Shape mismatch between the model and the file, in both directions.
expect_error "shape" "$PO_BIN" train --model mnist_mlp:hidden=32 --init "$MNIST" --steps 1 --batch 16
expect_error "samples" "$PO_BIN" train --model mnist_mlp:d_in=100 --data "$MNIST" --steps 1 --batch 16
expect_error "target" "$PO_BIN" train --model mnist_mlp:d_in=784,classes=5 --data "$MNIST" --steps 1 --batch 16
# Unknown model or key, bad flag values.
expect_error "unknown model" "$PO_BIN" train --model resnet
expect_error "no key" "$PO_BIN" train --model mnist_mlp:depth=2
expect_error "bad value" "$PO_BIN" train --model mnist_mlp:hidden=-3
expect_error "--steps" train --steps 0
expect_error "--steps" train --steps ten
expect_error "--batch" train --batch 0
expect_error "--lr" train --lr -1
expect_error "--lr" train --lr nan
expect_error "--optimizer" train --optimizer rmsprop
expect_error "--momentum" train --optimizer adam --momentum 0.9
expect_error "--seed" train --seed -4
expect_error "unknown option" train --bogus
expect_error "needs a value" train --lr
expect_error "unexpected argument" train extra
expect_error "unknown command" "$PO_BIN" frobnicate
expect_error "directory" train --save "$TMP/no/such/dir/out.st"

# A failing run leaves an existing output file exactly as it was, and no temporary files.
printf 'precious' >"$TMP/keep.st"
expect_error "--init" train --init "$TMP/trunc_data.st" --save "$TMP/keep.st"
[ "$(cat "$TMP/keep.st")" = precious ] || fail "--save target changed by a failed run"
ls -A "$TMP" | grep -q '\.tmp\.' && fail "temporary file left behind"
finish

#!/usr/bin/env bash
# Packs a build for the GPU device machine (the workplace's `run` tool), which has no Debian
# packages: a Release build for any AVX-512 x86-64 CPU (x86-64-v4, not -march=native: the device
# is an Intel Xeon, this machine may be an AMD EPYC), its tests, and the shared libraries they
# load, into .devkit/ (ignored by git; about 30 MB). scripts/device_check.sh unpacks and runs it
# there:
#
#   scripts/device_kit.sh
#   run(command="bash scripts/device_check.sh", carry=[".devkit"], timeout_s=540)
#
# The kit is what the working tree is now: rebuild it after every change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir=$root/build-device
kit=$root/.devkit
command -v zstd >/dev/null || { echo "device_kit: needs zstd (apt-get install zstd)" >&2; exit 1; }

echo "device_kit: building $bdir (Release, -march=x86-64-v4)" >&2
cmake -S "$root" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DPO_NATIVE=OFF -DCMAKE_C_FLAGS="-march=x86-64-v4" >/dev/null
cmake --build "$bdir" -j "$(nproc)" >/dev/null

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build-device" "$stage/lib"
echo "$root" >"$stage/ROOT"
# Executables and shared objects, stripped (each test links the static OpenBLAS: zstd's long
# window stores it once), and every CTest file (their paths are absolute: ROOT says where).
(cd "$bdir" && find . \( -name CTestTestfile.cmake -o \( -type f \( -perm -u+x -o -name '*.so' \) \) \) \
  -not -path '*/CMakeFiles/*' -print0) | while IFS= read -r -d '' f; do
  mkdir -p "$stage/build-device/$(dirname "$f")"
  cp "$bdir/$f" "$stage/build-device/$f"
  case "$f" in *CTestTestfile.cmake) ;; *) strip --strip-unneeded "$stage/build-device/$f" 2>/dev/null || true ;; esac
done
# Their libraries, but for the C runtime every Linux has.
find "$stage/build-device" -type f -perm -u+x -exec ldd {} \; 2>/dev/null | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64)\.so' | while read -r lib; do
  cp -L "$lib" "$stage/lib/"
done

rm -rf "$kit"
mkdir -p "$kit/zstd-lib"
tar -C "$stage" -cf - . | zstd -q --long=30 -12 -T0 -o "$kit/kit.tar.zst"
# zstd itself for the device, with its libraries.
cp "$(command -v zstd)" "$kit/zstd"
ldd "$kit/zstd" | awk '$3 ~ /^\// {print $3}' | grep -vE '/(libc|libm|ld-linux-x86-64)\.so' | while read -r lib; do
  cp -L "$lib" "$kit/zstd-lib/"
done
echo "device_kit: $(du -sh "$kit" | cut -f1) in $kit" >&2

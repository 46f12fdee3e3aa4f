#!/usr/bin/env bash
# Installs the Debian packages paropt needs, only those missing; quick when all are present.
#   scripts/deps.sh          build and test dependencies
#   scripts/deps.sh --peer   also PyTorch and threaded OpenBLAS, for bench/ (never a dependency
#                            of paropt itself)
set -euo pipefail

packages=(
  cmake make gcc pkg-config   # build
  libdnnl-dev                 # oneDNN: convolution primitives and one of the two GEMM providers
  libopenblas-serial-dev      # OpenBLAS (single-threaded build): the other GEMM provider
  libjansson-dev              # JSON: safetensors headers, --json output
  libhwloc-dev                # hwloc: CPU topology (cores, caches, NUMA) for paropt devices
  libcmocka-dev               # unit tests
  graphviz                    # optional: `paropt analyze --svg` renders with dot; installed so the DOT test runs
  zlib1g-dev                  # zlib: reads gzip-compressed datasets (Fashion-MNIST ships as .gz)
  dataset-fashion-mnist       # Fashion-MNIST in /usr/share/datasets: data for `make run` and tests
)
if [[ "${1:-}" == "--peer" ]]; then
  # Debian's PyTorch falls back to reference BLAS without an optimised libblas.so.3; the
  # threaded OpenBLAS gives it its best speed, so the comparison is fair.
  packages+=(python3-torch python3-numpy libopenblas0-pthread)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/paropt-deps.log 2>&1; then
  "${sudo[@]}" apt-get update -q >/tmp/paropt-deps.log 2>&1 || true
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/paropt-deps.log 2>&1 || {
    echo "deps: apt-get failed; see /tmp/paropt-deps.log" >&2
    tail -5 /tmp/paropt-deps.log >&2
    exit 1
  }
fi

#!/usr/bin/env bash
# Configures and builds scaletune into build/ (Release, Ninja, ccache): build/scaletune and the
# LibTorch plugin build/libscaletune_torch.so.
#
#   BUILD_DIR=build   where to build
#   JOBS=N            parallel compile jobs (default: cores; each LibTorch file needs ~1.5 GB)
#   TORCH_PREFIX=DIR  a CUDA LibTorch to build against (default: the one of a CUDA-enabled
#                     `torch` Python package when a GPU is present, else Debian's CPU LibTorch)
#   CMAKE_ARGS="..."  extra CMake arguments
# Arguments name targets to build (default: everything, tests and benchmarks included), e.g.
#   bash scripts/build.sh scaletune     the program and its LibTorch plugin only
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
args=(-DCMAKE_BUILD_TYPE=Release)

torch_prefix=${TORCH_PREFIX:-}
if [ -z "$torch_prefix" ] && command -v nvidia-smi >/dev/null 2>&1; then
  for py in python3 /usr/bin/python3; do
    p=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path if torch.version.cuda else "")' \
        2>/dev/null || true)
    if [ -n "$p" ]; then torch_prefix=$p; break; fi
  done
fi
if [ -n "$torch_prefix" ]; then
  echo "build: using LibTorch from $torch_prefix"
  args+=(-DCMAKE_PREFIX_PATH="$torch_prefix")
fi

# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -G Ninja "${args[@]}" ${CMAKE_ARGS:-}
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"

#!/usr/bin/env bash
# Installs every system dependency of scaletune from Debian 12 packages.
# Idempotent and quick when everything is there: apt runs only for missing packages.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # LibTorch (CPU) and a fast BLAS: Debian's default reference BLAS makes LibTorch ~15x slower.
  # The OpenMP build of OpenBLAS shares LibTorch's OpenMP threads (the pthread build can fight
  # them; docs/platform-notes.md). libgloo-dev holds the headers of c10d's Gloo backend.
  libtorch-dev libopenblas0-openmp libgloo-dev
  # MPI, records, configs, logging, numerics, CLI, tests
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libspdlog-dev libyaml-cpp-dev libeigen3-dev libceres-dev libcli11-dev nlohmann-json3-dev
  googletest libgtest-dev
  # Python interop and reference comparisons (Debian's python3 at /usr/bin/python3)
  python3 python3-torch python3-h5py python3-numpy
  # scaling: headless chromium renders the fit report in a test; SciPy is the benchmark's reference
  chromium python3-scipy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -q -o DPkg::Lock::Timeout=600
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "${missing[@]}"

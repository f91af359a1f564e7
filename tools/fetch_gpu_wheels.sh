#!/usr/bin/env bash
# Download the wheels that tools/gpu_check.sh installs on a lent GPU machine, into .whl/ (git-ignored).
#
# Why wheels: that machine reaches no package registry. Its image has Python 3.12 with JAX and PyTorch (CUDA
# builds) and most of Keras's needs (absl-py, h5py, ml-dtypes, numpy, packaging, rich with markdown-it-py, mdurl and
# pygments, typing-extensions: see KINDS.md's package list), but not Keras itself nor two of its needs. So exactly
# three wheels travel, pinned to what NeuralStudio is tested with:
#   keras 3.15.1 (pure Python; >= 3.15.1 for the model-loading CVE fixes, pyproject.toml)
#   namex 0.1.0  (pure Python; Keras's API export helper)
#   optree 0.20.0 (binary: CPython 3.12, manylinux x86-64; needs typing-extensions, which the machine has)
#
#   tools/fetch_gpu_wheels.sh                    # .whl/ for the GPU machine (about 2 MB)
#   tools/fetch_gpu_wheels.sh --simulation DIR   # also the machine's own packages into DIR, to rehearse here
#
# --simulation: the packages the GPU machine already has, for a bare venv here that stands in for it (Python 3.12
# with only jax, torch, numpy and pillow): tools/gpu_check.sh --extra-wheels DIR installs them beside .whl/.
# They are kept out of .whl/ so that they never travel to (and shadow the versions of) the real machine.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --simulation) SIM_DIR="${2:?--simulation needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

PY="${PYTHON:-python3}"
# the download command of the device README: CPython 3.12 wheels for manylinux x86-64, no dependencies resolved
download() {
  local dest="$1"; shift
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dest" "$@"
}

DEVICE_WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0)
# present on the GPU machine; only for the rehearsal (versions as in NeuralStudio's own venv)
MACHINE_PACKAGES=(absl-py==2.5.1 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 h5py==3.14.0
                  packaging==26.4)

mkdir -p .whl
rm -f .whl/*.whl  # one version of each: two would stop the whole install there
download .whl "${DEVICE_WHEELS[@]}"
echo "in .whl/:"; ls -1 .whl
if [ -n "$SIM_DIR" ]; then
  mkdir -p "$SIM_DIR"
  rm -f "$SIM_DIR"/*.whl
  download "$SIM_DIR" "${MACHINE_PACKAGES[@]}"
  echo "in $SIM_DIR/ (rehearsal only):"; ls -1 "$SIM_DIR"
fi

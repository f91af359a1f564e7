#!/usr/bin/env bash
# Train NeuralStudio on Keras's JAX and PyTorch backends, on the GPU and on the CPU, and print one table.
#
# Made for a lent NVIDIA GPU machine (see tools/gpu_check.py): its Python has JAX and PyTorch with CUDA but no Keras,
# no TensorFlow, no Qt and no package registry, so Keras and its two missing needs are installed from the wheels
# that tools/fetch_gpu_wheels.sh downloaded into .whl/ (carry that folder), into /tmp/site, which goes first on
# PYTHONPATH with this checkout after it (NeuralStudio runs from source, nothing of it is installed).
#
#   tools/gpu_check.sh [--cpu-only] [--extra-wheels DIR] [gpu_check.py options: --backends, --templates,
#                      --epochs, --no-probe, --time-limit SECONDS (default 480), --json FILE]
#
# --cpu-only: train on the CPU even where a GPU is seen (without a GPU the check says so and trains on the CPU).
# --extra-wheels DIR: install DIR/*.whl too: the GPU machine's own packages, to rehearse in a bare venv here
#   (tools/fetch_gpu_wheels.sh --simulation DIR).
# PYTHON: the interpreter (default python3); GPU_CHECK_SITE: where the wheels go (default /tmp/site).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/site}"
EXTRA=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --extra-wheels) EXTRA="${2:?--extra-wheels needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

shopt -s nullglob
WHEELS=(.whl/*.whl)
if [ ${#WHEELS[@]} -eq 0 ]; then
  echo "gpu_check: no wheels in .whl/: run tools/fetch_gpu_wheels.sh where pip reaches PyPI, and carry .whl" >&2
  exit 2
fi
if [ -n "$EXTRA" ]; then
  WHEELS+=("$EXTRA"/*.whl)
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${WHEELS[@]}"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "gpu_check: nvidia-smi not found: no NVIDIA GPU here, the check trains on the CPU"
fi
exec "$PY" tools/gpu_check.py ${ARGS[@]+"${ARGS[@]}"}

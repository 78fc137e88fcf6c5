#!/usr/bin/env bash
# The GPU check in one call, for whoever has a GPU: sets up .venv if needed (make setup), prints nvidia-smi, runs
# `python -m bench gpu` under a hard timeout, and writes the table to a file (default bench-gpu.txt) as it goes.
#   bench/gpu_check.sh [OUT_FILE]           # e.g. on the GPU machine: timeout 540 bench/gpu_check.sh "$OUT/gpu.txt"
# The check itself budgets 7 minutes (bench/gpu.py BUDGET_S); TIMEOUT (default 500 s) stops it for sure.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-gpu.txt}"
mkdir -p "$(dirname "$out")"
# PYTHON: an interpreter with gnsweep's dependencies (TensorFlow, Keras 3, Ray); default .venv (made by make setup)
PY="${PYTHON:-.venv/bin/python}"
if [ -z "${PYTHON:-}" ] && [ ! -x "$PY" ]; then make setup >/dev/null || exit 1; fi
"$PY" -c "import tensorflow, keras, ray" 2>/dev/null || { echo "gpu_check: $PY lacks tensorflow, keras or ray" >&2; exit 2; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
  echo "# gnsweep GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
} | tee "$out"
timeout "${TIMEOUT:-500}" "$PY" -m bench gpu 2>&1 | grep -v -E '^(I|W|E)0000 |^WARNING: All log messages' | tee -a "$out"
rc=${PIPESTATUS[0]}
echo "exit status $rc (124: timed out)" | tee -a "$out"
echo "# the tests that need a GPU (memory limit and growth on real devices)" | tee -a "$out"
timeout "${TEST_TIMEOUT:-120}" "$PY" -m pytest -q -p no:cacheprovider tests/trainer/test_device.py \
  tests/cluster/test_gpu_packing.py -k "real_gpus" 2>&1 | tail -5 | tee -a "$out"
exit "$rc"

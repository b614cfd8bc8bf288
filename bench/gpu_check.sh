#!/usr/bin/env bash
# The GPU check in one command, under 5 minutes on one NVIDIA GPU, with no network:
#   bash bench/gpu_check.sh               tests/test_gpu.py, then bench/gpu_check.py (1B and 8B, LoRA and QLoRA,
#                                         Studio vs plain TRL + PEFT, chat and evaluation on the GPU): one JSON line
#   bash bench/gpu_check.sh --cpu-smoke   the same code on a tiny model on the CPU (CI runs this, so it cannot rot)
# Run from the repository root after `make setup-dev` (or with the packages of requirements.txt installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ "${1:-}" != "--cpu-smoke" ]; then
  "$PY" -m pytest -q tests/test_gpu.py
fi
exec "$PY" bench/gpu_check.py "$@"

#!/usr/bin/env bash
# Create .venv and install profkit with its test tools. Idempotent; run from anywhere.
# torch: the CPU build 2.13.0 by default; set PROFKIT_TORCH_SPEC (e.g. "torch==2.13.0") to choose another.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "${PROFKIT_TORCH_SPEC:-torch==2.13.0}"
python -m pip install -q hatchling
python -m pip install -q -e '.[test]'

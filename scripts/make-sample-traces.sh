#!/usr/bin/env bash
# Re-create traces/: a small FP32 and FP16 capture of the built-in pipeline, made by profkit itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
profkit capture --dtype fp32,fp16 --steps 4 --seed 0 --out traces --no-analyze --force

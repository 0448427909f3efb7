#!/usr/bin/env bash
# The main job on a fresh machine: set up, capture FP32 and FP16 of the built-in pipeline,
# analyze both, compare them, and print where the HTML reports are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
. .venv/bin/activate
OUT="${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}"
profkit capture --dtype fp32,fp16 --steps 10 --out "$OUT"
echo
echo "HTML reports:"
find "$OUT" -name '*.html' | sort | sed 's/^/  /'

#!/usr/bin/env bash
# The main job on a fresh machine: set up, capture FP32 and FP16 of the built-in pipeline,
# analyze both, compare them, benchmark batch 1 vs 2 (latency percentiles, throughput, cost),
# and print where the HTML reports are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
. .venv/bin/activate
OUT="${1:-runs/demo-$(date +%Y%m%d-%H%M%S)}"
profkit capture --dtype fp32,fp16 --steps 10 --out "$OUT"
profkit bench --dtype fp32 --batch 1,2 --steps 10 --warmup 2 --trials 10 --instance aws-g5.xlarge --out "$OUT/bench"
echo
echo "HTML reports:"
find "$OUT" -name '*.html' | sort | sed 's/^/  /'

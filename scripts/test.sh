#!/usr/bin/env bash
# Set up and run the whole test suite (lint included). Extra arguments go to pytest.
# Quick run while working (skips integration tests: captures, CLI subprocesses, the wheel; a few minutes):
#     python -m pytest -q -m "not slow"        (or: bash scripts/test.sh -m "not slow")
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
# Nsight Systems for the nsys tests (Debian/Ubuntu; needs root or sudo). CI must have it.
if ! bash scripts/install-nsys.sh; then
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    echo "test.sh: could not install Nsight Systems; the nsys capture tests will be skipped" >&2
fi
. .venv/bin/activate
ruff check .
python -m pytest -q "$@"

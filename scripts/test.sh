#!/usr/bin/env bash
# Set up and run the whole test suite (lint included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
. .venv/bin/activate
ruff check .
python -m pytest -q "$@"

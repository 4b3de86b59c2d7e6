#!/usr/bin/env bash
# Set up, lint, then run the whole test suite (tests that need a cluster say why they are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/ruff check xstilts tests benchmarks
exec .venv/bin/python -m pytest -rs "$@"

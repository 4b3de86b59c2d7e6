#!/usr/bin/env bash
# Set up, lint (ruff check, ruff format --check), then run the whole test suite (tests that need a cluster say why they are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/ruff check xstilts tests benchmarks
.venv/bin/ruff format --check xstilts tests benchmarks
# Two workers: end-to-end tests wait on phase subprocesses, so two of them keep both cores busy.
# loadgroup: tests marked with the same xdist_group (the research twins, which share a store) stay on one
# worker, in order.
exec .venv/bin/python -m pytest -rs -n 2 --dist loadgroup "$@"

#!/usr/bin/env bash
# Set up, then run the tiny sweep end to end on the embedded default: local backend, local store
# (./xstilts-runs), tiny random-init encoder, fixture data, no network, no cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/xstilts sweep submit jobs/tiny.yaml "$@"

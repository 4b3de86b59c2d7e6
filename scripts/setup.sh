#!/usr/bin/env bash
# Create ./.venv and install xstilts with the CPU extras (pinned CPU torch), DeepSpeed and the test
# tools, from project files only. Idempotent: re-installs only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${XSTILTS_VENV:-.venv}"
stamp="$VENV/.xstilts-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/xstilts" ]; then
  exit 0
fi
echo "setting up $VENV (CPU torch, DeepSpeed, test tools; a few minutes the first time)" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
DS_BUILD_OPS=0 "$VENV/bin/python" -m pip install --quiet -e '.[cpu,deepspeed,test]'
echo "$want" > "$stamp"

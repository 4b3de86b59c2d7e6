"""Shared test set-up: offline Hugging Face, a per-session cache (fixtures, tiny models), and helpers
for running the real `xstilts` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def offline_session_cache(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("xstilts-cache")
    saved = {
        k: os.environ.get(k) for k in ("XSTILTS_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME")
    }
    os.environ["XSTILTS_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HOME"] = str(cache / "hf")
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run_xstilts(*args: str, env: dict[str, str] | None = None, timeout: float = 900, cwd: Path | None = None):
    """Run `python -m xstilts ARGS` as a user would; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "xstilts", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
    )

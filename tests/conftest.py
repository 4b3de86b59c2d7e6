"""Shared test set-up: offline Hugging Face, a per-session cache (fixtures, tiny models), and helpers
for running the real `xstilts` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ("tests.tiny_model",)


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


_DEEPSPEED = {"enabled": False, "stage": 2, "offload_optimizer": False}
_DATA = {"source": "fixtures", "fixtures_size": "tiny"}
_EXAMPLE_CONFIGS: dict[str, dict[str, Any]] = {
    "encoder": {"model": "tiny", "revision": None, "checkpoint": "masked-lm", "data": _DATA},
    "mlm": {"task": "mlm", "corpus": None, "mask_probability": 0.15, "seed": 1, "data": _DATA, "training": {},
            "deepspeed": _DEEPSPEED},
    "intermediate": {"task": "mnli", "tasks": ["mnli"], "seed": 1, "data": _DATA, "training": {},
                     "deepspeed": _DEEPSPEED},
    "target": {"task": "xnli", "seed": 1, "data": _DATA, "training": {}, "deepspeed": _DEEPSPEED},
    "evaluate": {"task": "xnli", "languages": ["en"], "data": _DATA, "max_length": 128, "doc_stride": 64,
                 "max_eval_examples": None, "retrieval_layer": None},
    "analysis": {"task": "domain-alignment", "intermediate_tasks": ["mnli"], "targets": ["xnli"],
                 "data": _DATA, "max_examples": 100, "seed": 0, "same_corpus": "flag",
                 "languages": {"xnli": ["en"]}, "retrieval_layer": None},
    "taskemb": {"task": "mnli", "data": _DATA, "retrieval_layer": None, "seed": 0, "text_examples": 8,
                "fisher_examples": 4, "max_pool": 16, "max_length": 64, "doc_stride": 32, "sketch_dim": 16},
}  # fmt: skip


def example_config(kind: str, **fields: Any) -> dict[str, Any]:
    """A valid config of a `kind` phase (plan/configs.py), for a test that builds a Phase by hand."""
    return {**_EXAMPLE_CONFIGS[kind], **fields}

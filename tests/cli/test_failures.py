"""A failed phase explains itself: its last error line in `status` and at the end of `submit`, local
wording, a configuration error found at run time not retried, and hints that work when pasted."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write


@pytest.mark.xdist_group("failures")
def test_a_model_that_cannot_be_loaded_is_a_configuration_error(tmp_path: Path):
    model = "xstilts-test/no-such-model"
    sweep = write(tmp_path, micro(encoders=[{"name": "missing", "model": model}]))
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "BackoffLimitExceeded" not in result.stderr
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert re.search(r"1 phase\(s\) failed, \d+ blocked \(first: encoder/", last), last
    assert "configuration error, not retried" in last
    assert f"model '{model}' cannot be loaded" in last and "HF_HUB_OFFLINE" in last

    status = run_xstilts("sweep", "status", str(sweep), "--store", str(store), "-o", "json")
    encoder = next(p for p in json.loads(status.stdout)["phases"] if p["name"].startswith("encoder/"))
    assert encoder["state"] == "failed"
    assert encoder["reason"].startswith("configuration error, not retried: exit code 3")
    assert f"model '{model}' cannot be loaded" in encoder["reason"]
    table = run_xstilts("sweep", "status", str(sweep), "--store", str(store), env={"COLUMNS": "200"})
    assert "cannot be loaded" in table.stdout

    hint = last.split("logs: ", 1)[1]
    assert hint.startswith("xstilts sweep logs ") and "ADDRESS" not in hint
    logs = run_xstilts(*shlex.split(hint)[1:])
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.count("cannot be loaded") >= 1
    assert "failed after" not in logs.stdout, "exit 3 is not retried"
    raw = run_xstilts(*shlex.split(hint)[1:], "-o", "json")
    assert raw.stdout.count('"event": "start"') == 1, "neither the backend nor the reconciler retried it"


def test_local_failures_are_worded_locally(tmp_path: Path):
    from xstilts.backends.errorline import last_error_line

    log = tmp_path / "phase.log"
    log.write_text(
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "OSError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '/x'.\n"
    )
    assert (
        last_error_line(log)
        == "OSError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '/x'."
    )
    log.write_text("noise\nError: data.ccgbank: not a directory\nsome later output\n")
    assert last_error_line(log) == "data.ccgbank: not a directory"

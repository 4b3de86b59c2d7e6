"""The planning-only benchmarks run against today's library (they import the planner and the phase
configs, so an interface change that breaks them fails here, not in the next benchmark session).
Their figures are measured by running them, never asserted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("sweep_cost.py", "| **total executed** |"),
        ("search_projection.py", "| pawsx | 31 |"),
    ],
)
def test_planning_benchmark_runs(script: str, expected: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            script,
            *(["--targets", "pawsx", "--seeds", "1"] if script.startswith("search") else []),
        ],
        cwd=REPO / "benchmarks",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected in result.stdout, result.stdout[-3000:]

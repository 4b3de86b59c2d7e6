"""One output convention: data on stdout (table, or JSON with -o json), messages on stderr, and every
OSError one line with an exit code, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
runner = CliRunner()


def test_an_unwritable_output_path_is_one_line(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out_dir in ("/proc/xstilts-manifests", str(blocker / "sub")):
        result = runner.invoke(app, ["sweep", "render", str(TINY), "--out", out_dir, "--no-release"])
        assert result.exit_code == 1, result.output
        (line,) = [line for line in result.stderr.splitlines() if line.strip()]
        assert line.startswith("Error: cannot ") and Path(out_dir).name in line, line
        assert "(fix: " in line and "Traceback" not in result.output


def test_json_modes_print_only_json_on_stdout(tmp_path: Path):
    for args in (
        ["sweep", "plan", str(TINY), "--offline", "-o", "json"],
        ["tasks", "list", "-o", "json"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        json.loads(result.stdout)
    table = runner.invoke(app, ["tasks", "list", "--role", "intermediate"])
    assert table.exit_code == 0 and "mnli" in table.stdout and "xnli " not in table.stdout

"""Help as users read it: no `<bool>`/`<str>` placeholders, choices for --backend and -o, defaults."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from xstilts.cli.main import app

runner = CliRunner()
COMMANDS = [
    ["sweep", "plan"],
    ["sweep", "render"],
    ["sweep", "submit"],
    ["sweep", "status"],
    ["sweep", "logs"],
    ["sweep", "cancel"],
    ["sweep", "init"],
    ["sweep", "show"],
    ["sweep", "list"],
    ["phase", "run"],
    ["tasks", "list"],
    ["report"],
    ["env"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_has_no_type_placeholders(command: list[str]):
    result = runner.invoke(app, [*command, "--help"], terminal_width=160, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout and "<str>" not in result.stdout, result.stdout
    if "│ --backend" in result.stdout:
        assert "<local|kubernetes>" in result.stdout
    if "│ --output" in result.stdout:
        assert "<table|json>" in result.stdout and "[default: table]" in result.stdout


def test_status_help_shows_defaults():
    result = runner.invoke(app, ["sweep", "status", "--help"], terminal_width=160, env={"COLUMNS": "160"})
    assert "[default: local]" in result.stdout and "[default: 5.0]" in result.stdout

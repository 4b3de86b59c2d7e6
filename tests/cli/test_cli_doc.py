"""docs/cli.md documents every command and option of the `xstilts` app (checked against the command
tree Typer builds, so that a new command or option cannot go undocumented)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "cli.md").read_text()
HEADING = re.compile(r"^(#+) `(xstilts[^`]*)`", re.M)


def _commands(command: Any, path: tuple[str, ...] = ("xstilts",)) -> Iterator[tuple[str, Any]]:
    """(path, command) for the root, every group and every command, depth first."""
    yield " ".join(path), command
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _sections() -> dict[str, str]:
    """Documented command path -> its section: from its heading to the next heading of any level
    (lines in code blocks are never headings)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in DOC.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            match = HEADING.match(line)
            current = out.setdefault(match[2], []) if match else None
        if current is not None:
            current.append(line)
    return {path: "\n".join(lines) for path, lines in out.items()}


SECTIONS = _sections()


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def test_every_command_and_group_has_a_section():
    missing = [path for path in COMMANDS if path not in SECTIONS]
    assert not missing, f"docs/cli.md has no `## `/`### ` heading for: {missing}"
    unknown = [path for path in SECTIONS if path not in COMMANDS]
    assert not unknown, f"docs/cli.md documents commands that do not exist: {unknown}"


def test_every_option_and_argument_is_documented_in_its_commands_section():
    missing = []
    for path, command in COMMANDS.items():
        if _is_group(command) and path != "xstilts":
            continue
        section = SECTIONS[path]
        for param in command.params:
            if param.param_type_name == "argument":
                names = [param.name.upper()]
            else:
                names = [o for o in [*param.opts, *param.secondary_opts] if o != "--help"]
            for name in names:
                if not re.search(rf"`{re.escape(name)}[` ]", section):
                    missing.append(f"{path}: {name}")
    assert not missing, "not in docs/cli.md:\n" + "\n".join(missing)


def test_every_command_has_an_example():
    for path, command in COMMANDS.items():
        if _is_group(command) and path != "xstilts":
            continue
        examples = re.findall(r"```bash\n(.*?)```", SECTIONS[path], re.S)
        assert any(path in example for example in examples), f"docs/cli.md: no example of `{path}`"


def test_the_readme_links_the_reference():
    assert "docs/cli.md" in (REPO / "README.md").read_text()

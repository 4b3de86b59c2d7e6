"""Output conventions: data on stdout (tables, or JSON only with `-o json`), messages on stderr."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from xstilts.errors import EXIT_INTERRUPTED, EXIT_RUN_FAILED, XstiltsError, disk_problem

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=1, default=str, ensure_ascii=False) + "\n")


def say(message: str) -> None:
    """A message on stderr, printed literally (a `[a-z]` in it is text, not markup)."""
    err.print(message, highlight=False, markup=False)


def error_line(message: str) -> None:
    """`Error: <message>` on stderr; the message is the user's text and is never read as markup."""
    err.print(Text.assemble(("Error:", "bold red"), " ", str(message)), highlight=False)


class Output:
    """What a command prints: its data on stdout, as a table (or lines) for people or as JSON with
    `-o json`, and its messages on stderr. Commands build the data once and hand both renderings here,
    instead of each branching on the output mode."""

    def __init__(self, mode: OutputFormat = OutputFormat.table):
        self.mode = mode

    @property
    def json(self) -> bool:
        return self.mode is OutputFormat.json

    def data(self, data: Any, table: Callable[[], Any] | None = None) -> None:
        """JSON of `data` in json mode; else whatever `table()` returns (a rich renderable, a string or
        None when it printed itself)."""
        if self.json or table is None:
            print_json(data)
            return
        rendered = table()
        if isinstance(rendered, str):
            self.line(rendered)
        elif rendered is not None:
            out.print(rendered)

    def line(self, text: str) -> None:
        """A line of data on stdout, literally."""
        out.print(text, highlight=False, markup=False, soft_wrap=True)

    @staticmethod
    def message(text: str) -> None:
        say(text)

    @staticmethod
    def warning(text: str) -> None:
        say(f"warning: {text}")


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the disk's problems with their fix, else what failed on which path."""
    message = disk_problem(exc)
    if message is not None:
        return message
    what = exc.strerror or exc.__class__.__name__
    where = f" {exc.filename}" if exc.filename else ""
    also = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    return f"cannot use{where}{also}: {what} (fix: check the path and its permissions)"


def handle_errors(fn: F) -> F:
    """The one map from errors to what the user sees: an XstiltsError is one line on stderr and its exit
    code; any OSError (a path that cannot be written, a full or read-only disk) is one line naming the
    path and the fix (exit 1), wherever it happens; Ctrl-C is exit 130. Never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except XstiltsError as exc:
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            error_line(os_error_line(exc))
            raise typer.Exit(EXIT_RUN_FAILED) from None
        except KeyboardInterrupt:
            say("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]

"""Load a sweep file: YAML -> `Sweep`, with every problem reported as one line naming file, field and fix."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from xstilts.errors import ConfigError
from xstilts.spec.models import Sweep
from xstilts.tasks import get_task


def field_path(loc: tuple[Any, ...]) -> str:
    """('intermediate', 1, 'sampling') -> 'intermediate[1].sampling'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (for suggesting field names)."""
    model: Any = Sweep
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        model = _first_model(annotation)
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _fix_for(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            return f"did you mean '{close[0]}'?"
        return f"remove it; allowed here: {', '.join(allowed)}" if allowed else "remove it"
    if kind == "missing":
        return "add this field"
    if kind == "literal_error":
        return f"use {error.get('ctx', {}).get('expected', 'one of the allowed values')}"
    if kind.startswith(("int_", "float_", "bool_", "string_", "list_", "dict_", "model_")):
        return "give a value of the expected type"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "give a value in range"
    return "see the sweep file reference in README.md"


def _validation_to_config_error(file: str, exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif "input" in error and error["type"] != "missing" and not isinstance(error["input"], dict | list):
        message = f"{message} (got {error['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        message += f"; and {more} more problem{'s' if more > 1 else ''}"
    return ConfigError(message, file=file, field=field_path(tuple(error["loc"])), fix=_fix_for(error))


def parse_sweep(data: Any, file: str = "<sweep>") -> Sweep:
    if not isinstance(data, dict):
        raise ConfigError(
            "the sweep file must be a YAML mapping", file=file, field="(top level)", fix="see jobs/tiny.yaml"
        )
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as exc:
        raise _validation_to_config_error(file, exc) from None
    check_tasks(sweep, file)
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file. Raises ConfigError (exit code 3) with a one-line message."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=file, fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the file ({exc.__class__.__name__})", file=file, fix="check it"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"invalid YAML at {where}: {problem}", file=file, fix="fix the YAML syntax"
        ) from None
    return parse_sweep(data, file)


def check_tasks(sweep: Sweep, file: str) -> None:
    """Task names, roles and languages must exist in the registry (closest names suggested)."""
    for i, spec in enumerate(sweep.intermediate):
        key = "tasks" if spec.tasks else "task"
        for j, name in enumerate(spec.task_names):
            field = f"intermediate[{i}].{key}" + (f"[{j}]" if spec.tasks else "")
            task = get_task(name, file=file, field=field)
            if task.train is None:
                raise ConfigError(
                    f"task '{task.name}' has no training data",
                    file=file,
                    field=field,
                    fix="pick a trainable task (see `xstilts tasks list`)",
                )
    for i, name in enumerate(sweep.targets):
        task = get_task(name, file=file, field=f"targets[{i}]")
        if not task.is_target():
            raise ConfigError(
                f"task '{task.name}' is not a target task",
                file=file,
                field=f"targets[{i}]",
                fix="pick a target task (see `xstilts tasks list`)",
            )
    for name, langs in sweep.languages.items():
        task = get_task(name, file=file, field=f"languages.{name}")
        for j, lang in enumerate(langs):
            if lang not in task.languages:
                close = difflib.get_close_matches(lang, task.languages, n=3, cutoff=0.3)
                hint = f"did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"task '{task.name}' has no language '{lang}'",
                    file=file,
                    field=f"languages.{name}[{j}]",
                    fix=f"{hint} {task.name} has: {' '.join(task.languages)}".strip(),
                )
    for name in sweep.task_training:
        get_task(name, file=file, field=f"task_training.{name}")

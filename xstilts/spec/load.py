"""Load a sweep file: YAML -> `Sweep`, with every problem reported as one line naming file, field and fix."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from xstilts.errors import ConfigError
from xstilts.spec.checks import check_protocols
from xstilts.spec.models import Sweep
from xstilts.spec.quantities import check_presets
from xstilts.spec.store_uri import check_store_uri
from xstilts.tasks import get_task


def field_path(loc: tuple[Any, ...]) -> str:
    """('intermediate', 1, 'sampling') -> 'intermediate[1].sampling'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for a bad dict key: the path already names the key
            continue
        else:
            text = str(part) if str(part).isprintable() else repr(part)  # a key may hold a newline
            out += f".{text}" if out else text
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
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^[a-z0-9]"):
            return "use lowercase letters, digits and '-', starting and ending with a letter or digit"
        return f"match the pattern {pattern}"
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
    check_protocols(sweep, file)
    check_presets(sweep.resources, file, "resources")
    if isinstance(sweep.kubernetes.get("presets"), dict):
        check_presets(sweep.kubernetes["presets"], file, "kubernetes.presets")
    check_seeds(sweep, file)
    return sweep


def check_seeds(sweep: Sweep, file: str) -> None:
    """A seed listed twice would run every phase of that seed twice under one address."""
    seen: set[int] = set()
    for i, seed in enumerate(sweep.seeds):
        if seed in seen:
            raise ConfigError(
                f"seed {seed} is listed twice", file=file, field=f"seeds[{i}]", fix="list each seed once"
            )
        seen.add(seed)


def check_model_paths(sweep: Sweep, file: str) -> None:
    """An encoder `model:` written as a local path must exist here (called where the phases run on this
    machine: the local backend; inside pods the path may be a mounted volume)."""
    for i, encoder in enumerate(sweep.encoders):
        model = encoder.model
        if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
            raise ConfigError(
                f"the local model path {model} does not exist",
                file=file,
                field=f"encoders[{i}].model",
                fix="give an existing directory saved with save_pretrained, or a Hugging Face model id",
            )


# Bounds on what a sweep file may make the loader build: a real sweep file is a few KiB, a handful of
# levels deep and some hundreds of nodes; these are far above that and far below what hurts.
MAX_SWEEP_BYTES = 1024 * 1024
MAX_DEPTH = 64  # nesting levels, counted after aliases are expanded
MAX_NODES = 100_000  # YAML nodes, counted after aliases are expanded (an alias bomb is tiny before)


class _TooDeep(Exception):
    def __init__(self, mark: Any):
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses to nest deeper than MAX_DEPTH while composing (the composer recurses once
    per level: a deeply nested file would otherwise end in a RecursionError)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse a node graph whose alias-expanded form is too deep, too large or recursive."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"the YAML nests deeper than {MAX_DEPTH} levels (counting what aliases expand to, near line "
                f"{node.start_mark.line + 1})",
                file=file,
                fix="write a flatter file: a sweep file needs a few levels",
            )
        if key in on_path:
            raise ConfigError(
                f"the YAML holds a recursive alias (line {node.start_mark.line + 1})",
                file=file,
                fix="remove the alias that refers to its own anchor",
            )
        if key in sizes:
            return sizes[key]
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        on_path.discard(key)
        if total > MAX_NODES:
            raise ConfigError(
                f"the YAML expands to more than {MAX_NODES:,} nodes through its aliases (&anchor / *alias)",
                file=file,
                fix="write the repeated parts out, or use fewer aliases",
            )
        sizes[key] = total
        return total

    size(root, 1)


def parse_yaml(text: str, file: str) -> Any:
    """YAML text -> Python data, bounded in size, depth and alias expansion (ConfigError, exit 3)."""
    if len(text.encode("utf-8")) > MAX_SWEEP_BYTES:
        raise ConfigError(
            f"the file is larger than {MAX_SWEEP_BYTES // 1024} KiB, far larger than a sweep file",
            file=file,
            fix="check that this is the sweep file you meant",
        )
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses unprintable characters here already
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, file)
        return loader.construct_document(node)
    except _TooDeep as exc:
        raise ConfigError(
            f"the YAML nests deeper than {MAX_DEPTH} levels (line {exc.mark.line + 1})",
            file=file,
            fix="write a flatter file: a sweep file needs a few levels",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"invalid YAML at {where}: {problem}", file=file, fix="fix the YAML syntax"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file. Raises ConfigError (exit code 3) with a one-line message."""
    path = Path(path)
    file = str(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_SWEEP_BYTES:
            raise ConfigError(
                f"the file is larger than {MAX_SWEEP_BYTES // 1024} KiB, far larger than a sweep file",
                file=file,
                fix="check that this is the sweep file you meant",
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=file, fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the file ({exc.__class__.__name__})", file=file, fix="check it"
        ) from None
    sweep = parse_sweep(parse_yaml(text, file), file)
    check_store(sweep, file)
    return sweep


def check_store(sweep: Sweep, file: str) -> None:
    """A local `store:` written as a relative path must stay inside the working directory: a sweep file
    from elsewhere must not point writes at `../../../../etc`. Outside it, only an absolute path (or
    `~/...`) that the user wrote is accepted; `sweep plan` shows where it resolves."""
    uri = sweep.store
    if not uri:
        return
    check_store_uri(uri, file=file, field="store")
    if "://" in uri and not uri.startswith("file://"):
        return
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    if path.startswith(("/", "~")):
        return
    normal = os.path.normpath(path)
    if normal == ".." or normal.startswith("../"):
        resolved = Path(path).resolve()
        raise ConfigError(
            f"the relative store path {uri!r} leads outside the working directory (to {resolved})",
            file=file,
            field="store",
            fix=f"write the absolute path ({resolved}) if that is where the results belong",
        )


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
    targets = {get_task(name, file=file).name for name in sweep.targets}
    for name, langs in sweep.languages.items():
        task = get_task(name, file=file, field=f"languages.{name}")
        if task.name not in targets:
            raise ConfigError(
                f"'{name}' is not one of the sweep's targets ({', '.join(sweep.targets)})",
                file=file,
                field=f"languages.{name}",
                fix=f"add {task.name} to targets, or remove languages.{name}",
            )
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

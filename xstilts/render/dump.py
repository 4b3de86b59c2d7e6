"""Kubernetes model objects -> plain dicts -> YAML.

`to_dict` is the API representation: pydantic's own dump of the client's models, the same dict as
`ApiClient.sanitize_for_serialization` (tests check). `to_yaml` writes YAML straight from the models
(or dicts), exactly as `yaml.safe_dump(to_dict(obj), sort_keys=False)` does (tests compare byte for
byte), fast enough for 10,000-phase sweeps: it handles the block-style subset manifests use, caches
how each string is written, and reuses the lines of parts that `freeze()` declared shared between
phases. Anything outside the subset (multi-line or long strings, floats, nested lists) goes through
PyYAML's own dumper, which writes multi-line strings (a sweep file in a ConfigMap) as literal blocks.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml
from pydantic import BaseModel

_STR_TAG = "tag:yaml.org,2002:str"
# Characters that PyYAML writes plain in block context whenever the implicit resolver reads them
# back as a string (checked per string below and, against PyYAML itself, in tests/render).
_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./@=+-]*")
_RESOLVER = yaml.resolver.Resolver()
_SCALARS: dict[str, str | None] = {}  # value -> how PyYAML writes it alone (None: not on one line)
_ANYWHERE: dict[str, str] = {}  # the texts that fit at any column (no space, not quoted)
_KEYS: dict[str, str] = {}  # key -> "text:"
_FROZEN: dict[int, tuple[Any, Any]] = {}  # id -> (a shared value, its plain form)
_LINES: dict[tuple[int, int, str], list[str]] = {}  # (id, indent, first prefix) -> YAML lines
_ALIASES: dict[type, dict[str, str]] = {}
_MAX_FROZEN = 50_000
_MISSING = object()
_MAX_CACHED = 200_000
WIDTH = 80  # PyYAML's default best_width: it folds scalars at a space past this column


@lru_cache(maxsize=1)
def _api_client() -> Any:
    from kubernetes.client import ApiClient

    return ApiClient()


def to_dict(obj: Any) -> dict[str, Any]:
    """The API representation (camelCase keys, None fields dropped)."""
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, BaseModel):
        return obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    return _api_client().sanitize_for_serialization(obj)


class _Literal(yaml.SafeDumper):
    """PyYAML's safe dumper, writing multi-line strings as `|` literal blocks. The pure-Python one on
    purpose: libyaml folds long quoted scalars differently, and this path is rare."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar(_STR_TAG, value, style=style)


_Literal.add_representer(str, _represent_str)


class _Unsupported(Exception):
    pass


def _scalar_text(value: str) -> str | None:
    """How PyYAML writes `value` as a single-line block scalar, or None when it would not fit on one."""
    found = _SCALARS.get(value, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[return-value]
    if _PLAIN.fullmatch(value) and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG:
        text: str | None = value
    else:
        dumped = yaml.dump(value, Dumper=_Literal)
        dumped = dumped.removesuffix("\n...\n").removesuffix("\n")
        text = None if "\n" in dumped or dumped.startswith("|") else dumped
    if len(_SCALARS) > _MAX_CACHED:
        _SCALARS.clear()
        _ANYWHERE.clear()
        _KEYS.clear()
    _SCALARS[value] = text
    return text


def _str(value: str, column: int) -> str:
    text = _scalar_text(value)
    if text is None:
        raise _Unsupported
    # PyYAML folds plain and quoted scalars past column WIDTH (quoted ones anywhere, not just at spaces).
    if " " in text or text[0] in "'\"":
        if column + len(text) > WIDTH:
            raise _Unsupported
    elif len(_ANYWHERE) < _MAX_CACHED:
        _ANYWHERE[value] = text
    return text


def _scalar(value: Any, column: int) -> str:
    kind = type(value)
    if kind is str:
        return _ANYWHERE.get(value) or _str(value, column)
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    raise _Unsupported


def _key(key: Any, column: int) -> str:
    """`key:` as the start of a mapping entry."""
    if type(key) is not str:
        raise _Unsupported
    text = _str(key, column)
    if len(text) >= 128:  # PyYAML writes long keys as explicit `? key`
        raise _Unsupported
    if key in _ANYWHERE:
        _KEYS[key] = text + ":"
    return text + ":"


# ---- shared parts ------------------------------------------------------------------------------
def freeze(*values: Any) -> None:
    """Declare models (or lists or dicts of them) shared between documents and never changed again:
    their YAML is then written once per indentation and reused. Only speed depends on this."""
    for value in values:
        if value is None or type(value) in (str, int, bool) or id(value) in _FROZEN:
            continue
        if len(_FROZEN) > _MAX_FROZEN:
            _FROZEN.clear()
            _LINES.clear()
        _FROZEN[id(value)] = (value, _plain(value))  # holding `value` keeps its id from being reused


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return to_dict(value)
    if type(value) is list:
        return [_plain(v) for v in value]
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    return value


def _frozen_lines(value: Any, indent: int, first: str) -> list[str] | None:
    """The cached lines of a frozen mapping (first line prefixed by `first`) or sequence, else None."""
    frozen = _FROZEN.get(id(value))
    if frozen is None or frozen[0] is not value or not frozen[1]:
        return None  # not frozen, or empty (the caller writes `{}` / `[]`)
    key = (id(value), indent, first)
    lines = _LINES.get(key)
    if lines is None:
        lines = []
        plain = frozen[1]
        if type(plain) is list:
            _sequence(plain, indent, lines)
        else:
            _mapping(plain.items(), indent, first, lines)
        _LINES[key] = lines
    return lines


def _fields(model: BaseModel) -> list[tuple[str, Any]]:
    """A model's non-None fields by their API names, in `model_dump(by_alias=True)` order."""
    aliases = _ALIASES.get(type(model))
    if aliases is None:
        aliases = _ALIASES[type(model)] = {
            name: field.serialization_alias or field.alias or name
            for name, field in type(model).model_fields.items()
        }
    return [(aliases[name], value) for name, value in model.__dict__.items() if value is not None]


# ---- the emitter: the hot loops inline the common cases (cached strings) of `_scalar` and `_key` --
def _mapping(pairs: Any, indent: int, first: str, out: list[str]) -> None:
    pad = " " * indent
    child = pad + "  "
    prefix = first
    keys, anywhere, frozen = _KEYS, _ANYWHERE, _FROZEN
    for key, value in pairs:
        head = prefix + (keys.get(key) or _key(key, len(prefix)))
        prefix = pad
        kind = type(value)
        if kind is str:
            out.append(head + " " + (anywhere.get(value) or _str(value, len(head) + 1)))
            continue
        if kind is list:
            if not value:
                out.append(head + " []")
                continue
            out.append(head)
            lines = _frozen_lines(value, indent, "") if id(value) in frozen else None
            if lines is None:
                _sequence(value, indent, out)
            else:
                out.extend(lines)
            continue
        if kind is dict or isinstance(value, BaseModel):
            lines = _frozen_lines(value, indent + 2, child) if id(value) in frozen else None
            if lines is not None:
                out.append(head)
                out.extend(lines)
                continue
            items = value.items() if kind is dict else _fields(value)
            if not items:
                out.append(head + " {}")
                continue
            out.append(head)
            _mapping(items, indent + 2, child, out)
            continue
        out.append(head + " " + _scalar(value, len(head) + 1))


def _sequence(items: list[Any], indent: int, out: list[str]) -> None:
    dash = " " * indent + "- "
    anywhere, frozen = _ANYWHERE, _FROZEN
    for item in items:
        kind = type(item)
        if kind is str:
            out.append(dash + (anywhere.get(item) or _str(item, indent + 2)))
        elif kind is dict or isinstance(item, BaseModel):
            lines = _frozen_lines(item, indent + 2, dash) if id(item) in frozen else None
            if lines is not None:
                out.extend(lines)
                continue
            fields = item.items() if kind is dict else _fields(item)
            if fields:
                _mapping(fields, indent + 2, dash, out)
            else:
                out.append(dash + "{}")
        elif kind is list:
            raise _Unsupported
        else:
            out.append(dash + _scalar(item, indent + 2))


def document(data: Any) -> str:
    """One YAML document (no `---`) of a dict or a model, exactly as
    `yaml.safe_dump(to_dict(data), sort_keys=False)` writes it."""
    items = data.items() if type(data) is dict else _fields(data)
    if not items:
        return "{}\n"
    out: list[str] = []
    try:
        _mapping(items, 0, "", out)
    except _Unsupported:
        return yaml.dump(to_dict(data), Dumper=_Literal, sort_keys=False)
    out.append("")
    return "\n".join(out)


def to_yaml(objects: list[Any]) -> str:
    """A multi-document YAML stream, one document per object (models or dicts)."""
    return "---\n".join(document(o) for o in objects)

"""Kubernetes model objects -> plain dicts -> YAML.

Both steps are on the path of rendering every phase of a sweep, so both are fast: the client's models
are pydantic models and dump themselves (the same dict as `ApiClient.sanitize_for_serialization`,
which tests check), and `to_yaml` writes the block-style subset that manifests use directly,
producing exactly what `yaml.safe_dump(..., sort_keys=False)` produces. Anything outside that subset
(multi-line or long strings, floats, nested lists) goes through PyYAML's own dumper instead;
multi-line strings (a sweep file in a ConfigMap) are written as literal blocks there.
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
_SCALARS: dict[str, str | None] = {}
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
    _SCALARS[value] = text
    return text


def _scalar(value: Any, column: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is not str:
        raise _Unsupported
    text = _scalar_text(value)
    # PyYAML folds plain and quoted scalars past column WIDTH (quoted ones anywhere, not just at spaces).
    if text is None or ((" " in text or text[0] in "'\"") and column + len(text) > WIDTH):
        raise _Unsupported
    return text


def _mapping(data: dict[str, Any], indent: int, first: str, out: list[str]) -> None:
    pad = " " * indent
    prefix = first
    for key, value in data.items():
        if type(key) is not str:
            raise _Unsupported
        key_text = _scalar(key, indent)
        if len(key_text) >= 128:  # PyYAML writes long keys as explicit `? key`
            raise _Unsupported
        head = f"{prefix}{key_text}:"
        prefix = pad
        kind = type(value)
        if kind is dict:
            if value:
                out.append(head)
                _mapping(value, indent + 2, " " * (indent + 2), out)
            else:
                out.append(head + " {}")
        elif kind is list:
            if value:
                out.append(head)
                _sequence(value, indent, out)
            else:
                out.append(head + " []")
        else:
            out.append(f"{head} {_scalar(value, len(head) + 1)}")


def _sequence(items: list[Any], indent: int, out: list[str]) -> None:
    dash = " " * indent + "- "
    for item in items:
        kind = type(item)
        if kind is dict:
            if item:
                _mapping(item, indent + 2, dash, out)
            else:
                out.append(dash + "{}")
        elif kind is list:
            raise _Unsupported
        else:
            out.append(dash + _scalar(item, indent + 2))


def document(data: dict[str, Any]) -> str:
    """One YAML document (no `---`), as `yaml.safe_dump(data, sort_keys=False)` writes it."""
    if not data:
        return "{}\n"
    out: list[str] = []
    try:
        _mapping(data, 0, "", out)
    except _Unsupported:
        return yaml.dump(data, Dumper=_Literal, sort_keys=False)
    out.append("")
    return "\n".join(out)


def to_yaml(objects: list[Any]) -> str:
    """A multi-document YAML stream, one document per object."""
    return "---\n".join(document(to_dict(o)) for o in objects)

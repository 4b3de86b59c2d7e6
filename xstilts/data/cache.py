"""Tokenized features cached in the artifact store, so a sweep tokenizes each dataset once, not once per
phase that reads it.

One entry per key at `<store root>/cache/features/<key>/`: `features.pkl.gz` (the feature list, gzip'd
pickle of plain Python containers) and a `_COMPLETE` manifest in the store's usual format (size and
sha256 of the file, written last; the key's fields as metadata, for humans). The key is a hash of
everything the features depend on:

- the tokenizer: sha256 of its files (`tokenizer.json`, `tokenizer_config.json`, vocabularies...), not
  the model directory's path or its weights; and the `transformers` / `tokenizers` versions;
- task, split role, language, training stage, row limit, max length and doc stride;
- the data source (`data` block of the phase config: hub or fixtures, fixture size, local paths) and,
  for fixtures, `FIXTURES_VERSION`;
- the source text of every xstilts module that feature building imports: the import graph (module-level
  and in-function imports) walked from `FEATURE_ROOTS`, so a helper in another module (e.g.
  `xstilts.data.labels.first_subword_labels`, which makes tagging labels) is covered the day it is
  imported; and `CACHE_FORMAT`: changing the code is a cache miss, never a stale hit;
- `extra`: anything else the caller's features depend on (a training phase's `augment` settings, an
  evaluation perturbation's spec).

Reading verifies size and sha256 against the manifest and unpickles with an unpickler that refuses
every global (features are dicts, lists, tuples, numbers, strings and None, which need none), so a
corrupted or foreign object is never used or executed: it is deleted and rebuilt. A miss builds the
features, writes the file, then the marker; two phases racing on one key write identical bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import pickle
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from xstilts.store.base import Store, join_key
from xstilts.store.complete import MARKER, read_manifest

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
CACHE_PREFIX = "cache/features"
PAYLOAD = "features.pkl.gz"

# Files that define a tokenizer (what `save_pretrained` writes for fast and slow tokenizers).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
# Where feature building starts: featurizers, loading, augmentation, perturbations, MLM masking. Every
# xstilts module these import (transitively) is part of the code fingerprint (`feature_modules`).
FEATURE_ROOTS = (
    "xstilts.data.features",
    "xstilts.data.load",
    "xstilts.data.mlm",
    "xstilts.augment.examples",
    "xstilts.evaluate.robustness",
)
PACKAGE = "xstilts"

Feature = dict[str, Any]


# ---- the key ----------------------------------------------------------------------------------------


def tokenizer_fingerprint(tokenizer_dir: str | Path) -> str:
    """sha256 over the names and bytes of the tokenizer's files in `tokenizer_dir`."""
    directory = Path(tokenizer_dir)
    stamp = tuple(
        (name, (directory / name).stat().st_size, (directory / name).stat().st_mtime_ns)
        for name in TOKENIZER_FILES
        if (directory / name).is_file()
    )
    if not stamp:
        raise FileNotFoundError(
            f"no tokenizer files in {directory} (looked for {', '.join(TOKENIZER_FILES)})"
        )
    return _hash_files(str(directory.resolve()), stamp)


@lru_cache(maxsize=64)
def _hash_files(directory: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _size, _mtime in stamp:
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(Path(directory, name).read_bytes()).digest())
    return digest.hexdigest()


def _module_file(package_dir: Path, name: str) -> Path | None:
    """The source file of module `name` (e.g. xstilts.data.load) under `package_dir` (the xstilts folder)."""
    parts = name.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(name: str, path: Path, package_dir: Path) -> set[str]:
    """xstilts modules that `path` imports anywhere (top level or inside functions), with their parent
    packages (importing a.b.c runs a/__init__ and a/b/__init__)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    out: set[str] = set()
    for module in found:
        if module != PACKAGE and not module.startswith(PACKAGE + "."):
            continue
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if _module_file(package_dir, prefix) is not None:
                out.add(prefix)
    return out


def feature_modules(package_dir: str | Path | None = None) -> dict[str, Path]:
    """Every xstilts module feature building can run: the import closure of `FEATURE_ROOTS` (module ->
    source file), found by reading the sources, never by importing them."""
    root = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parents[1]
    todo = [PACKAGE, *FEATURE_ROOTS]
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(root, name)
        if path is None:
            raise FileNotFoundError(f"feature code module {name} not found under {root}")
        seen[name] = path
        todo.extend(m for m in _imported_modules(name, path, root) if m not in seen)
    return dict(sorted(seen.items()))


@lru_cache(maxsize=8)
def code_fingerprint(package_dir: str | None = None) -> str:
    """sha256 of the source of every module in `feature_modules` and of the tokenizer libraries'
    versions. `package_dir` (default: this installation's xstilts folder) is for testing a changed copy."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for name, path in feature_modules(package_dir).items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for library in ("transformers", "tokenizers"):
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}=={version}".encode())
    return digest.hexdigest()


def _data_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(sorted(data.items()))
    if fields.get("source") == "fixtures":
        from xstilts.data.fixtures import FIXTURES_VERSION

        fields["fixtures_version"] = FIXTURES_VERSION
    return fields


def key_fields(
    tokenizer_dir: str | Path,
    task: str,
    role: str,
    lang: str,
    data: Mapping[str, Any],
    max_length: int,
    doc_stride: int,
    *,
    limit: int | None = None,
    stage: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a split's features depend on (JSON-able)."""
    return {
        "format": CACHE_FORMAT,
        "tokenizer": tokenizer_fingerprint(tokenizer_dir),
        "code": code_fingerprint(),
        "task": task,
        "role": role,
        "lang": lang,
        "stage": stage,
        "limit": limit,
        "max_length": max_length,
        "doc_stride": doc_stride,
        "data": _data_fields(data),
        **({"extra": dict(extra)} if extra else {}),
    }


def cache_key(fields: Mapping[str, Any]) -> str:
    """A readable, collision-safe name: `<task>-<role>-<lang>-<24 hex digits of the fields' sha256>`."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{fields['task']}-{fields['role']}")
    return f"{safe}-{fields['lang']}-{digest}"


def cache_prefix(key: str) -> str:
    return join_key(CACHE_PREFIX, key)


# ---- reading and writing ------------------------------------------------------------------------


class _PlainUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, tuples, sets, numbers, strings, bytes, booleans and None."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"cached features may not reference {module}.{name}")


def encode(features: list[Feature]) -> bytes:
    """gzip (mtime 0, so equal features give equal bytes) of a protocol-5 pickle."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=3, mtime=0) as handle:
        pickle.dump(features, handle, protocol=5)
    return buffer.getvalue()


def decode(payload: bytes) -> list[Feature]:
    features = _PlainUnpickler(io.BytesIO(gzip.decompress(payload))).load()
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise pickle.UnpicklingError("cached features are not a list of dicts")
    return features


def load_cached(store: Store, key: str) -> list[Feature] | None:
    """The cached features, or None when absent, incomplete or corrupted (a corrupted entry is deleted)."""
    prefix = cache_prefix(key)
    try:
        entries = read_manifest(store, prefix)
    except (ValueError, KeyError, TypeError) as exc:  # an unreadable manifest
        _discard(store, prefix, f"unreadable {MARKER}: {exc}")
        return None
    if entries is None:
        return None
    entry = next((e for e in entries if e.path == PAYLOAD), None)
    try:
        if entry is None:
            raise ValueError(f"{MARKER} does not list {PAYLOAD}")
        payload = store.get_bytes(join_key(prefix, PAYLOAD))
        if len(payload) != entry.size or hashlib.sha256(payload).hexdigest() != entry.sha256:
            raise ValueError(f"{PAYLOAD} does not match its {MARKER} checksum")
        return decode(payload)
    except FileNotFoundError:
        _discard(store, prefix, f"{PAYLOAD} is missing")
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
        _discard(store, prefix, str(exc))
    return None


def _discard(store: Store, prefix: str, reason: str) -> None:
    log.warning("ignoring cached features %s/%s (%s); rebuilding", store.describe(), prefix, reason)
    try:
        store.delete_prefix(join_key(prefix, MARKER))
        store.delete_prefix(prefix)
    except Exception as exc:  # a read-only store: the rebuild below still works
        log.warning("could not delete %s: %s", prefix, exc)


def save_cached(store: Store, key: str, features: list[Feature], metadata: Mapping[str, Any]) -> None:
    """Write the payload, then the `_COMPLETE` manifest (same format as `commit_dir`)."""
    prefix = cache_prefix(key)
    payload = encode(features)
    store.put_bytes(join_key(prefix, PAYLOAD), payload)
    manifest = {
        "files": [{"path": PAYLOAD, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}],
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metadata": {**metadata, "features": len(features)},
    }
    store.put_text(join_key(prefix, MARKER), json.dumps(manifest, indent=1, sort_keys=True, default=str))


def cached_features(
    store: Store | None,
    tokenizer_dir: str | Path,
    task: str,
    role: str,
    lang: str,
    data: Mapping[str, Any],
    max_length: int,
    doc_stride: int,
    build: Callable[[], list[Feature]],
    *,
    limit: int | None = None,
    stage: int | None = None,
    extra: Mapping[str, Any] | None = None,
    on_event: Callable[..., None] | None = None,
) -> list[Feature]:
    """The features of one split from the cache, or `build()` them and cache them.

    `store=None` or `XSTILTS_FEATURE_CACHE=0` bypasses the cache. `on_event` (e.g. `ProgressLog.event`)
    gets one `feature_cache` event with `hit`, the key and the seconds spent.
    """
    if store is None or os.environ.get("XSTILTS_FEATURE_CACHE", "1") == "0":
        return build()
    started = time.monotonic()
    fields = key_fields(
        tokenizer_dir, task, role, lang, data, max_length, doc_stride, limit=limit, stage=stage, extra=extra
    )
    key = cache_key(fields)
    features = load_cached(store, key)
    hit = features is not None
    if features is None:
        features = build()
        try:
            save_cached(store, key, features, fields)
        except Exception as exc:  # caching is an optimisation: a failed write must not fail the phase
            log.warning("could not cache features %s: %s", key, exc)
    if on_event is not None:
        on_event(
            "feature_cache",
            task=task,
            role=role,
            language=lang,
            hit=hit,
            key=key,
            features=len(features),
            seconds=round(time.monotonic() - started, 3),
        )
    return features

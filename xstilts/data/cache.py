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
- the source text of the modules that turn rows into features (`xstilts.data.features`, `.load`, the
  task registry and adapters, span-label helpers, augmentation) and `CACHE_FORMAT`: changing the code
  is a cache miss, never a stale hit;
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
import importlib.util
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
# Modules whose code decides what a split's features are.
FEATURE_MODULES = (
    "xstilts.data.features",
    "xstilts.data.load",
    "xstilts.tasks.base",
    "xstilts.tasks.registry",
    "xstilts.tasks.adapters",
    "xstilts.tasks.readers",
    "xstilts.evaluate.qa_decode",
    "xstilts.augment.examples",
    "xstilts.augment.text",
    "xstilts.augment.dictionaries",
    "xstilts.evaluate.robustness",
)

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


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of the source of the modules that make features (found, not imported), and of the
    tokenizer libraries' versions."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for name in FEATURE_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes())
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

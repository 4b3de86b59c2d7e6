"""The artifact store interface shared by the local and S3 implementations.

Keys are '/'-separated paths relative to the store root. Implementations provide the primitives;
the completion protocol (`_COMPLETE` manifests) lives in `xstilts.store.complete` and works on any store.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Store(ABC):
    """An artifact store rooted at `uri`."""

    uri: str

    @abstractmethod
    def put_file(self, local_path: Path, key: str) -> None:
        """Upload one local file to `key` (overwrites)."""

    @abstractmethod
    def get_file(self, key: str, local_path: Path) -> None:
        """Download `key` to `local_path`, creating parent directories. Raises FileNotFoundError."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read a small object. Raises FileNotFoundError if it is absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists at exactly `key`."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (recursive)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under `prefix`."""

    # -- conditional writes (leases) ------------------------------------------------------------------

    @property
    def conditional_writes(self) -> bool:
        """Whether `put_conditional` is atomic here (create-if-absent and replace-if-unchanged)."""
        return False

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and a version tag for `put_conditional`, or None when it is absent."""
        try:
            data = self.get_bytes(key)
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def put_conditional(self, key: str, data: bytes, expected: str | None) -> str | None:
        """Write `key` only if it is absent (`expected` None) or still at version `expected`; returns the
        new version tag, or None when the condition fails. Where `conditional_writes` is False this is a
        plain write and callers must verify by reading back (see `xstilts.store.lease`)."""
        self.put_bytes(key, data)
        return hashlib.sha256(data).hexdigest()

    def delete(self, key: str) -> None:
        """Delete the object at exactly `key` (no error when it is absent)."""
        self.delete_prefix(key)

    # -- many keys at once --------------------------------------------------------------------------

    def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` exist (one check each here; S3 lists their common prefix once instead)."""
        return {key for key in keys if self.exists(key)}

    def put_files(self, pairs: list[tuple[Path, str]]) -> None:
        """Upload many files; implementations may parallelise."""
        for local_path, key in pairs:
            self.put_file(local_path, key)

    def get_files(self, pairs: list[tuple[str, Path]]) -> None:
        """Download many files; implementations may parallelise."""
        for key, local_path in pairs:
            self.get_file(key, local_path)

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def describe(self) -> str:
        """A human-facing name for messages (no credentials)."""
        return self.uri


def join_key(*parts: str) -> str:
    """Join key parts with single slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def common_prefix(keys: Iterable[str]) -> str:
    """The longest '/'-ending prefix shared by every key ('' when they share none)."""
    shared = os.path.commonprefix(list(keys))
    return shared[: shared.rfind("/") + 1] if "/" in shared else ""

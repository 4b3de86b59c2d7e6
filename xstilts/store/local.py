"""A store on the local filesystem (the embedded default).

A write that fails because of the disk (full, read-only, no permission) is a one-line `DiskError`
naming the path and the fix. Conditional writes (leases) are atomic between processes of one host:
they run under an advisory lock on a hidden file beside the object.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from xstilts.errors import DiskError, KeyOutsideStoreError, disk_problem
from xstilts.store.base import ObjectInfo, Store

HIDDEN = ".tmp-"  # temporary and lock files: never listed, never part of a phase


class LocalStore(Store):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key.lstrip("/")).resolve()
        if path != self.root and self.root not in path.parents:
            raise KeyOutsideStoreError(f"key {key!r} escapes the store root {self.root}")
        return path

    @contextmanager
    def _disk(self, action: str = "write", target: Path | None = None) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            message = disk_problem(exc, str(self.root), action=action, path=str(target) if target else None)
            if message is None:
                raise
            raise DiskError(f"local store {self.root}: {message}") from None

    def _atomic_write(self, target: Path, write: Callable[[BinaryIO], object]) -> None:
        with self._disk(target=target):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=HIDDEN)
            try:
                with os.fdopen(fd, "wb") as handle:
                    write(handle)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def put_file(self, local_path: Path, key: str) -> None:
        target = self._path(key)
        with self._disk(target=target):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=HIDDEN)
            os.close(fd)
            try:
                shutil.copyfile(local_path, tmp)  # a kernel-side copy where the platform has one
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def get_file(self, key: str, local_path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise FileNotFoundError(f"{self.uri}/{key}")
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        # Copy to a temporary name and rename: concurrent readers (ranks) never see half a file.
        fd, tmp = tempfile.mkstemp(dir=local_path.parent, prefix=HIDDEN)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, local_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(self._path(key), lambda handle: handle.write(data))

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"{self.uri}/{key}")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        # A prefix may end mid-name ("phases/tar" matches "phases/target/..."): walk its parent.
        walk_root = base if base.is_dir() else base.parent
        if not walk_root.is_dir():
            return
        for dirpath, _dirs, files in os.walk(walk_root):
            for name in sorted(files):
                if name.startswith(HIDDEN):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix.lstrip("/")):
                    try:
                        size = full.stat().st_size
                    except FileNotFoundError:  # deleted while walking
                        continue
                    yield ObjectInfo(key=key, size=size)

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        with self._disk("delete", path):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.is_file():
                path.unlink()

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._disk("delete", path):
            path.unlink(missing_ok=True)

    # -- conditional writes ---------------------------------------------------------------------------

    @property
    def conditional_writes(self) -> bool:
        return True

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def put_conditional(self, key: str, data: bytes, expected: str | None) -> str | None:
        target = self._path(key)
        with self._disk(target=target):
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target.parent / f"{HIDDEN}lock-{target.name}", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    current = target.read_bytes()
                except FileNotFoundError:
                    current = None
                if expected is None and current is not None:
                    return None
                version = None if current is None else hashlib.sha256(current).hexdigest()
                if expected is not None and version != expected:
                    return None
                self._atomic_write(target, lambda handle: handle.write(data))
                return hashlib.sha256(data).hexdigest()

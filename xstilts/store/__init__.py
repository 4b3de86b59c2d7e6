"""Artifact stores: one interface (`Store`), a local and an S3 implementation, and the completion protocol."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from xstilts.errors import StoreError
from xstilts.spec.store_uri import check_store_uri, is_local, uri_scheme
from xstilts.store.base import ObjectInfo, Store, join_key
from xstilts.store.local import LocalStore

DEFAULT_STORE = "./xstilts-runs"


def local_path(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri).expanduser()


def check_local_root(root: Path) -> None:
    """Refuse, in one line (exit 1), a local store path that cannot hold a store: a file, a path under a
    file, or a place where no directory can be made (`/proc/...`, a read-only mount). Creates nothing
    that stays: where the store does not exist yet, a probe directory is made and removed next to it."""
    root = Path(os.path.abspath(root))
    if root.exists():
        if not root.is_dir():
            raise StoreError(
                f"local store {root} is a file, not a directory (fix: give a directory path as the store)"
            )
        return
    ancestor = root.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(
            f"cannot create the local store {root}: {ancestor} is a file, not a directory "
            "(fix: give a path under a directory as the store)"
        )
    try:
        probe = tempfile.mkdtemp(prefix=".xstilts-probe-", dir=ancestor)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno in (errno.ENOENT, errno.EPERM):
            reason = f"{ancestor} does not accept new directories ({reason})"
        raise StoreError(
            f"cannot create the local store {root}: {reason} (fix: use a writable directory as the store)"
        ) from None
    os.rmdir(probe)


def store_exists(store: Store) -> bool:
    """Whether anything was ever written to the store (a local directory exists; S3: an object under
    `specs/`, which every submit writes first)."""
    if isinstance(store, LocalStore):
        return store.root.is_dir()
    return next(iter(store.list("specs/")), None) is not None


def open_store(uri: str | None) -> Store:
    """Open a store from a URI: `s3://bucket/prefix` or a local path (the default `./xstilts-runs`)."""
    uri = uri or DEFAULT_STORE
    check_store_uri(uri)
    if uri_scheme(uri) == "s3":
        from xstilts.store.s3 import S3Store

        return S3Store.from_uri(uri)
    return LocalStore(local_path(uri))


__all__ = [
    "DEFAULT_STORE",
    "LocalStore",
    "ObjectInfo",
    "Store",
    "check_local_root",
    "check_store_uri",
    "is_local",
    "join_key",
    "local_path",
    "open_store",
    "store_exists",
]

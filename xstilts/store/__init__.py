"""Artifact stores: one interface (`Store`), a local and an S3 implementation, and the completion protocol."""

from __future__ import annotations

from xstilts.store.base import ObjectInfo, Store, join_key
from xstilts.store.local import LocalStore

DEFAULT_STORE = "./xstilts-runs"


def open_store(uri: str | None) -> Store:
    """Open a store from a URI: `s3://bucket/prefix` or a local path (the default `./xstilts-runs`)."""
    uri = uri or DEFAULT_STORE
    if uri.startswith("s3://"):
        from xstilts.store.s3 import S3Store

        return S3Store.from_uri(uri)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return LocalStore(uri)


__all__ = ["DEFAULT_STORE", "LocalStore", "ObjectInfo", "Store", "join_key", "open_store"]

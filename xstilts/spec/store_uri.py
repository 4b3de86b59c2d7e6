"""Which store URIs a sweep may name: a local path or `s3://`. Pure string checks, so that validating a
sweep file needs no store."""

from __future__ import annotations

from xstilts.errors import ConfigError

SUPPORTED_FORMS = "a local path (absolute or relative) or s3://bucket/prefix"


def uri_scheme(uri: str) -> str | None:
    """'s3' for `s3://b/p`, None for a local path (`file://` included, as 'file')."""
    return uri.split("://", 1)[0].lower() if "://" in uri else None


def is_local(uri: str) -> bool:
    return uri_scheme(uri) in (None, "file")


def check_store_uri(uri: str, *, file: str | None = None, field: str | None = None) -> None:
    """Only a local path and `s3://` are stores: anything else with a scheme (`gs://`, `http://`) is
    refused (exit 3) instead of becoming a local folder named `gs:`."""
    scheme = uri_scheme(uri)
    if scheme in (None, "file", "s3"):
        return
    raise ConfigError(
        f"store {uri!r}: the scheme '{scheme}://' is not supported",
        file=file,
        field=field,
        fix=f"use {SUPPORTED_FORMS}",
    )

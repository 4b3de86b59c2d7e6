"""Deterministic Kubernetes names and label values."""

from __future__ import annotations

import re

_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def job_name(kind: str, address: str) -> str:
    """`xst-<kind>-<address>`: DNS-1123, at most 63 characters, never generateName (not idempotent)."""
    return f"xst-{kind}-{address}"[:63]


def service_name(kind: str, address: str) -> str:
    return job_name(kind, address)


def label_value(text: str) -> str:
    """A valid label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    value = _NOT_LABEL.sub("-", text)[:63].strip("-._")
    return value or "none"

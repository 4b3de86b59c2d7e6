"""Deterministic Kubernetes names and label values.

Names are never `generateName`d: a retried POST with a generated name can create a duplicate
(KEP-4420), while a fixed name turns the retry into a harmless 409 AlreadyExists.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # RFC 1035: valid for Jobs, Services, pods
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def dns_label(text: str, max_length: int = MAX_NAME) -> str:
    """`text` as an RFC 1035 label. Too long or altered names keep a short hash of the original, so
    two different inputs do not collapse onto one name."""
    clean = _NOT_DNS.sub("-", text.lower()).strip("-")
    if clean and clean[0].isalpha() and clean == text and len(clean) <= max_length:
        return clean
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    head = clean[: max_length - len(digest) - 1].strip("-") or "x"
    if not head[0].isalpha():
        head = ("x-" + head)[: max_length - len(digest) - 1].strip("-")
    return f"{head}-{digest}"


STORE_ID_LENGTH = 8


def store_id(store_uri: str) -> str:
    """A short, stable hash of the store URI: part of every Job name and the `xstilts.io/store` label,
    so that the same sweep against two stores in one namespace never shares (or adopts) a Job.

    Spellings of one store hash alike: a trailing slash and the case of the scheme do not count."""
    uri = store_uri.strip().rstrip("/")
    scheme, sep, rest = uri.partition("://")
    normalized = f"{scheme.lower()}{sep}{rest}" if sep else uri
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:STORE_ID_LENGTH]


def job_name(kind: str, address: str, store_uri: str) -> str:
    """`xst-<kind>-<address>-<store id>` (at most 38 characters for the kinds and 12-character
    addresses we use). The phase's content address does not depend on the store; its Job does.

    Indexed Jobs name their pods `<job>-<index>` and those become hostnames, so the short fixed
    length matters for multi-node phases too.
    """
    return dns_label(f"xst-{kind}-{address}-{store_id(store_uri)}")


def service_name(kind: str, address: str, store_uri: str) -> str:
    """The headless Service of a multi-node phase: named like its Job (a different kind, so no clash);
    rank 0 is reachable at `<job>-0.<service>`."""
    return job_name(kind, address, store_uri)


def controller_name(sweep: str, store_uri: str) -> str:
    """The in-cluster controller's Job and ConfigMap: `xst-controller-<sweep>-<store id>` (a long sweep
    name is shortened with a hash of it; the store id is always kept whole)."""
    suffix = f"-{store_id(store_uri)}"
    return dns_label(f"xst-controller-{sweep}", MAX_NAME - len(suffix)) + suffix


def label_value(text: str) -> str:
    """A valid label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    value = _NOT_LABEL.sub("-", text).strip("-._")[:MAX_NAME].strip("-._")
    return value or "none"

"""Kubernetes model objects -> plain dicts -> YAML."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml


@lru_cache(maxsize=1)
def _api_client():
    from kubernetes.client import ApiClient

    return ApiClient()


def to_dict(obj: Any) -> dict[str, Any]:
    """The API representation (camelCase keys, None fields dropped)."""
    return _api_client().sanitize_for_serialization(obj)


def to_yaml(objects: list[Any]) -> str:
    return yaml.safe_dump_all([to_dict(o) for o in objects], sort_keys=False)

"""What several commands share: load the sweep, resolve the store, settings and backend."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xstilts.plan.expand import Plan, expand
from xstilts.render.settings import ClusterSettings
from xstilts.spec import Sweep, load_sweep
from xstilts.store import DEFAULT_STORE, Store, open_store


@dataclass
class Loaded:
    file: Path
    sweep: Sweep
    plan: Plan
    store_uri: str
    store: Store


def resolve_store_uri(sweep: Sweep, store: str | None, settings: ClusterSettings | None = None) -> str:
    uri = store or sweep.store or (settings.store if settings else None) or DEFAULT_STORE
    if "://" not in uri:
        uri = str(Path(uri).expanduser().resolve())
    return uri


def load(file: Path, store: str | None, settings: ClusterSettings | None = None) -> Loaded:
    sweep = load_sweep(file)
    plan = expand(sweep)
    uri = resolve_store_uri(sweep, store, settings)
    return Loaded(file=file, sweep=sweep, plan=plan, store_uri=uri, store=open_store(uri))


def cluster_settings(sweep: Sweep, backend: str) -> ClusterSettings:
    """Defaults <- the installed Helm release's settings (kubernetes backend) <- the sweep's `kubernetes:`."""
    from xstilts.render.release import merge_settings

    base = None
    if backend == "kubernetes":
        from xstilts.render.release import load_release_settings

        base = load_release_settings(sweep.kubernetes.get("namespace") or os.environ.get("XSTILTS_NAMESPACE"))
    return merge_settings(base, sweep.kubernetes)


def local_work_dir(loaded: Loaded) -> Path:
    """Scratch space of the local backend: next to a local store, else in the user cache."""
    if "://" not in loaded.store_uri:
        return Path(loaded.store_uri) / "_local"
    cache = Path(os.environ.get("XSTILTS_CACHE", Path.home() / ".cache" / "xstilts"))
    return cache / "local" / loaded.sweep.name


def make_backend(kind: str, loaded: Loaded, settings: ClusterSettings, parallel: int | None = None):
    if kind == "local":
        from xstilts.backends.local import LocalBackend

        return LocalBackend(local_work_dir(loaded), max_parallel=parallel)
    from xstilts.backends.kubernetes import KubernetesBackend

    return KubernetesBackend(settings)

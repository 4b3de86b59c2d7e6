"""What several commands share: load the sweep, resolve the store, settings and backend."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xstilts.cli.output import say
from xstilts.errors import ConfigError, UsageError
from xstilts.plan.expand import Plan, expand
from xstilts.plan.size import size_warning
from xstilts.spec import Sweep, load_sweep
from xstilts.spec.cluster import ClusterSettings, merge_settings
from xstilts.store import (
    DEFAULT_STORE,
    Store,
    check_local_root,
    check_store_uri,
    is_local,
    local_path,
    open_store,
)


@dataclass
class Loaded:
    file: Path
    sweep: Sweep
    plan: Plan
    store_uri: str
    store: Store


def resolve_store_uri(sweep: Sweep, store: str | None, settings: ClusterSettings | None = None) -> str:
    """--store, else the sweep's `store:`, else the Helm release's, else ./xstilts-runs; a local path is
    made absolute. A URI with a scheme other than s3:// is refused (exit 3)."""
    release = settings.store if settings else None
    uri = store or sweep.store or release or DEFAULT_STORE
    if store:
        check_store_uri(uri, field="--store")
    elif not sweep.store and release:
        check_store_uri(uri, field="store (of the installed Helm release's settings)")
    if is_local(uri):
        uri = str(local_path(uri).resolve())
    return uri


def load(
    file: Path, store: str | None, settings: ClusterSettings | None = None, *, check_local: bool = True
) -> Loaded:
    """Validate and expand the sweep and open its store. `check_local`: a local store path that cannot
    hold a store (a file, `/proc/...`) is refused here, in one line (exit 1), before anything runs."""
    sweep = load_sweep(file)
    warning = size_warning(sweep)
    if warning:
        say(warning)
    try:
        plan = expand(sweep)
    except ConfigError as exc:  # a combination of layers (e.g. training settings) that only expansion sees
        if exc.file is not None:
            raise
        raise ConfigError(str(exc), file=str(file)) from None
    uri = resolve_store_uri(sweep, store, settings)
    if check_local and is_local(uri):
        check_local_root(Path(uri))
    return Loaded(file=file, sweep=sweep, plan=plan, store_uri=uri, store=open_store(uri))


def cluster_settings(sweep: Sweep, backend: str) -> ClusterSettings:
    """Defaults <- the installed Helm release's settings (kubernetes backend) <- the sweep's `kubernetes:`."""

    base = None
    if backend == "kubernetes":
        from xstilts.backends.release import load_release_settings

        base = load_release_settings(sweep.kubernetes.get("namespace") or os.environ.get("XSTILTS_NAMESPACE"))
    return merge_settings(base, sweep.kubernetes)


def local_work_dir(loaded: Loaded) -> Path:
    """Scratch space of the local backend: next to a local store, else in the user cache."""
    if is_local(loaded.store_uri):
        return Path(loaded.store_uri) / "_local"
    cache = Path(os.environ.get("XSTILTS_CACHE", Path.home() / ".cache" / "xstilts"))
    return cache / "local" / loaded.sweep.name


def make_backend(
    kind: str,
    loaded: Loaded,
    settings: ClusterSettings,
    parallel: int | None = None,
    *,
    controller: bool = False,
):
    """`controller`: the backend drives the reconcile loop (submit without --detach), so a Kubernetes
    backend rides out API-server outages and fails phases whose pods cannot start."""
    if kind == "local":
        from xstilts.backends.local import LocalBackend

        return LocalBackend(local_work_dir(loaded), max_parallel=parallel)
    from xstilts.backends.kubernetes import KubernetesBackend

    return KubernetesBackend(settings, loaded.store_uri, controller=controller)


def find_phase(plan: Plan, text: str, option: str = "--phase"):
    """The phase `text` names: its address or a unique prefix of it, its display name
    (`intermediate/mnli@68365bff`), or a unique kind/task (`intermediate/mnli`). An ambiguous or unknown
    one is refused (exit 2) with the candidates listed."""

    phases = plan.ordered()
    text = text.strip()
    exact = [p for p in phases if text in (p.address, p.name)]
    if exact:
        return exact[0]
    matches = [p for p in phases if text and p.address.startswith(text.lower())]
    if not matches:
        matches = [p for p in phases if p.name.split("@", 1)[0] == text.rstrip("/")]
    if not matches:
        matches = [p for p in phases if p.name.startswith(text)] if text else []
    if len(matches) == 1:
        return matches[0]
    shown = matches or phases
    listed = "; ".join(f"{p.address} {p.name}" for p in shown[:20])
    more = f" (and {len(shown) - 20} more)" if len(shown) > 20 else ""
    if matches:
        raise UsageError(
            f"{option} {text!r} matches {len(matches)} phases: {listed}{more} (fix: give more of the "
            "address, or the full name)"
        )
    raise UsageError(
        f"{option} {text!r} names no phase of sweep '{plan.sweep.name}'; its phases: {listed}{more}"
    )

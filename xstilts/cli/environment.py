"""`xstilts env`: what a bug report needs (versions, devices, store and cluster reachability), like
`accelerate env`."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

from xstilts import __version__
from xstilts.errors import XstiltsError

PACKAGES = ("torch", "transformers", "datasets", "accelerate", "deepspeed", "boto3", "kubernetes", "typer")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _devices() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu_cores": os.cpu_count()}
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["torch_threads"] = torch.get_num_threads()
    except Exception as exc:  # a broken CUDA install is what a bug report is for: report, do not fail
        info["cuda"] = f"unavailable ({exc.__class__.__name__}: {exc})"
    return info


def _store(uri: str) -> dict[str, Any]:
    from xstilts.store import is_local, local_path, open_store

    result: dict[str, Any] = {"uri": uri}
    try:
        if is_local(uri):
            path = local_path(uri).resolve()
            result["uri"] = str(path)
            result["reachable"] = path.is_dir()
            result["detail"] = (
                ("writable" if os.access(path, os.W_OK) else "not writable")
                if path.is_dir()
                else "does not exist"
            )
            return result
        store = open_store(uri)
        next(iter(store.list("specs/")), None)
        result.update(reachable=True, detail="listed specs/")
    except (XstiltsError, OSError) as exc:
        result.update(reachable=False, detail=str(exc))
    return result


def _cluster() -> dict[str, Any]:
    try:
        from kubernetes import client

        from xstilts.backends.kubeconfig import cluster_configuration, current_namespace

        configuration = cluster_configuration()
        if configuration is None:
            return {"configured": False, "detail": "no kubeconfig and not in a pod"}
        configuration.retries = 0
        api = client.ApiClient(configuration)
        version = client.VersionApi(api).get_code(_request_timeout=5)
        return {
            "configured": True,
            "server": configuration.host,
            "namespace": current_namespace(),
            "reachable": True,
            "version": version.git_version,
        }
    except Exception as exc:  # unreachable, refused, no permission: all are answers here
        return {"configured": True, "reachable": False, "detail": f"{exc.__class__.__name__}: {exc}"[:300]}


def environment(store_uri: str) -> dict[str, Any]:

    return {
        "xstilts": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "devices": _devices(),
        "store": _store(store_uri),
        "cluster": _cluster(),
        "environment": {
            k: os.environ[k]
            for k in sorted(os.environ)
            if k.startswith(("XSTILTS_", "HF_", "AWS_ENDPOINT", "AWS_REGION", "KUBECONFIG", "OMP_NUM"))
            and "SECRET" not in k
            and "TOKEN" not in k
            and "KEY" not in k
        },
    }


def as_lines(info: dict[str, Any]) -> list[str]:
    lines = [f"xstilts {info['xstilts']} · Python {info['python']} · {info['platform']}"]
    lines.append("packages: " + ", ".join(f"{k} {v or '-'}" for k, v in info["packages"].items()))
    devices = info["devices"]
    gpus = ", ".join(devices.get("gpus") or []) or "none"
    lines.append(f"devices: {devices['cpu_cores']} CPU cores, CUDA {devices.get('cuda')}, GPUs: {gpus}")
    store = info["store"]
    lines.append(
        f"store: {store['uri']}: {'reachable' if store.get('reachable') else 'NOT reachable'} "
        f"({store.get('detail')})"
    )
    cluster = info["cluster"]
    if not cluster.get("configured"):
        lines.append(f"cluster: not configured ({cluster.get('detail')})")
    elif cluster.get("reachable"):
        lines.append(f"cluster: {cluster['server']} {cluster['version']}, namespace {cluster['namespace']}")
    else:
        lines.append(f"cluster: NOT reachable ({cluster.get('detail')})")
    for key, value in info["environment"].items():
        lines.append(f"  {key}={value}")
    return lines

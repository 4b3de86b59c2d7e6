"""Fixtures for the store suite: a real S3 server (rclone) for the session, a fresh bucket per test, and
`backend`, which runs the same behavioural tests against LocalStore and S3Store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xstilts.store import LocalStore, Store
from xstilts.store.s3 import S3Store
from xstilts.testing.s3_server import S3ServerInfo, env_for, s3_server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3ServerInfo]:
    """A running `rclone serve s3` on loopback, shared by the session."""
    with s3_server(tmp_path_factory.mktemp("s3-data")) as info:
        yield info


def isolate_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Forget the developer's AWS settings: no profile, no config files, no instance metadata lookups."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "XSTILTS_S3_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def point_env_at(info: S3ServerInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env_for(info).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_env(s3: S3ServerInfo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3ServerInfo:
    """The session server, with the environment (only) pointing boto3 at it."""
    isolate_aws_env(monkeypatch, tmp_path)
    point_env_at(s3, monkeypatch)
    return s3


@pytest.fixture
def s3_bucket(s3_env: S3ServerInfo) -> str:
    """A fresh, empty bucket on the session server."""
    return s3_env.create_bucket()


@dataclass
class Backend:
    """One store implementation under test, plus a way to tamper with its objects behind its back."""

    name: str
    make: Callable[[], Store]
    corrupt: Callable[[str, bytes], None]  # overwrite the object at key (relative to the store root)

    def store(self) -> Store:
        return self.make()


def _local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "store-root"

    def corrupt(key: str, data: bytes) -> None:
        (root / key).write_bytes(data)

    return Backend("local", lambda: LocalStore(root), corrupt)


def _s3_backend(info: S3ServerInfo, bucket: str) -> Backend:
    raw: Any = info.client()

    def corrupt(key: str, data: bytes) -> None:
        raw.put_object(Bucket=bucket, Key=f"root/{key}", Body=data)

    return Backend("s3", lambda: S3Store.from_uri(f"s3://{bucket}/root"), corrupt)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path)
    info: S3ServerInfo = request.getfixturevalue("s3_env")
    return _s3_backend(info, info.create_bucket())


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3ServerInfo]:
    """moto's S3 server on loopback (in memory), shared by the session: it honours conditional writes."""
    with s3_server(tmp_path_factory.mktemp("moto-data"), server="moto") as info:
        yield info


@pytest.fixture(params=["local", "rclone", "moto"])
def lease_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh store on each kind of backend the lease must work on."""
    if request.param == "local":
        return LocalStore(tmp_path / "store-root")
    info: S3ServerInfo = request.getfixturevalue("s3" if request.param == "rclone" else "moto")
    isolate_aws_env(monkeypatch, tmp_path)
    point_env_at(info, monkeypatch)
    return S3Store.from_uri(f"s3://{info.create_bucket()}/root")

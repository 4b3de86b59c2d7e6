"""The `_COMPLETE` protocol on every backend (local and a real S3 server): commit, fetch, checksums,
interrupted commits, multipart-sized files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from xstilts.errors import CorruptArtifactError, StoreError
from xstilts.store import Store
from xstilts.store.complete import MARKER, commit_dir, fetch_complete, is_complete, read_manifest

from .conftest import Backend, write_tree

FILES = {
    "model/config.json": b'{"hidden_size": 32}',
    "model/model.safetensors": os.urandom(300_000),
    "predictions/en.jsonl": b'{"id": 1, "label": 0}\n',
    "metrics.json": b'{"accuracy": 0.5}',
    "logs/phase.log": b"line 1\nline 2\n",
}


@pytest.fixture
def phase_dir(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "phase-out", FILES)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_commit_then_fetch_round_trip(store: Store, phase_dir: Path, tmp_path: Path) -> None:
    entries = commit_dir(store, phase_dir, "phases/target/abc", metadata={"phase": "target/xnli"})
    assert sorted(e.path for e in entries) == sorted(FILES)
    assert is_complete(store, "phases/target/abc")
    manifest = json.loads(store.get_text(f"phases/target/abc/{MARKER}"))
    assert manifest["metadata"] == {"phase": "target/xnli"}
    sha = {e["path"]: e["sha256"] for e in manifest["files"]}
    assert sha["metrics.json"] == hashlib.sha256(FILES["metrics.json"]).hexdigest()

    out = fetch_complete(store, "phases/target/abc", tmp_path / "fetched")
    assert read_tree(out) == FILES
    only = fetch_complete(store, "phases/target/abc", tmp_path / "model-only", only="model")
    assert sorted(read_tree(only)) == ["model/config.json", "model/model.safetensors"]


def test_prefix_without_marker_is_not_complete(store: Store, phase_dir: Path, tmp_path: Path) -> None:
    store.put_files([(phase_dir / rel, f"phases/x/{rel}") for rel in FILES])
    assert not is_complete(store, "phases/x")
    assert read_manifest(store, "phases/x") is None
    with pytest.raises(FileNotFoundError, match=MARKER):
        fetch_complete(store, "phases/x", tmp_path / "out")


@pytest.mark.parametrize("same_size", [False, True])
def test_corrupted_object_is_detected_and_not_used(
    backend: Backend, phase_dir: Path, tmp_path: Path, same_size: bool
) -> None:
    store = backend.store()
    commit_dir(store, phase_dir, "p")
    original = FILES["model/model.safetensors"]
    bad = bytes(len(original)) if same_size else original[:-10]
    backend.corrupt("p/model/model.safetensors", bad)
    out = tmp_path / "out"
    with pytest.raises(CorruptArtifactError, match="model.safetensors") as err:
        fetch_complete(store, "p", out)
    assert isinstance(err.value, StoreError)  # exit code 1 in the CLI
    assert not (out / "model/model.safetensors").exists()  # the bad copy is removed, never used


def test_fetch_reuses_a_matching_local_copy(store: Store, phase_dir: Path, tmp_path: Path) -> None:
    commit_dir(store, phase_dir, "p")
    out = fetch_complete(store, "p", tmp_path / "out")
    (out / "metrics.json").write_bytes(b"stale")  # a damaged local copy is fetched again
    fetch_complete(store, "p", out)
    assert read_tree(out) == FILES


class FailingStore(Store):
    """Delegates to `inner` but dies (like a lost connection) after uploading `allowed` files."""

    def __init__(self, inner: Store, allowed: int) -> None:
        self.inner, self.allowed, self.uri = inner, allowed, inner.uri

    def put_files(self, pairs: list[tuple[Path, str]]) -> None:
        self.inner.put_files(pairs[: self.allowed])
        raise StoreError("connection lost")

    def put_file(self, local_path: Path, key: str) -> None:
        self.put_files([(local_path, key)])

    def put_bytes(self, key: str, data: bytes) -> None:
        raise StoreError("connection lost")

    def get_file(self, key: str, local_path: Path) -> None:
        self.inner.get_file(key, local_path)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str):  # noqa: ANN201
        return self.inner.list(prefix)

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)


def test_interrupted_commit_leaves_no_marker_and_rerun_completes(
    store: Store, phase_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(StoreError):
        commit_dir(FailingStore(store, allowed=2), phase_dir, "p")
    assert len(list(store.list("p/"))) == 2  # some files landed ...
    assert not is_complete(store, "p")  # ... but nothing counts as done
    commit_dir(store, phase_dir, "p")
    assert is_complete(store, "p")
    assert read_tree(fetch_complete(store, "p", tmp_path / "out")) == FILES


def test_multipart_sized_file_round_trip(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XSTILTS_S3_PART_SIZE_MB", "5")  # S3's smallest part; the file takes 3 parts
    store = backend.store()
    big = os.urandom(11 * 1024 * 1024 + 123)
    src = write_tree(tmp_path / "ckpt", {"model.safetensors": big, "config.json": b"{}"})
    calls: list[str] = []
    client = getattr(store, "client", None)
    if client is not None:
        client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    commit_dir(store, src, "ckpt")
    out = fetch_complete(store, "ckpt", tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == big
    if client is not None:
        assert calls.count("CreateMultipartUpload") == 1 and calls.count("CompleteMultipartUpload") == 1
        assert calls.count("UploadPart") == 3
        assert calls.count("GetObject") >= 3  # ranged GETs for the big file, one for the small one

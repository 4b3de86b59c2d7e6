"""The Store contract, written against LocalStore and run against every backend (`backend` fixture:
local and a real S3 server), plus what only LocalStore promises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xstilts.store import LocalStore, Store, open_store

from .conftest import write_tree


def keys(store: Store, prefix: str) -> list[str]:
    return sorted(o.key for o in store.list(prefix))


def test_bytes_and_text_round_trip(store: Store) -> None:
    store.put_bytes("a/b/c.bin", b"\x00\x01binary\xff")
    store.put_text("a/notes.txt", "héllo wörld ✓\n")
    assert store.get_bytes("a/b/c.bin") == b"\x00\x01binary\xff"
    assert store.get_text("a/notes.txt") == "héllo wörld ✓\n"
    store.put_bytes("a/b/c.bin", b"overwritten")
    assert store.get_bytes("a/b/c.bin") == b"overwritten"
    store.put_bytes("empty", b"")
    assert store.get_bytes("empty") == b""


def test_file_round_trip_creates_parents(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100_000)
    store.put_file(src, "files/src.bin")
    dest = tmp_path / "deep" / "er" / "dest.bin"
    store.get_file("files/src.bin", dest)
    assert dest.read_bytes() == src.read_bytes()


def test_missing_key_is_file_not_found(store: Store, tmp_path: Path) -> None:
    store.put_text("present", "x")
    with pytest.raises(FileNotFoundError):
        store.get_bytes("absent")
    with pytest.raises(FileNotFoundError):
        store.get_text("dir/absent.json")
    dest_dir = tmp_path / "dl"
    with pytest.raises(FileNotFoundError):
        store.get_file("absent", dest_dir / "absent")
    assert not dest_dir.exists() or list(dest_dir.iterdir()) == []  # no half (or empty) files left


def test_exists_is_exact(store: Store) -> None:
    store.put_text("run/a/file.json", "{}")
    assert store.exists("run/a/file.json")
    assert not store.exists("run/a")  # a "directory" is not an object
    assert not store.exists("run/a/file")
    assert not store.exists("nothing/here")


def test_list_with_prefixes(store: Store) -> None:
    for key in ["phases/target/x1/model/w.bin", "phases/target/x1/_COMPLETE", "phases/tasks/t", "top.txt"]:
        store.put_text(key, key)
    everything = ["phases/target/x1/_COMPLETE", "phases/target/x1/model/w.bin", "phases/tasks/t", "top.txt"]
    assert keys(store, "") == everything
    assert keys(store, "phases/target/") == everything[:2]
    assert keys(store, "phases/ta") == everything[:3]  # a prefix may end mid-name
    assert keys(store, "phases/target/x1/model") == ["phases/target/x1/model/w.bin"]
    assert keys(store, "nope/") == []
    sizes = {o.key: o.size for o in store.list("")}
    assert sizes["top.txt"] == len("top.txt")


def test_delete_prefix(store: Store) -> None:
    for key in ["run/a/x", "run/a/y/z", "run/ab/x", "run/b"]:
        store.put_text(key, "1")
    store.delete_prefix("run/a")
    assert keys(store, "") == ["run/ab/x", "run/b"]  # a sibling that merely shares the name survives
    store.delete_prefix("run/b")  # an exact object
    assert keys(store, "") == ["run/ab/x"]
    store.delete_prefix("missing/")  # nothing to do is fine
    store.delete_prefix("run/")
    assert keys(store, "") == []


def test_many_files_round_trip(store: Store, tmp_path: Path) -> None:
    files = {f"part-{i:03d}/data.json": f'{{"i": {i}}}'.encode() for i in range(40)}
    src = write_tree(tmp_path / "src", files)
    store.put_files([(src / rel, f"many/{rel}") for rel in files])
    assert len(keys(store, "many/")) == 40
    dest = tmp_path / "dest"
    store.get_files([(f"many/{rel}", dest / rel) for rel in files])
    assert {rel: (dest / rel).read_bytes() for rel in files} == files


def test_describe_names_the_store_without_secrets(backend, store: Store) -> None:  # noqa: ANN001
    text = store.describe()
    assert text == store.uri
    if backend.name == "s3":
        import os

        assert text.startswith("s3://") and os.environ["AWS_SECRET_ACCESS_KEY"] not in text


# -- LocalStore only ---------------------------------------------------------------------------


def test_local_rejects_keys_outside_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(ValueError):
        store.put_text("../escape", "x")


def test_local_hides_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_text("a/real", "x")
    (tmp_path / "root" / "a" / ".tmp-leftover").write_text("partial")
    assert keys(store, "") == ["a/real"]


def test_open_store_picks_the_implementation(tmp_path: Path, s3_bucket: str) -> None:
    assert isinstance(open_store(str(tmp_path / "x")), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/y"), LocalStore)
    from xstilts.store.s3 import S3Store

    s3_store = open_store(f"s3://{s3_bucket}/runs/v1/")
    assert isinstance(s3_store, S3Store)
    assert (s3_store.bucket, s3_store.prefix, s3_store.uri) == (
        s3_bucket,
        "runs/v1",
        f"s3://{s3_bucket}/runs/v1",
    )


SEGMENT = st.text(alphabet=st.sampled_from("abcXYZ019-_.=@+ ,~()éß中"), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and not s.startswith((".tmp-", ".rclone")) and s.strip() == s
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(SEGMENT, min_size=1, max_size=3), data=st.binary(max_size=64))
def test_any_reasonable_key_round_trips(store: Store, segments: list[str], data: bytes) -> None:
    key = "h/" + "/".join(segments)
    store.put_bytes(key, data)
    assert store.get_bytes(key) == data
    assert store.exists(key)
    assert key in keys(store, "h/")
    store.delete_prefix("h")
    assert keys(store, "h/") == []

"""The tokenized-features cache: hits skip the build, misses and corrupted entries rebuild, the key
follows what the features depend on, and training phases read their features through it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import example_config
from xstilts.data import cache as fc
from xstilts.plan.configs import parse_config
from xstilts.store import LocalStore, join_key
from xstilts.store.complete import MARKER

DATA = {"source": "fixtures", "fixtures_size": "tiny"}
ARGS = {"task": "mnli", "role": "train", "lang": "en", "data": DATA, "max_length": 128, "doc_stride": 64}
# Every value type features carry: int lists, nested lists (multiple choice), tuples and None (QA
# offsets, word ids), strings, floats.
FEATURES = [
    {"input_ids": [0, 5, 6, 2], "labels": 1, "example_index": 0},
    {"input_ids": [[0, 7, 2], [0, 8, 9, 2]], "labels": 0, "example_index": 1},
    {"input_ids": [0, 4, 2], "offsets": [None, (0, 3), None], "word_ids": [None, 0, None],
     "example_id": "q-1", "start_positions": 1, "end_positions": 1, "example_index": 2},
    {"input_ids": [0, 2], "labels": 0.25, "example_index": 3},
]  # fmt: skip


@pytest.fixture
def tokenizer_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tok"
    directory.mkdir()
    (directory / "tokenizer.json").write_text('{"model": "unigram", "vocab": [1, 2, 3]}')
    (directory / "tokenizer_config.json").write_text('{"model_max_length": 512}')
    (directory / "model.safetensors").write_bytes(b"weights are not part of the key")
    return directory


class Builder:
    def __init__(self, features: list[dict] | None = None):
        self.calls = 0
        self.features = features if features is not None else FEATURES

    def __call__(self) -> list[dict]:
        self.calls += 1
        return [dict(f) for f in self.features]


def cached(store, tokenizer_dir: Path, build, **overrides) -> list[dict]:
    args = {**ARGS, **overrides}
    return fc.cached_features(store, tokenizer_dir, build=build, **args)


def only_key(store: LocalStore) -> str:
    keys = {o.key.split("/")[2] for o in store.list(fc.CACHE_PREFIX + "/")}
    assert len(keys) == 1
    return keys.pop()


def test_hit_returns_equal_features_without_building(tmp_path: Path, tokenizer_dir: Path):
    store = LocalStore(tmp_path / "store")
    first = Builder()
    assert cached(store, tokenizer_dir, first) == FEATURES and first.calls == 1
    events = []
    second = Builder()
    again = cached(store, tokenizer_dir, second, on_event=lambda name, **kw: events.append((name, kw)))
    assert second.calls == 0
    assert again == FEATURES
    assert again[2]["offsets"][1] == (0, 3) and isinstance(again[2]["offsets"][1], tuple)
    assert events[0][0] == "feature_cache" and events[0][1]["hit"] is True
    key = only_key(store)
    manifest = json.loads(store.get_text(join_key(fc.cache_prefix(key), MARKER)))
    assert [f["path"] for f in manifest["files"]] == [fc.PAYLOAD]
    assert manifest["metadata"]["task"] == "mnli" and manifest["metadata"]["features"] == len(FEATURES)


def test_corrupted_object_is_ignored_and_rebuilt(tmp_path: Path, tokenizer_dir: Path):
    store = LocalStore(tmp_path / "store")
    cached(store, tokenizer_dir, Builder())
    key = only_key(store)
    payload = tmp_path / "store" / fc.cache_prefix(key) / fc.PAYLOAD
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))

    rebuild = Builder()
    assert cached(store, tokenizer_dir, rebuild) == FEATURES
    assert rebuild.calls == 1, "a checksum mismatch is a miss"
    after = Builder()
    assert cached(store, tokenizer_dir, after) == FEATURES and after.calls == 0, "the rebuilt entry is valid"


@pytest.mark.parametrize("damage", ["truncate", "drop_payload", "bad_manifest"])
def test_other_damage_is_a_miss(tmp_path: Path, tokenizer_dir: Path, damage: str):
    store = LocalStore(tmp_path / "store")
    cached(store, tokenizer_dir, Builder())
    prefix = tmp_path / "store" / fc.cache_prefix(only_key(store))
    if damage == "truncate":
        (prefix / fc.PAYLOAD).write_bytes((prefix / fc.PAYLOAD).read_bytes()[:10])
    elif damage == "drop_payload":
        (prefix / fc.PAYLOAD).unlink()
    else:
        (prefix / MARKER).write_text("{not json")
    rebuild = Builder()
    assert cached(store, tokenizer_dir, rebuild) == FEATURES and rebuild.calls == 1


def test_payload_with_globals_is_refused_not_executed(tmp_path: Path, tokenizer_dir: Path):
    """A payload whose checksum matches but which references a global (code) is never unpickled."""
    store = LocalStore(tmp_path / "store")
    cached(store, tokenizer_dir, Builder())
    key = only_key(store)
    hostile = io.BytesIO()
    with gzip.GzipFile(fileobj=hostile, mode="wb", mtime=0) as handle:
        pickle.dump([{"input_ids": Path("/tmp")}], handle)
    fc.save_cached(store, key, [], {})  # a valid manifest format...
    store.put_bytes(join_key(fc.cache_prefix(key), fc.PAYLOAD), hostile.getvalue())
    manifest = {"files": [{"path": fc.PAYLOAD, "size": len(hostile.getvalue()),
                           "sha256": hashlib.sha256(hostile.getvalue()).hexdigest()}]}  # fmt: skip
    store.put_text(join_key(fc.cache_prefix(key), MARKER), json.dumps(manifest))
    with pytest.raises(pickle.UnpicklingError):
        fc.decode(hostile.getvalue())
    rebuild = Builder()
    assert cached(store, tokenizer_dir, rebuild) == FEATURES and rebuild.calls == 1


def test_key_follows_what_features_depend_on(tmp_path: Path, tokenizer_dir: Path, monkeypatch):
    def key(**overrides) -> str:
        args = {**ARGS, **overrides}
        tok = args.pop("tokenizer_dir", tokenizer_dir)
        return fc.cache_key(fc.key_fields(tok, **args))

    base = key()
    assert key() == base, "deterministic"
    changed = [
        key(task="qqp"), key(role="dev"), key(lang="de"), key(max_length=256), key(doc_stride=32),
        key(limit=10), key(stage=0), key(data={"source": "hub"}),
        key(data={**DATA, "fixtures_size": "small"}),
        key(extra={"augment": [{"name": "char_noise"}]}),
    ]  # fmt: skip
    assert base not in changed and len(set(changed)) == len(changed)

    same_files = tmp_path / "elsewhere"
    same_files.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (same_files / name).write_bytes((tokenizer_dir / name).read_bytes())
    assert key(tokenizer_dir=same_files) == base, "the tokenizer's bytes count, not its path or the weights"
    (same_files / "tokenizer.json").write_text('{"model": "unigram", "vocab": [1, 2, 4]}')
    assert key(tokenizer_dir=same_files) != base

    monkeypatch.setattr("xstilts.data.fixtures.FIXTURES_VERSION", 999)
    assert key() != base, "a new fixture version is a new key"


def test_disabled_cache_always_builds(tmp_path: Path, tokenizer_dir: Path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    build = Builder()
    cached(None, tokenizer_dir, build)
    monkeypatch.setenv("XSTILTS_FEATURE_CACHE", "0")
    cached(store, tokenizer_dir, build)
    assert build.calls == 2 and not list(store.list(fc.CACHE_PREFIX + "/"))


def test_training_phase_tokenizes_once(tmp_path: Path, monkeypatch):
    """Two training phases over the same task and tokenizer: the second reads the cached features."""
    from xstilts.data.fixtures import corpus_lines
    from xstilts.modeling.tiny import train_tokenizer
    from xstilts.phases import training
    from xstilts.spec.training import TrainingConfig
    from xstilts.tasks import get_task
    from xstilts.train.progress import ProgressLog

    tokenizer = train_tokenizer(corpus_lines(n_per_lang=40), 400)
    tokenizer.save_pretrained(tmp_path / "encoder")
    store = LocalStore(tmp_path / "store")
    config = TrainingConfig(max_length=64, max_train_examples=24, max_dev_examples=12)

    def phase() -> tuple[list[dict], list[dict]]:
        stream = io.StringIO()
        ctx = SimpleNamespace(
            store=store,
            config=parse_config("target", example_config("target", data=DATA)),
            progress=ProgressLog("t", stream=stream),
        )
        stages = training._stages(ctx, [get_task("mnli")], config, tokenizer, tmp_path / "encoder")
        training.dev_evaluator([get_task("mnli")], DATA, tokenizer, config, store=store,
                               tokenizer_dir=tmp_path / "encoder", on_event=ctx.progress.event)  # fmt: skip
        events = [json.loads(line) for line in stream.getvalue().splitlines()]
        return stages[0].features["mnli"], events

    first, events = phase()
    assert [e["hit"] for e in events if e["event"] == "feature_cache"] == [False, False]
    data_event = next(e for e in events if e["event"] == "data")
    assert data_event["examples"] == 24 and data_event["features"] == len(first) == 24

    def no_tokenizing(*_args, **_kwargs):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(training, "featurize", no_tokenizing)
    second, events = phase()
    assert [e["hit"] for e in events if e["event"] == "feature_cache"] == [True, True]
    assert second == first

"""What only S3Store promises: configuration from the URI and environment, paging and batching, and
one-line StoreErrors for an endpoint that is down, wrong credentials, a missing bucket, an outage in
the middle of a commit (against a real rclone S3 server that is killed and restarted)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import xstilts.store.s3 as s3mod
from xstilts.errors import StoreError
from xstilts.store.complete import commit_dir, fetch_complete, is_complete
from xstilts.store.s3 import S3Settings, S3Store, parse_s3_uri
from xstilts.testing.s3_server import S3ServerInfo, env_for, free_port, s3_server

from .conftest import isolate_aws_env, point_env_at, write_tree

FAST_FAIL = {"max_attempts": 2, "connect_timeout": 1.0, "read_timeout": 5.0}


def count_calls(store: S3Store) -> list[str]:
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return calls


def assert_one_line_without_secrets(message: str, *secrets: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    for secret in secrets:
        assert secret not in message


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://b", ("b", "")), ("s3://b/", ("b", "")), ("s3://b/x/y/", ("b", "x/y")), ("s3://b//x", ("b", "x"))],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "gs://b/x"])
def test_parse_s3_uri_rejects(uri: str) -> None:
    with pytest.raises(StoreError, match="s3://bucket/prefix"):
        parse_s3_uri(uri)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    assert S3Settings.from_env() == S3Settings()
    monkeypatch.setenv("XSTILTS_S3_PART_SIZE_MB", "16")
    monkeypatch.setenv("XSTILTS_S3_CONCURRENCY", "3")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("XSTILTS_S3_RETRY_MODE", "adaptive")
    settings = S3Settings.from_env(concurrency=4)
    assert (settings.part_size, settings.concurrency, settings.max_attempts, settings.retry_mode) == (
        16 * 1024 * 1024,
        4,
        7,
        "adaptive",
    )
    transfer = settings.transfer_config()
    assert transfer.multipart_chunksize == transfer.multipart_threshold == 16 * 1024 * 1024
    assert transfer.max_request_concurrency == 4
    assert S3Settings(part_size_mb=1).part_size == 5 * 1024 * 1024  # S3's minimum part size
    monkeypatch.setenv("XSTILTS_S3_CONCURRENCY", "many")
    with pytest.raises(StoreError, match="XSTILTS_S3_CONCURRENCY"):
        S3Settings.from_env()


def test_client_config_for_s3_compatible_endpoints(
    s3_env: S3ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store.from_uri("s3://bucket/prefix")
    assert store.endpoint_url == s3_env.endpoint_url  # from AWS_ENDPOINT_URL
    config = store.client.meta.config
    assert config.s3["addressing_style"] == "path"
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == config.response_checksum_validation == "when_required"
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # the S3-specific variable wins
    assert S3Store.from_uri("s3://bucket").endpoint_url == "http://127.0.0.1:9"
    explicit = S3Store.from_uri("s3://bucket", endpoint_url="http://127.0.0.1:8")
    assert explicit.endpoint == "http://127.0.0.1:8"


# -- paging and batching ------------------------------------------------------------------------


def test_list_paginates_and_delete_batches(
    s3_env: S3ServerInfo, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store.from_uri(f"s3://{s3_bucket}/root")
    for i in range(7):
        store.put_text(f"d/{i}", str(i))
    store.list_page_size = 2
    monkeypatch.setattr(s3mod, "DELETE_BATCH", 3)
    calls = count_calls(store)
    assert [o.key for o in store.list("d/")] == [f"d/{i}" for i in range(7)]
    assert calls.count("ListObjectsV2") == 4
    store.delete_prefix("d")
    assert calls.count("DeleteObjects") == 3
    assert list(store.list("")) == []


def test_keys_outside_the_prefix_are_invisible(s3_env: S3ServerInfo, s3_bucket: str) -> None:
    S3Store.from_uri(f"s3://{s3_bucket}/other").put_text("x", "not ours")
    S3Store.from_uri(f"s3://{s3_bucket}/rootless").put_text("x", "not ours either")
    store = S3Store.from_uri(f"s3://{s3_bucket}/root")
    store.put_text("x", "ours")
    assert [o.key for o in store.list("")] == ["x"]
    store.delete_prefix("")
    assert S3Store.from_uri(f"s3://{s3_bucket}/other").get_text("x") == "not ours"


# -- failures -------------------------------------------------------------------------------------


# FAST_FAIL bounds the retries; the timeout only turns a hang into a failure (no timing is asserted).
@pytest.mark.timeout(60)
def test_unreachable_endpoint_fails_fast_with_a_clear_message(s3_env: S3ServerInfo, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3Store.from_uri("s3://my-bucket/runs", endpoint_url=endpoint, **FAST_FAIL)
    src = write_tree(tmp_path / "src", {"a.json": b"{}", "b.json": b"{}"})
    for attempt in (
        lambda: store.put_text("x", "y"),
        lambda: store.get_bytes("x"),
        lambda: store.exists("x"),
        lambda: list(store.list("")),
        lambda: commit_dir(store, src, "p"),
        lambda: store.get_file("x", tmp_path / "x"),
    ):
        with pytest.raises(StoreError) as err:
            attempt()
        message = str(err.value)
        assert endpoint in message and "my-bucket" in message and "unreachable" in message
        assert "AWS_ENDPOINT_URL" in message  # the fix
        assert_one_line_without_secrets(message, s3_env.secret_key)
        assert err.value.exit_code == 1


def test_wrong_credentials_are_a_clear_store_error(
    s3_env: S3ServerInfo, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    S3Store.from_uri(f"s3://{s3_bucket}").put_text("x", "y")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-123")
    store = S3Store.from_uri(f"s3://{s3_bucket}", **FAST_FAIL)
    for attempt in (
        lambda: store.put_text("x", "z"),
        lambda: store.get_bytes("x"),
        lambda: store.exists("x"),
        lambda: store.get_file("x", tmp_path / "x"),
    ):
        with pytest.raises(StoreError) as err:
            attempt()
        message = str(err.value)
        assert "refused the credentials" in message and "AWS_SECRET_ACCESS_KEY" in message
        assert s3_bucket in message and s3_env.endpoint_url in message
        assert_one_line_without_secrets(message, "not-the-secret-123", s3_env.secret_key)


def test_missing_credentials_are_a_clear_store_error(
    s3_env: S3ServerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="no S3 credentials found.*AWS_ACCESS_KEY_ID"):
        S3Store.from_uri("s3://some-bucket", **FAST_FAIL).get_bytes("x")


def test_missing_bucket_is_an_error_not_an_empty_store(s3_env: S3ServerInfo) -> None:
    store = S3Store.from_uri("s3://no-such-bucket-here/runs")
    for attempt in (lambda: store.put_text("x", "y"), lambda: store.exists("x"), store.check):
        with pytest.raises(StoreError, match="bucket 'no-such-bucket-here' .* does not exist"):
            attempt()


def test_outage_during_commit_leaves_no_marker_and_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the server after a few files of a commit; after a restart the prefix is not complete, and
    committing again completes it."""
    isolate_aws_env(monkeypatch, tmp_path)
    files = {f"checkpoints/step-{i:02d}/shard.json": f'{{"step": {i}}}'.encode() * 50 for i in range(30)}
    src = write_tree(tmp_path / "src", files)
    with s3_server(tmp_path / "s3-data") as info:
        point_env_at(info, monkeypatch)
        bucket = info.create_bucket()
        store = S3Store.from_uri(f"s3://{bucket}/phases/target/abc", **FAST_FAIL)
        stop_after_puts(store, info, puts=5)
        with pytest.raises(StoreError, match="unreachable") as err:
            commit_dir(store, src, "run")
        assert info.endpoint_url in str(err.value) and bucket in str(err.value)
        assert not info.running

        info.start()  # same port, same data directory
        fresh = S3Store.from_uri(f"s3://{bucket}/phases/target/abc", **FAST_FAIL)
        landed = len(list(fresh.list("run/")))
        assert 5 <= landed < len(files)
        assert not is_complete(fresh, "run")
        commit_dir(fresh, src, "run")
        assert is_complete(fresh, "run")
        out = fetch_complete(fresh, "run", tmp_path / "out")
        assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == set(files)


def stop_after_puts(store: S3Store, info: S3ServerInfo, *, puts: int) -> None:
    """Kill the server (from the transfer thread that finished it) after `puts` successful PutObjects."""
    lock = threading.Lock()
    done = [0]

    def after_put(http_response: object = None, **_: object) -> None:
        with lock:
            done[0] += 1
            if done[0] == puts:
                info.stop()

    store.client.meta.events.register("after-call.s3.PutObject", after_put)


def test_env_for_points_a_subprocess_at_the_server(s3_env: S3ServerInfo, s3_bucket: str) -> None:
    import json
    import subprocess
    import sys

    env = env_for(s3_env)
    expected = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert set(env) == expected
    code = (
        "import sys; from xstilts.store import open_store; "
        "s = open_store(sys.argv[1]); s.put_text('from-child.json', '{\"ok\": true}')"
    )
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AWS_")}
    subprocess.run([sys.executable, "-c", code, f"s3://{s3_bucket}/sub"], env={**clean, **env}, check=True)
    assert json.loads(S3Store.from_uri(f"s3://{s3_bucket}/sub").get_text("from-child.json")) == {"ok": True}


# -- many keys, outages -------------------------------------------------------------------------------


def test_a_status_pass_lists_once_instead_of_a_head_per_phase(s3_env: S3ServerInfo, s3_bucket: str) -> None:
    from xstilts.store.complete import complete_prefixes

    store = S3Store.from_uri(f"s3://{s3_bucket}/runs")
    prefixes = [f"phases/target/{i:012x}" for i in range(40)]
    for prefix in prefixes[::3]:
        store.put_text(f"{prefix}/_COMPLETE", "{}")
        store.put_text(f"{prefix}/metrics.json", "{}")
    calls = count_calls(store)
    assert complete_prefixes(store, prefixes) == set(prefixes[::3])
    assert calls == ["ListObjectsV2"], calls
    calls.clear()
    assert complete_prefixes(store, prefixes[:2]) == {prefixes[0]}
    assert "ListObjectsV2" not in calls and calls.count("HeadObject") == 2, "a few keys: a HEAD each"


def test_a_short_outage_is_ridden_out_once_the_store_has_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    with s3_server(tmp_path / "s3-data") as info:
        point_env_at(info, monkeypatch)
        bucket = info.create_bucket()
        store = S3Store.from_uri(f"s3://{bucket}/runs", max_attempts=2, connect_timeout=1.0, outage_s=60)
        store.put_text("x", "before")
        info.stop()
        restart = threading.Timer(3.0, info.start)
        restart.start()
        try:
            assert store.get_text("x") == "before", "read after the outage"
        finally:
            restart.join()
        err = capsys.readouterr().err
        assert "unreachable" in err and "retrying for up to 60 s" in err and "answers again" in err


def test_an_outage_longer_than_the_window_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    with s3_server(tmp_path / "s3-data") as info:
        point_env_at(info, monkeypatch)
        bucket = info.create_bucket()
        store = S3Store.from_uri(f"s3://{bucket}/runs", max_attempts=1, connect_timeout=1.0, outage_s=2)
        store.put_text("x", "before")
        info.stop()
        with pytest.raises(StoreError, match="still failing after .* XSTILTS_STORE_OUTAGE_S") as err:
            store.get_text("x")
        assert err.value.transient and "\n" not in str(err.value)


def test_settings_read_the_outage_window_and_conditional_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("XSTILTS_STORE_OUTAGE_S", "42")
    monkeypatch.setenv("XSTILTS_S3_CONDITIONAL_WRITES", "off")
    settings = S3Settings.from_env()
    assert settings.outage_s == 42 and settings.conditional_writes == "off"
    monkeypatch.setenv("XSTILTS_S3_CONDITIONAL_WRITES", "maybe")
    with pytest.raises(StoreError, match="XSTILTS_S3_CONDITIONAL_WRITES"):
        S3Settings.from_env()


def test_the_report_asks_which_phases_are_complete_in_one_listing(
    s3_env: S3ServerInfo, s3_bucket: str
) -> None:
    from tests.conftest import REPO
    from xstilts.plan import expand
    from xstilts.report.collect import _CompletionCache
    from xstilts.spec import load_sweep

    plan = expand(load_sweep(REPO / "jobs" / "tiny.yaml"))
    store = S3Store.from_uri(f"s3://{s3_bucket}/runs")
    phases = plan.ordered()
    for phase in phases[::2]:
        store.put_text(f"{phase.prefix}/_COMPLETE", "{}")
    calls = count_calls(store)
    done = _CompletionCache(plan, store)
    assert [done(p.address) for p in phases] == [i % 2 == 0 for i in range(len(phases))]
    assert calls == ["ListObjectsV2"], calls

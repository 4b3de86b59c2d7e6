"""Phases against an S3 server that fails: the server stops during a checkpoint upload, so that
checkpoint never gets its `_COMPLETE`; after the restart the phase resumes from the previous complete
checkpoint and succeeds. A corrupted object in the bucket is detected by its checksum and not used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, run_xstilts
from tests.e2e.sweeps import micro, planned, write
from xstilts.backends.reconcile import write_specs
from xstilts.store.s3 import S3Store
from xstilts.testing.s3_server import env_for, s3_server

FAST_FAIL = {
    "XSTILTS_S3_MAX_ATTEMPTS": "2",
    "XSTILTS_S3_CONNECT_TIMEOUT": "2",
    "XSTILTS_S3_READ_TIMEOUT": "5",
    "XSTILTS_STORE_OUTAGE_S": "0",  # no riding out: the outage outlasts the phase
}


def complete_steps(client, bucket: str, prefix: str) -> list[int]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/checkpoints/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return sorted(int(k.split("step-")[1].split("/")[0]) for k in keys if k.endswith("/_COMPLETE"))


def test_outage_during_checkpoint_upload_then_resume(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    training = {**micro()["training"], "max_steps": 400, "checkpoint_every": 100, "max_dev_examples": 10}
    sweep_file = write(tmp_path, micro(training=training))
    plan, encoder, intermediate = planned(sweep_file)
    with s3_server(tmp_path / "s3") as server:
        bucket = server.create_bucket("faults")
        env = {**env_for(server), **FAST_FAIL, "XSTILTS_STAGING": str(tmp_path / "staging")}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        uri = f"s3://{bucket}/runs"
        write_specs(plan, S3Store.from_uri(uri))
        assert run_xstilts("phase", "run", encoder.address, "--store", uri, env=env).returncode == 0

        phase = subprocess.Popen(
            [sys.executable, "-m", "xstilts", "phase", "run", intermediate.address, "--store", uri],
            cwd=REPO, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        client = server.client()
        deadline = time.monotonic() + 300
        while complete_steps(client, bucket, f"runs/{intermediate.prefix}") != [100]:
            assert phase.poll() is None, phase.stdout.read()[-3000:] if phase.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.stop()  # the outage: the next checkpoint upload (step 200) cannot complete
        output, _ = phase.communicate(timeout=300)
        assert phase.returncode != 0, "the phase fails when the store is gone"
        assert "Traceback" not in output.splitlines()[-1]

        server.start()
        client = server.client()
        assert complete_steps(client, bucket, f"runs/{intermediate.prefix}") == [100]
        head = client.list_objects_v2(Bucket=bucket, Prefix=f"runs/{intermediate.prefix}/_COMPLETE")
        assert head.get("KeyCount", 0) == 0

        resumed = run_xstilts("phase", "run", intermediate.address, "--store", uri, env=env)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        events = [
            json.loads(line) for line in resumed.stdout.splitlines() if line.startswith('{"event": "resume"')
        ]
        assert [e["step"] for e in events] == [100]
        metrics = json.loads(
            client.get_object(Bucket=bucket, Key=f"runs/{intermediate.prefix}/metrics.json")["Body"].read()
        )
        assert metrics["steps"] > 100 and metrics["resumed_from"] == 100


def test_corrupted_upstream_model_is_detected_and_not_used(tmp_path: Path, monkeypatch):
    sweep_file = write(tmp_path, micro())
    plan, encoder, intermediate = planned(sweep_file)
    with s3_server(tmp_path / "s3") as server:
        bucket = server.create_bucket("corrupt")
        env = {**env_for(server), **FAST_FAIL, "XSTILTS_CACHE": str(tmp_path / "cache")}
        uri = f"s3://{bucket}/runs"
        for name, value in env_for(server).items():
            monkeypatch.setenv(name, value)
        write_specs(plan, S3Store.from_uri(uri))
        assert run_xstilts("phase", "run", encoder.address, "--store", uri, env=env).returncode == 0
        key = f"runs/{encoder.prefix}/model/model.safetensors"
        client = server.client()
        body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[len(body) // 2] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
        result = run_xstilts("phase", "run", intermediate.address, "--store", uri, env=env)
        assert result.returncode == 1
        assert "does not match its _COMPLETE checksum" in result.stderr
        assert "Traceback" not in result.stderr
        cached = tmp_path / "cache" / "models" / encoder.address / "model" / "model.safetensors"
        assert not cached.exists(), "the corrupted download is deleted, never used"

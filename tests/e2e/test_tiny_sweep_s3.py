"""The README's sweep (jobs/tiny.yaml, every training phase capped at a few steps: what is tested is
the S3 path, not the training) end to end against a real S3-compatible server on 127.0.0.1: every
phase runs, outputs land in the bucket, the report is read from S3, and a second run re-runs
nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from tests.conftest import REPO, run_xstilts
from xstilts.plan import expand
from xstilts.spec import load_sweep
from xstilts.testing.s3_server import env_for, s3_server

README_SWEEP = REPO / "jobs" / "tiny.yaml"


def _capped(tmp_path: Path, steps: int = 8) -> Path:
    sweep = yaml.safe_load(README_SWEEP.read_text())
    sweep["training"]["max_steps"] = steps
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def test_tiny_sweep_on_s3_end_to_end(tmp_path: Path):
    tiny = _capped(tmp_path)
    with s3_server(tmp_path / "s3-data") as server:
        bucket = server.create_bucket("xstilts-e2e")
        env = env_for(server)
        store = f"s3://{bucket}/runs"
        first = run_xstilts(
            "sweep", "submit", str(tiny), "--store", store, env=env, cwd=tmp_path, timeout=1200
        )
        assert first.returncode == 0, first.stderr[-4000:]
        assert "Report:" in first.stderr

        plan = expand(load_sweep(tiny))
        client = server.client()
        keys = {
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        }
        for phase in plan.ordered():
            assert f"runs/{phase.prefix}/_COMPLETE" in keys, phase.name
            assert f"runs/{phase.prefix}/lineage.json" in keys
            assert f"runs/{phase.prefix}/logs/phase.log" in keys
        assert any(k.endswith("/predictions/de.jsonl") for k in keys)
        for key in (k for k in keys if k.endswith(("lineage.json", "phase.log"))):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            assert server.secret_key not in body and server.access_key not in body, (
                f"credentials leaked in {key}"
            )

        second = run_xstilts("sweep", "submit", str(tiny), "--store", store, env=env, cwd=tmp_path)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "already complete" in second.stderr and "nothing to run" in second.stderr

        out = tmp_path / "report"
        report = run_xstilts("report", str(tiny), "--store", store, "--out", str(out), env=env, cwd=tmp_path)
        assert report.returncode == 0, report.stderr[-2000:]
    summary = list(csv.DictReader((out / "summary.csv").open()))
    settings = {row["setting"] for row in summary}
    assert settings >= {"baseline", "mnli", "hellaswag+squad"}
    for target in ("pawsx", "panx", "xquad", "tatoeba"):
        rows = list(csv.DictReader((out / f"{target}.csv").open()))
        assert {row["setting"] for row in rows} == {"baseline", "mnli", "hellaswag+squad"}, target
    delta = list(csv.DictReader((out / "pawsx_delta.csv").open()))
    assert {row["setting"] for row in delta} >= {"mnli", "hellaswag+squad"}
    markdown = (out / "report.md").read_text()
    assert "pawsx" in markdown and "heatmap.png" in markdown
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

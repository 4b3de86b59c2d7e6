"""A short S3 outage in the middle of a sweep is ridden out: the controller and the running phase retry
with backoff (up to `XSTILTS_STORE_OUTAGE_S`), nothing is cancelled or restarted, and the sweep ends as
if nothing happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.e2e.sweeps import micro, write
from xstilts.plan import expand
from xstilts.spec import load_sweep
from xstilts.testing.s3_server import env_for, s3_server

BLIP_S = 7.0


def test_a_store_blip_shorter_than_the_window_is_ridden_out(tmp_path: Path) -> None:
    training = {**micro()["training"], "max_steps": 160, "checkpoint_every": 40}
    sweep = write(tmp_path, micro(training=training))
    intermediate = next(p for p in expand(load_sweep(sweep)).ordered() if p.kind == "intermediate")
    with s3_server(tmp_path / "s3") as server:
        bucket = server.create_bucket()
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env = {
            **base,
            **env_for(server),
            "XSTILTS_CACHE": str(tmp_path / "cache"),
            "XSTILTS_STAGING": str(tmp_path / "staging"),
            "XSTILTS_STORE_OUTAGE_S": "120",
            "XSTILTS_S3_CONNECT_TIMEOUT": "2",
        }
        controller = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xstilts",
                "sweep",
                "submit",
                str(sweep),
                "--store",
                f"s3://{bucket}/runs",
                "--no-report",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            # rclone keeps objects as files: watch the first checkpoint land without asking the server.
            first = (
                server.data_dir
                / bucket
                / "runs"
                / intermediate.prefix
                / "checkpoints"
                / "step-40"
                / "_COMPLETE"
            )
            deadline = time.monotonic() + 300
            while not first.exists():
                assert controller.poll() is None, controller.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the intermediate phase never checkpointed"
                time.sleep(0.05)
            server.stop()  # the outage, in the middle of training
            time.sleep(BLIP_S)
            server.start()
            _, err = controller.communicate(timeout=600)
        finally:
            if controller.poll() is None:
                os.killpg(controller.pid, signal.SIGKILL)
        assert controller.returncode == 0, err[-3000:]
        assert "retrying for up to 120 s" in err, "the controller noticed the outage and rode it out"
        log = (tmp_path / "cache" / "local" / "micro" / "logs" / f"{intermediate.address}.log").read_text()
        events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
        assert events.count("start") == 1 and "resume" not in events, "the running phase was not cancelled"
        metrics = json.loads(
            server.client()
            .get_object(Bucket=bucket, Key=f"runs/{intermediate.prefix}/metrics.json")["Body"]
            .read()
        )
        assert metrics["steps"] == 160 and metrics["resumed_from"] is None

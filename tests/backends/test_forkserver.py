"""The local backend's fork server: a controller killed while the server starts must not leave a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_server_whose_backend_is_gone_exits_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # the backend died before the server said it was ready
    server = subprocess.run(
        [sys.executable, "-m", "xstilts.backends.forkserver"],
        stdin=subprocess.DEVNULL,
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    os.close(write)
    assert "Traceback" not in server.stderr, server.stderr[-2000:]
    assert server.returncode == 0

"""A fork server for the local backend: one process imports the training stack (torch,
transformers, accelerate, datasets) once, then forks a child per phase that runs the Job's
`xstilts ...` command with the Job's environment, exactly as `python -m xstilts ...` would, minus
the seconds of imports. The server is single-threaded (forking a threaded process is unsafe) and
reports each child's pid and exit code on its stdout as JSON lines. Disable with XSTILTS_LOCAL_FORK=0.
"""

from __future__ import annotations

import json
import os
import runpy
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PRELOAD = (
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "xstilts.cli.main",
    "xstilts.phases.run",
    "xstilts.phases.training",
    "xstilts.phases.evaluate",
    "xstilts.train.loop",
    "xstilts.modeling.model",
    "xstilts.phases.encoder",
    "xstilts.phases.analysis",
    "xstilts.evaluate.predict",
    "xstilts.evaluate.scoring",
    # `transformers` imports its submodules on first attribute access: without these, every forked phase
    # spends 2-3 s importing the model code (measured with `python -X importtime`).
    "transformers.modeling_utils",
    "transformers.activations",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "transformers.models.xlm_roberta.modeling_xlm_roberta",
    "transformers.models.bert.modeling_bert",
    "transformers.tokenization_utils_tokenizers",
    "transformers.trainer_pt_utils",
    "scipy.io",
)


def enabled() -> bool:
    return os.environ.get("XSTILTS_LOCAL_FORK", "1") != "0"


# Importing the training stack takes seconds alone and minutes on a loaded machine; past this the backend
# falls back to plain subprocesses.
START_TIMEOUT_S = 300


class ForkedProcess:
    """The Popen-like view of a forked phase: pid, poll(), wait()."""

    def __init__(self, server: ForkServer, pid: int):
        self.server = server
        self.pid = pid

    def poll(self) -> int | None:
        if self.server.alive():
            self.server.collect()
            return self.server.exit_codes.get(self.pid)
        self.server.collect()
        if self.pid in self.server.exit_codes:
            return self.server.exit_codes[self.pid]
        try:  # the server is gone (nobody reports the exit code): is the process still there?
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return self.server.exit_codes.setdefault(self.pid, -signal.SIGKILL)
        except PermissionError:
            pass
        return None

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.05)
        return code


class ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xstilts.backends.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            # Its own session: a Ctrl-C at the terminal reaches the controller only, which then stops the
            # phases in order and closes the server (no KeyboardInterrupt traceback from it).
            start_new_session=True,
        )
        self.exit_codes: dict[int, int] = {}
        self._buffer = ""
        try:
            ready = self._read_message(timeout=START_TIMEOUT_S)
        except BaseException:  # a Ctrl-C while the server imports: it must not outlive the controller
            self.close()
            raise
        if ready is None or ready.get("ready") is not True:
            self.close()
            raise RuntimeError("the fork server did not start")

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        while "\n" not in self._buffer:
            remaining = max(0.0, end - time.monotonic())
            readable, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536).decode()
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split("\n", 1)
        return json.loads(line)

    def collect(self) -> None:
        """Read every pending exit report."""
        while (message := self._safe_read()) is not None:
            if "exited" in message:
                self.exit_codes[message["exited"]] = message["code"]

    def _safe_read(self) -> dict[str, Any] | None:
        try:
            return self._read_message(timeout=0)
        except (OSError, ValueError):  # the channel closed with the server
            return None

    def spawn(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: str) -> ForkedProcess:
        assert self.proc.stdin is not None
        request = {"argv": argv, "env": env, "log": str(log_path), "cwd": cwd}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        while True:
            message = self._read_message(timeout=60)
            if message is None:
                raise RuntimeError("the fork server stopped answering")
            if "exited" in message:
                self.exit_codes[message["exited"]] = message["code"]
            elif "pid" in message:
                return ForkedProcess(self, message["pid"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---- the server process ------------------------------------------------------------------------------


_channel_fd: int | None = None  # the server's protocol channel; a child closes its copy


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the phase process, run the command, exit with its code."""
    code = 1
    try:
        if _channel_fd is not None:
            os.close(_channel_fd)
        os.setsid()  # its own process group, as a pod: killpg reaches it and its children
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threads = os.environ.get("OMP_NUM_THREADS")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        sys.argv = request["argv"]
        try:
            # `python -m xstilts` by module name: the backends layer never imports the CLI above it
            runpy.run_module("xstilts", run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    # The backend reads this process's stdout as the protocol channel: keep a private copy of it and point
    # fd 1 at stderr, so whatever the preloaded libraries print (DeepSpeed logs to stdout on import) cannot
    # corrupt the channel.
    global _channel_fd
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the controller decides what a Ctrl-C stops
    out = os.fdopen(os.dup(1), "w", buffering=1)
    _channel_fd = out.fileno()
    os.dup2(2, 1)
    for module in PRELOAD:
        try:
            __import__(module)
        except ImportError:  # a module another transformers version names differently: imported on use
            pass
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    stdin = sys.stdin.buffer
    buffer = b""
    children: set[int] = set()
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.1)
        if readable:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                break  # the backend went away; running phases carry on (setsid)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                pid = os.fork()
                if pid == 0:
                    _child(json.loads(line))
                children.add(pid)
                out.write(json.dumps({"pid": pid}) + "\n")
                out.flush()
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                code = os.waitstatus_to_exitcode(status)
                out.write(json.dumps({"exited": pid, "code": code}) + "\n")
                out.flush()


def main() -> None:
    try:
        serve()
    except BrokenPipeError:
        # The backend that reads the channel is gone (its controller was killed): phases already started
        # carry on in their own sessions, and nobody is left to tell anything to.
        os._exit(0)


if __name__ == "__main__":
    main()

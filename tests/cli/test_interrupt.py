"""Ctrl-C at a real terminal (a pseudo-terminal): the running phases stop at a checkpoint, the command
says how to resume and exits 130, nothing is left running, and a second Ctrl-C stops at once."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.sweeps import micro, write

pytestmark = pytest.mark.xdist_group("interrupt")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except FileNotFoundError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class Terminal:
    """`xstilts ARGS` on a pseudo-terminal: what it printed, Ctrl-C typed at it, its exit status."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100", "TERM": "xterm"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pseudo-terminal is its controlling terminal
            # As a shell at a terminal does: a test run started in the background inherits SIGINT ignored.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.chdir(REPO)
            os.execve(sys.executable, [sys.executable, "-m", "xstilts", *args], env)
        self.output = b""
        self.status: int | None = None

    def read(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if not readable:
                return
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the other side closed (the process ended)
                return
            if not chunk:
                return
            self.output += chunk

    def text(self) -> str:
        return ANSI.sub("", self.output.decode("utf-8", "replace"))

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def wait(self, deadline: float) -> int:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            self.read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.read(0.2)
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        os.kill(self.pid, 9)
        raise AssertionError(f"the command did not exit:\n{self.text()}")


def _until(predicate, deadline: float, terminal: Terminal, what: str) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        terminal.read(0.3)
        if predicate():
            return
    os.kill(terminal.pid, 9)
    raise AssertionError(f"timed out waiting for {what}:\n{terminal.text()}")


def _long_sweep(tmp_path: Path) -> Path:
    sweep = micro("interrupt", targets=["pawsx"])
    sweep["training"].update({"max_steps": 100000, "checkpoint_every": 5})
    return write(tmp_path, sweep)


def _training_started(logs: Path) -> bool:
    return any('"event": "step"' in p.read_text(errors="replace") for p in logs.glob("*.log"))


def _start_and_reach_training(tmp_path: Path) -> tuple[Terminal, set[int]]:
    store = tmp_path / "store"
    terminal = Terminal("sweep", "submit", str(_long_sweep(tmp_path)), "--store", str(store), "--no-report")
    logs = store / "_local" / "logs"
    _until(lambda: _training_started(logs), 600, terminal, "the intermediate phase to train")
    processes = _descendants(terminal.pid)
    assert processes, "the controller runs the phase in a child process"
    return terminal, processes


def test_ctrl_c_checkpoints_running_phases_and_exits_130(tmp_path: Path):
    terminal, processes = _start_and_reach_training(tmp_path)
    terminal.ctrl_c()
    assert terminal.wait(300) == 130
    text = terminal.text()
    stopping = re.search(r"interrupted: stopping (\d+) running phases? at a checkpoint", text)
    assert stopping, text
    resume = rf"interrupted: {stopping[1]} phases? checkpointed; run the same command to resume: xstilts "
    assert re.search(resume, text), text
    assert "Traceback" not in text and "TimeoutExpired" not in text and "KeyboardInterrupt" not in text
    end = time.monotonic() + 30
    while time.monotonic() < end and any(_alive(p) for p in processes):
        time.sleep(0.2)
    assert not [p for p in processes if _alive(p)], "no phase process or fork server outlives the command"
    checkpoints = list((tmp_path / "store").rglob("checkpoint*"))
    assert checkpoints, "the interrupted phase saved a checkpoint to resume from"
    # The live display said what was starting, and gave a whole-sweep ETA once phases had rates.
    assert "Starting encoder/tiny@" in text and "sweep ETA " in text, text

    # The same command resumes: the display says from which step.
    again = Terminal(
        "sweep", "submit", str(tmp_path / "sweep.yaml"), "--store", str(tmp_path / "store"), "--no-report"
    )
    _until(lambda: "resumed from step" in again.text(), 600, again, "the resumed phase in the display")
    again.ctrl_c()
    assert again.wait(300) == 130


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def test_second_ctrl_c_stops_at_once(tmp_path: Path):
    terminal, processes = _start_and_reach_training(tmp_path)
    # The phase is slow to reach its checkpoint (frozen here), so the second Ctrl-C surely lands while
    # the command waits for it. The phases are the fork server's children (or the command's own, when
    # it runs them as plain subprocesses).
    phases = {p for p in processes if _parent(p) != terminal.pid} or processes
    for pid in phases:
        os.kill(pid, signal.SIGSTOP)
    terminal.ctrl_c()
    _until(lambda: "Ctrl-C again to stop at once" in terminal.text(), 60, terminal, "the first message")
    terminal.ctrl_c()
    assert terminal.wait(120) == 130
    text = terminal.text()
    assert re.search(r"interrupted again: stopped \d+ phases? at once; they resume from", text), text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    end = time.monotonic() + 30
    while time.monotonic() < end and any(_alive(p) for p in processes):
        time.sleep(0.2)
    assert not [p for p in processes if _alive(p)], "nothing outlives the command"

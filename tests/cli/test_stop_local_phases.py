"""The Ctrl-C path of `sweep submit` on the local backend, against a runner that records what it is
asked: a Ctrl-C that lands while the command cleans up changes nothing (it still ends with exit 130,
not by SIGINT)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import typer

from xstilts.cli.sweep import _stop_local_phases
from xstilts.errors import EXIT_INTERRUPTED, EXIT_PREEMPTED


@pytest.fixture(autouse=True)
def _restore_sigint() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


class CtrlCWhileClosing:
    """Two running phases; `close` is where the user's next Ctrl-C lands."""

    def __init__(self, second_ctrl_c_while_waiting: bool = False):
        self.second_ctrl_c_while_waiting = second_ctrl_c_while_waiting
        self.killed: list[str] = []
        self.closed = 0

    def interrupt(self) -> list[str]:
        return ["a", "b"]

    def wait_stopped(self, addresses: list[str], timeout: float) -> dict[str, int | None]:
        if self.second_ctrl_c_while_waiting:
            raise KeyboardInterrupt
        return {address: EXIT_PREEMPTED for address in addresses}

    def kill_now(self, addresses: list[str]) -> None:
        self.killed += addresses

    def close(self) -> None:
        self.closed += 1
        os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_cleanup_after_the_checkpoints_still_exits_130(capsys: pytest.CaptureFixture[str]):
    runner = CtrlCWhileClosing()
    with pytest.raises(typer.Exit) as stopped:
        _stop_local_phases(runner, "xstilts sweep submit s.yaml")
    assert stopped.value.exit_code == EXIT_INTERRUPTED
    assert runner.closed == 1 and runner.killed == []
    assert "interrupted: 2 phases checkpointed; run the same command to resume" in capsys.readouterr().err


def test_ctrl_c_during_cleanup_after_a_second_ctrl_c_still_exits_130(capsys: pytest.CaptureFixture[str]):
    runner = CtrlCWhileClosing(second_ctrl_c_while_waiting=True)
    with pytest.raises(typer.Exit) as stopped:
        _stop_local_phases(runner, "xstilts sweep submit s.yaml")
    assert stopped.value.exit_code == EXIT_INTERRUPTED
    assert runner.killed == ["a", "b"] and runner.closed == 1
    assert "interrupted again: stopped 2 phases at once" in capsys.readouterr().err

"""Leases against every kind of store: the local filesystem, rclone's S3 server (which ignores
conditional writes: the settle-and-read-back fallback) and moto's (which honours them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from xstilts.errors import LeaseLostError
from xstilts.store import LocalStore, Store
from xstilts.store.lease import Lease, LeaseRecord, lease_key, live_holder

SETTLE = 0.3  # the fallback's settle time in these tests (loopback requests take milliseconds)


def test_which_stores_honour_conditional_writes(lease_store: Store, request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["lease_store"]
    assert lease_store.conditional_writes is {"local": True, "rclone": False, "moto": True}[kind]


def test_conditional_writes_create_once_and_replace_only_unchanged(lease_store: Store) -> None:
    if not lease_store.conditional_writes:
        # rclone: the headers are ignored; a plain write happens (and the lease's fallback takes over).
        assert lease_store.put_conditional("k", b"1", None) is not None
        assert lease_store.put_conditional("k", b"2", None) is not None
        assert lease_store.get_bytes("k") == b"2"
        return
    first = lease_store.put_conditional("k", b"1", None)
    assert first is not None
    assert lease_store.put_conditional("k", b"2", None) is None, "create-if-absent on an existing key"
    data, version = lease_store.read_versioned("k")  # type: ignore[misc]
    assert data == b"1" and version == first
    assert lease_store.put_conditional("k", b"3", "stale-version") is None
    second = lease_store.put_conditional("k", b"4", version)
    assert second is not None and lease_store.get_bytes("k") == b"4"
    assert lease_store.put_conditional("k", b"5", version) is None, "the old version no longer matches"


def test_a_held_lease_excludes_others_until_released(lease_store: Store) -> None:
    first = Lease(lease_store, "abc123abc123", owner="phase one", ttl=60, settle=SETTLE)
    second = Lease(lease_store, "abc123abc123", owner="phase one", ttl=60, settle=SETTLE)
    assert first.try_acquire() is None and first.held
    holder = second.try_acquire()
    assert holder is not None and holder.token == first.token and not second.held
    assert live_holder(lease_store, "abc123abc123") is not None
    first.release()
    assert not lease_store.exists(lease_key("abc123abc123"))
    assert second.try_acquire() is None and second.held
    second.release()


def test_an_unrenewed_lease_expires_and_is_taken_over(lease_store: Store) -> None:
    stale = Lease(lease_store, "0123456789ab", ttl=1, settle=SETTLE)
    assert stale.try_acquire() is None
    taker = Lease(lease_store, "0123456789ab", ttl=60, settle=SETTLE)
    deadline = time.monotonic() + 30
    while taker.try_acquire() is not None:
        assert time.monotonic() < deadline, "the expired lease was never taken over"
        time.sleep(0.1)
    with pytest.raises(LeaseLostError, match="taken over"):
        stale.verify()
    with pytest.raises(LeaseLostError):
        stale.renew()
    stale.release()  # gives up nothing: the lease is the taker's
    taker.verify()
    taker.release()


def test_renewal_keeps_a_lease_alive_past_its_ttl(lease_store: Store) -> None:
    held = Lease(lease_store, "feedfeedfeed", ttl=1.2, settle=SETTLE)
    assert held.try_acquire() is None
    held.keep_renewed()
    try:
        other = Lease(lease_store, "feedfeedfeed", ttl=60, settle=SETTLE)
        end = time.monotonic() + 3 * held.ttl
        while time.monotonic() < end:
            assert other.try_acquire() is not None, "a renewed lease was taken over"
            time.sleep(0.2)
        held.verify()
    finally:
        held.release()
    assert not lease_store.exists(lease_key("feedfeedfeed"))


def test_racing_runners_get_one_lease(lease_store: Store) -> None:
    leases = [Lease(lease_store, "aaaaaaaaaaaa", ttl=60, settle=SETTLE) for _ in range(4)]
    start = threading.Barrier(len(leases))
    results: list[LeaseRecord | None] = [None] * len(leases)

    def race(i: int) -> None:
        start.wait()
        results[i] = leases[i].try_acquire()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(leases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [lease for lease in leases if lease.held]
    assert len(winners) == 1, f"{len(winners)} runners hold the lease"
    winners[0].verify()
    for lease in leases:
        if lease is not winners[0]:
            with pytest.raises(LeaseLostError):
                lease.verify()


def test_a_dead_holder_on_this_machine_is_taken_over_at_once(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    code = (
        "import sys, time; from xstilts.store import LocalStore; from xstilts.store.lease import Lease; "
        "lease = Lease(LocalStore(sys.argv[1]), 'bbbbbbbbbbbb', ttl=3600); "
        "assert lease.try_acquire() is None; "
        "print('held', flush=True); time.sleep(3600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "store")], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert Lease(store, "bbbbbbbbbbbb", ttl=60).try_acquire() is not None, "a live holder keeps it"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    finally:
        if holder.poll() is None:
            holder.kill()
    taker = Lease(store, "bbbbbbbbbbbb", ttl=60)
    assert taker.try_acquire() is None, "a lease of a dead process on this machine is stale at once"
    taker.release()


def test_a_damaged_lease_object_counts_as_expired(lease_store: Store) -> None:
    lease_store.put_bytes(lease_key("cccccccccccc"), b"not a lease")
    taker = Lease(lease_store, "cccccccccccc", ttl=60, settle=SETTLE)
    assert taker.try_acquire() is None
    taker.release()


def test_a_runner_whose_lease_was_taken_over_commits_no_checkpoint(tmp_path: Path) -> None:
    from xstilts.train.checkpoint import Checkpointer

    store = LocalStore(tmp_path / "store")
    mine = Lease(store, "dddddddddddd", ttl=1)
    assert mine.try_acquire() is None
    mine.keep_renewed()
    try:
        mine._stop.set()  # stalls: the renewals stop, as in a long pause of the process
        deadline = time.monotonic() + 30
        taker = Lease(store, "dddddddddddd", ttl=60)
        while taker.try_acquire() is not None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        checkpointer = Checkpointer(store, "phases/target/dddddddddddd", tmp_path / "staging")
        checkpointer.local_dir(2).mkdir(parents=True)
        with pytest.raises(LeaseLostError):
            checkpointer.commit(2, {"step": 2})
        assert checkpointer.complete_steps() == []
    finally:
        mine.release()
        taker.release()

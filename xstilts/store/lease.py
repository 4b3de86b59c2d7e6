"""Leases: at most one runner per phase, on any host, against any store.

Before a phase runs, its runner takes the lease object `leases/<address>.json` in the store, renews it
while the phase runs (every quarter of its time to live) and deletes it at exit. Another runner that
finds a live lease waits (for the phase's `_COMPLETE`, or for the lease to end); a lease that was not
renewed within its time to live, or whose holder is a dead process on this very machine, is taken over.

Atomicity comes from the store's conditional writes: create-if-absent (`If-None-Match: *` on S3) and
replace-if-unchanged (`If-Match: <ETag>`). Where the endpoint ignores them (rclone's `serve s3`, older
S3 look-alikes: `Store.conditional_writes` is False), the fallback is write, wait `XSTILTS_LEASE_SETTLE_S`
seconds, read back: of two runners that both wrote, the one whose write landed last keeps the lease and
the other sees a foreign token and backs off. That is safe when the store is strongly consistent (AWS S3,
MinIO, Ceph, rclone over a local disk are) and the two writes land less than the settle time apart.

Expiry compares `expires_at` (the holder's wall clock) with the reader's wall clock: hosts that share a
store must keep their clocks within a small fraction of the time to live (NTP does). Settings:

| variable | default | meaning |
|---|---|---|
| `XSTILTS_LEASE_TTL_S` | 60 | seconds a lease lives without renewal |
| `XSTILTS_LEASE_SETTLE_S` | 2 | fallback only: seconds between writing a lease and reading it back |
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError, LeaseLostError, StoreError
from xstilts.store.base import Store, join_key

LEASE_PREFIX = "leases"
DEFAULT_TTL_S = 60.0
DEFAULT_SETTLE_S = 2.0


def lease_key(name: str) -> str:
    return join_key(LEASE_PREFIX, f"{name}.json")


def _env_seconds(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number", fix=f"set {name} to seconds, e.g. {default:g}"
        ) from None
    if value < minimum:
        raise ConfigError(f"{name}={raw} is too small", fix=f"set {name} to at least {minimum:g} seconds")
    return value


def lease_ttl() -> float:
    return _env_seconds("XSTILTS_LEASE_TTL_S", DEFAULT_TTL_S, 1.0)


def settle_time() -> float:
    return _env_seconds("XSTILTS_LEASE_SETTLE_S", DEFAULT_SETTLE_S, 0.0)


# ---- who holds it ----------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> int:
    """The process's start time in clock ticks since boot (0 when unknown): tells a pid from its reuse."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return 0


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


@dataclass(frozen=True)
class Holder:
    """A process, named well enough to tell on its own machine whether it still runs."""

    host: str
    pid: int
    boot: str  # the kernel's boot id: the same host name after a reboot is another machine
    pidns: int  # the pid namespace: pods on one node share the boot id but not their pids
    start: int  # start time in ticks since boot

    @classmethod
    def current(cls) -> Holder:
        pid = os.getpid()
        return cls(
            host=platform.node(),
            pid=pid,
            boot=_read("/proc/sys/kernel/random/boot_id"),
            pidns=_pid_namespace(),
            start=_process_start(pid),
        )

    def on_this_machine(self) -> bool:
        here = Holder.current()
        return bool(self.boot) and (self.host, self.boot, self.pidns) == (here.host, here.boot, here.pidns)

    def is_dead(self) -> bool:
        """True only when this machine can tell for sure that the process is gone."""
        if not self.on_this_machine():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return bool(self.start) and _process_start(self.pid) != self.start


@dataclass
class LeaseRecord:
    token: str
    owner: str  # what the lease is for, in words (the phase's name)
    holder: Holder
    acquired_at: float
    renewed_at: float
    expires_at: float
    ttl_s: float

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> LeaseRecord | None:
        """The record, or None for an object that is not a lease (damaged: treated as expired)."""
        try:
            raw = json.loads(data.decode("utf-8"))
            raw["holder"] = Holder(**raw["holder"])
            record = cls(**raw)
            float(record.expires_at)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, AttributeError):
            return None
        return record

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) > self.expires_at

    def describe(self) -> str:
        until = time.strftime("%H:%M:%S", time.localtime(self.expires_at))
        return f"{self.holder.host} pid {self.holder.pid} (lease until {until})"


def live_holder(store: Store, name: str) -> LeaseRecord | None:
    """The lease on `name` if someone holds it now (not expired, not a dead process here), else None."""
    found = store.read_versioned(lease_key(name))
    if found is None:
        return None
    record = LeaseRecord.parse(found[0])
    if record is None or record.expired() or record.holder.is_dead():
        return None
    return record


# ---- taking, keeping, giving up ----------------------------------------------------------------------

_active: Lease | None = None  # the lease of the phase this process runs (checked before each commit)


def verify_active() -> None:
    """Raise LeaseLostError if this process's phase lease was taken over; no-op without one."""
    if _active is not None:
        _active.verify()


class Lease:
    def __init__(
        self,
        store: Store,
        name: str,
        *,
        owner: str = "",
        ttl: float | None = None,
        settle: float | None = None,
    ):
        self.store = store
        self.name = name
        self.key = lease_key(name)
        self.owner = owner or name
        self.ttl = ttl if ttl is not None else lease_ttl()
        self.settle = settle if settle is not None else settle_time()
        self.token = secrets.token_hex(12)
        self.held = False
        self.lost = False
        self._version: str | None = None
        self._acquired_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one attempt ---------------------------------------------------------------------------------

    def _record(self) -> LeaseRecord:
        now = time.time()
        return LeaseRecord(
            token=self.token,
            owner=self.owner,
            holder=Holder.current(),
            acquired_at=self._acquired_at or now,
            renewed_at=now,
            expires_at=now + self.ttl,
            ttl_s=self.ttl,
        )

    def try_acquire(self) -> LeaseRecord | None:
        """One attempt. None when this runner holds the lease now, else the live holder's record."""
        found = self.store.read_versioned(self.key)
        current = LeaseRecord.parse(found[0]) if found else None
        if current is not None and current.token == self.token:
            self.held, self._version = True, found[1] if found else None
            return None
        if current is not None and not current.expired() and not current.holder.is_dead():
            return current
        # Absent, expired, damaged or held by a dead process here: create it, or replace exactly that one.
        self._acquired_at = time.time()
        version = self.store.put_conditional(self.key, self._record().to_bytes(), found[1] if found else None)
        if version is None:
            return self._holder_now()
        if not self.store.conditional_writes:
            # Fallback: the write may have raced another; the last write to land wins.
            time.sleep(self.settle)
            back = self.store.read_versioned(self.key)
            record = LeaseRecord.parse(back[0]) if back else None
            if record is None or record.token != self.token:
                return record if record is not None else self._holder_now()
            version = back[1] if back else version
        self.held, self.lost, self._version = True, False, version
        return None

    def _holder_now(self) -> LeaseRecord | None:
        holder = live_holder(self.store, self.name)
        if holder is None:
            # It changed under us and is not live (released, or expired again): report a placeholder
            # holder so that the caller tries again after its poll interval.
            return LeaseRecord("", self.owner, Holder("?", 0, "", 0, 0), 0.0, 0.0, 0.0, 0.0)
        return holder

    def acquire(
        self,
        *,
        give_up: Callable[[], bool] = lambda: False,
        on_wait: Callable[[LeaseRecord], None] | None = None,
        poll: float | None = None,
    ) -> bool:
        """Take the lease, waiting while another runner holds it. Returns False (without the lease) as
        soon as `give_up()` is true (e.g. the phase was completed by the holder)."""
        interval = poll if poll is not None else max(0.5, min(5.0, self.ttl / 4))
        last_seen: str | None = None
        while True:
            holder = self.try_acquire()
            if holder is None:
                return True
            if on_wait is not None and holder.token and holder.token != last_seen:
                on_wait(holder)
                last_seen = holder.token
            if give_up():
                return False
            time.sleep(interval)

    # -- while held ------------------------------------------------------------------------------------

    def renew(self) -> None:
        """Extend the lease; LeaseLostError if another runner took it over meanwhile."""
        if self.lost:
            raise LeaseLostError(self._lost_message())
        if self.store.conditional_writes:
            version = self.store.put_conditional(self.key, self._record().to_bytes(), self._version)
            if version is not None:
                self._version = version
                return
        found = self.store.read_versioned(self.key)
        record = LeaseRecord.parse(found[0]) if found else None
        if found is not None and (record is None or record.token != self.token):
            self._mark_lost(record)
        if found is not None:
            self._version = found[1]  # ours, at another version (an earlier retry landed): write again
        version = self.store.put_conditional(
            self.key, self._record().to_bytes(), None if found is None else self._version
        )
        if version is None and self.store.conditional_writes:
            self._mark_lost(None)
        self._version = version

    def verify(self) -> None:
        """Raise LeaseLostError unless the store still names this runner as the holder."""
        if self.lost:
            raise LeaseLostError(self._lost_message())
        found = self.store.read_versioned(self.key)
        record = LeaseRecord.parse(found[0]) if found else None
        if record is None or record.token != self.token:
            self._mark_lost(record)

    def _mark_lost(self, record: LeaseRecord | None) -> None:
        self.lost, self.held = True, False
        raise LeaseLostError(self._lost_message(record))

    def _lost_message(self, record: LeaseRecord | None = None) -> str:
        who = f" by {record.describe()}" if record is not None else ""
        return (
            f"the lease on {self.owner} was taken over{who} after it went unrenewed for {self.ttl:.0f} s "
            "(XSTILTS_LEASE_TTL_S); this runner stops without committing"
        )

    def release(self) -> None:
        """Delete the lease if this runner still holds it (best effort: an unreachable store lets it
        expire on its own)."""
        self._stop_renewing()
        if not self.held:
            return
        self.held = False
        try:
            found = self.store.read_versioned(self.key)
            record = LeaseRecord.parse(found[0]) if found else None
            if record is not None and record.token == self.token:
                self.store.delete(self.key)
        except StoreError as exc:
            sys.stderr.write(f"warning: could not give up the lease {self.key}: {exc}\n")

    # -- the renewing thread ----------------------------------------------------------------------------

    def keep_renewed(self) -> Lease:
        """Renew in a daemon thread until `release()`; this process's commits check the lease."""
        global _active
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        _active = self
        return self

    def _renew_loop(self) -> None:
        warned = False
        while not self._stop.wait(self.ttl / 4):
            try:
                self.renew()
                warned = False
            except LeaseLostError as exc:
                sys.stderr.write(f"warning: {exc}\n")
                return
            except (StoreError, OSError) as exc:
                if not warned:
                    sys.stderr.write(f"warning: could not renew the lease {self.key}: {exc}\n")
                    warned = True

    def _stop_renewing(self) -> None:
        global _active
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        if _active is self:
            _active = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: Any) -> None:
        self.release()

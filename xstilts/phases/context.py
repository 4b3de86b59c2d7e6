"""What a running phase has at hand: its spec, the store, a staging directory, upstream models
(downloaded once into a local cache keyed by address and verified against their checksums), the
progress log, and a log file that is copied into the store periodically and at exit."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from xstilts.errors import PhaseFailedError, UntrustedContentError
from xstilts.plan.phase import Phase, phase_prefix, spec_key
from xstilts.store import Store, join_key
from xstilts.store.complete import fetch_complete, is_complete
from xstilts.train.progress import ProgressLog

LOG_NAME = "phase.log"


def cache_root() -> Path:
    return Path(os.environ.get("XSTILTS_CACHE", Path.home() / ".cache" / "xstilts"))


def staging_root() -> Path:
    env = os.environ.get("XSTILTS_STAGING")
    return Path(env) if env else Path(tempfile.gettempdir()) / "xstilts-staging"


def read_phase(store: Store, address: str) -> Phase:
    """The phase spec stored under `address`, trusted only if its content hashes to that address: an
    edited spec (another language list, another input) would otherwise commit its results under the
    original phase's name. Raises UntrustedContentError (exit 3) on any mismatch."""
    key = spec_key(address)  # validates the address before it names anything
    try:
        text = store.get_text(key)
    except FileNotFoundError:
        raise PhaseFailedError(
            f"no phase spec {key} in {store.describe()}: submit the sweep to this store first "
            "(`xstilts sweep submit FILE --store URI`)"
        ) from None
    where = f"{store.describe()}/{key}"
    fix = "delete it and submit the sweep again, which writes it anew"
    try:
        phase = Phase.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UntrustedContentError(
            f"{where} is not a valid phase spec (field '{field}': {first['msg']}); it is not used "
            f"(fix: {fix})"
        ) from None
    computed = phase.computed_address()
    if phase.address != address or computed != address:
        raise UntrustedContentError(
            f"{where} does not match its address: its content hashes to {computed} and names itself "
            f"{phase.address}, not {address}; the spec was edited or damaged and is not used (fix: {fix})"
        )
    return phase


class _Tee:
    """Writes to the original stream and to the phase's log file."""

    def __init__(self, stream: TextIO, log: TextIO):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


@dataclass
class PhaseContext:
    store: Store
    phase: Phase
    staging: Path
    progress: ProgressLog
    out: Path = field(init=False)
    log_path: Path = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _uploader: threading.Thread | None = field(default=None, init=False)
    _streams: tuple[Any, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.out = self.staging / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.staging / "logs" / LOG_NAME

    @property
    def config(self) -> Any:
        """The phase's config: the model of its kind (plan/configs.py), read by attribute."""
        return self.phase.config

    def upstream(self, role: str) -> Phase:
        return read_phase(self.store, self.phase.inputs[role])

    def upstream_model(self, role: str = "encoder") -> Path:
        """A verified local copy of an upstream phase's `model/` (cached by address)."""
        upstream = self.upstream(role)
        prefix = phase_prefix(upstream.kind, upstream.address)
        target = cache_root() / "models" / upstream.address
        fetch_complete(self.store, prefix, target, only="model")
        return target / "model"

    def inputs_complete(self) -> list[str]:
        """Names of upstream phases that are not complete."""
        missing = []
        for address in self.phase.inputs.values():
            upstream = read_phase(self.store, address)
            if not is_complete(self.store, phase_prefix(upstream.kind, address)):
                missing.append(upstream.name)
        return missing

    # ---- logs ----------------------------------------------------------------------------------
    def start_logs(self, interval: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop_logs
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, log)  # type: ignore[assignment]
        sys.stderr = _Tee(sys.stderr, log)  # type: ignore[assignment]
        self.progress.stream = sys.stdout

        def upload_periodically() -> None:
            while not self._stop.wait(interval):
                self.upload_log()

        self._uploader = threading.Thread(target=upload_periodically, daemon=True)
        self._uploader.start()

    def upload_log(self) -> None:
        try:
            sys.stdout.flush()
            if self.log_path.is_file():
                self.store.put_file(self.log_path, join_key(self.phase.prefix, "logs", LOG_NAME))
        except Exception as exc:  # a log copy must never kill training
            if self._streams:
                self._streams[1].write(f"warning: could not copy the log to the store: {exc}\n")

    def stop_logs(self) -> None:
        self._stop.set()
        self.upload_log()
        if self._streams:
            log = sys.stdout.log  # type: ignore[attr-defined]
            sys.stdout, sys.stderr = self._streams
            self.progress.stream = sys.stdout
            log.close()
            self._streams = None

    def write_json(self, relative: str, data: Any) -> None:
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str, ensure_ascii=False))

"""Exceptions that the CLI turns into one-line messages and distinct exit codes (DESIGN.md section 6)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
# Reserved for a phase killed by SIGTERM after saving a checkpoint: retryable, never a config error.
EXIT_PREEMPTED = 143


class XstiltsError(Exception):
    """Base class: carries the exit code the CLI uses."""

    exit_code = EXIT_RUN_FAILED


class ConfigError(XstiltsError):
    """Invalid sweep file, task name, language or setting. The message names file, field and fix."""

    exit_code = EXIT_CONFIG

    def __init__(
        self, message: str, *, file: str | None = None, field: str | None = None, fix: str | None = None
    ):
        self.file = file
        self.field = field
        self.fix = fix
        parts = []
        if file:
            parts.append(str(file))
        if field:
            parts.append(f"field '{field}'")
        prefix = ": ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        if fix:
            text = f"{text} (fix: {fix})"
        super().__init__(text)


class StoreError(XstiltsError):
    """The artifact store refused or could not be reached."""


class CorruptArtifactError(StoreError):
    """A stored file does not match the checksum its _COMPLETE marker records."""


class PhaseFailedError(XstiltsError):
    """A phase (or the sweep) failed."""

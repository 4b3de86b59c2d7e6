"""Exceptions that the CLI turns into one-line messages and distinct exit codes (docs/architecture.md)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
# Reserved for a phase killed by SIGTERM after saving a checkpoint: retryable, never a config error.
EXIT_PREEMPTED = 143
# The command was stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


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
    """The artifact store refused or could not be reached. `transient` errors (the endpoint unreachable,
    timeouts, throttling, 5xx) are worth retrying for a while; the others (credentials, a missing bucket,
    a full or read-only disk) are not."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class KeyOutsideStoreError(StoreError, ValueError):
    """A key that would resolve outside the store's root (`..`, an absolute path, a symlink out)."""


class UntrustedContentError(XstiltsError):
    """Something in the store is not what xstilts wrote there: a phase spec whose content does not hash
    to its address, or a checkpoint holding a pickle. Never used; retrying cannot help (exit 3)."""

    exit_code = EXIT_CONFIG


class LeaseHeldError(XstiltsError):
    """Another runner holds the phase's lease (it is running elsewhere)."""


class LeaseLostError(XstiltsError):
    """This runner's lease was taken over (it was not renewed in time): its outputs must not be committed."""


class CorruptArtifactError(StoreError):
    """A stored file does not match the checksum its _COMPLETE marker records."""


class InvalidAddressError(ConfigError):
    """Text that is not a content address (12 lowercase hex digits) where one is required."""


class UsageError(XstiltsError):
    """A command-line value that names nothing or more than one thing (a phase, a preset)."""

    exit_code = EXIT_USAGE


class PhaseFailedError(XstiltsError):
    """A phase (or the sweep) failed."""


# A write that failed because of the disk, not the program: one line naming the path and the fix.
_DISK_PROBLEMS = {
    "ENOSPC": ("no space left on the device", "free space on the file system that holds {where}"),
    "EDQUOT": ("disk quota exceeded", "free space or raise the quota of the file system that holds {where}"),
    "EROFS": ("the file system is read-only", "remount {where} read-write or use a writable location"),
    "EACCES": ("permission denied", "make {where} writable for this user or use another location"),
    "EPERM": ("operation not permitted", "make {where} writable for this user or use another location"),
}


def disk_problem(
    exc: BaseException, where: str | None = None, *, action: str = "write", path: str | None = None
) -> str | None:
    """A one-line message for an OSError caused by the disk (full, read-only, no permission), naming the
    path (`path`, else the error's file name) and the fix (about `where`); None for any other error."""
    import errno

    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    name = errno.errorcode.get(exc.errno)
    if name not in _DISK_PROBLEMS:
        return None
    problem, fix = _DISK_PROBLEMS[name]
    path = path or exc.filename or where or "?"
    fix = fix.format(where=where or path)
    return (
        f"cannot {action} {path}: {problem} (fix: {fix}, then run the same command again: "
        "complete phases are kept)"
    )


class DiskError(StoreError):
    """A local write failed for a reason of the disk's (full, read-only, no permission)."""

"""The completion protocol: a prefix counts as done only when its `_COMPLETE` manifest is present.

The manifest lists every file with its size and sha256 and is written last, after every file is
uploaded, so a crash mid-upload leaves no marker and readers ignore the prefix. Downloads verify each
file against the manifest, so a corrupted object is detected and never used.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from xstilts.errors import CorruptArtifactError
from xstilts.store.base import Store, join_key

MARKER = "_COMPLETE"


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the committed prefix, '/'-separated
    size: int
    sha256: str


def sha256_file(path: Path, chunk_size: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def scan_dir(local_dir: Path, exclude_prefixes: tuple[str, ...] = ()) -> list[FileEntry]:
    """Size and sha256 of every file under `local_dir` (sorted, relative paths)."""
    entries = []
    for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
        rel = path.relative_to(local_dir).as_posix()
        if rel == MARKER or any(rel.startswith(x) for x in exclude_prefixes):
            continue
        entries.append(FileEntry(path=rel, size=path.stat().st_size, sha256=sha256_file(path)))
    return entries


def commit_dir(
    store: Store,
    local_dir: Path,
    prefix: str,
    *,
    exclude_prefixes: tuple[str, ...] = (),
    metadata: dict | None = None,
) -> list[FileEntry]:
    """Upload every file under `local_dir` to `prefix`, then write the `_COMPLETE` manifest last."""
    entries = scan_dir(local_dir, exclude_prefixes)
    store.put_files([(Path(local_dir) / e.path, join_key(prefix, e.path)) for e in entries])
    manifest = {
        "files": [asdict(e) for e in entries],
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **({"metadata": metadata} if metadata else {}),
    }
    store.put_text(join_key(prefix, MARKER), json.dumps(manifest, indent=1, sort_keys=True))
    return entries


def read_manifest(store: Store, prefix: str) -> list[FileEntry] | None:
    """The manifest's file list, or None if the prefix is not complete."""
    try:
        raw = store.get_text(join_key(prefix, MARKER))
    except FileNotFoundError:
        return None
    data = json.loads(raw)
    return [FileEntry(**e) for e in data["files"]]


def is_complete(store: Store, prefix: str) -> bool:
    return store.exists(join_key(prefix, MARKER))


def complete_prefixes(store: Store, prefixes: list[str]) -> set[str]:
    """Which of `prefixes` are complete, checked together (on S3: one listing instead of a HEAD each)."""
    markers = {join_key(prefix, MARKER): prefix for prefix in prefixes}
    return {markers[key] for key in store.existing(markers)}


def fetch_complete(store: Store, prefix: str, local_dir: Path, *, only: str | None = None) -> Path:
    """Download a complete prefix (or its sub-path `only`) to `local_dir`, verifying every checksum.

    A local copy that already matches the manifest is reused, so an upstream model is downloaded once.
    Raises FileNotFoundError if the prefix has no marker and CorruptArtifactError on a mismatch.
    """
    entries = read_manifest(store, prefix)
    if entries is None:
        raise FileNotFoundError(f"{store.describe()}/{prefix} has no {MARKER} marker")
    if only:
        entries = [e for e in entries if e.path == only or e.path.startswith(only.rstrip("/") + "/")]
    local_dir = Path(local_dir)
    todo = []
    for entry in entries:
        target = local_dir / entry.path
        if target.is_file() and target.stat().st_size == entry.size and sha256_file(target) == entry.sha256:
            continue
        todo.append(entry)
    store.get_files([(join_key(prefix, e.path), local_dir / e.path) for e in todo])
    for entry in todo:
        target = local_dir / entry.path
        actual = sha256_file(target)
        if actual != entry.sha256 or target.stat().st_size != entry.size:
            target.unlink(missing_ok=True)
            raise CorruptArtifactError(
                f"{store.describe()}/{join_key(prefix, entry.path)} does not match its {MARKER} checksum "
                f"(expected sha256 {entry.sha256[:12]}..., got {actual[:12]}...); the object is corrupted: "
                f"delete the prefix and re-run the phase"
            )
    return local_dir

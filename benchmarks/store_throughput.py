"""Store throughput on a checkpoint-shaped directory, against a plain copy on the same disk.

    .venv/bin/python benchmarks/store_throughput.py --size-mb 1024

Builds a directory shaped like a saved checkpoint (a few large safetensors-like random files and many
small JSON files), then measures, in one run, on the same disk, with warm caches for every step alike:

- `shutil.copytree` of the directory: the baseline every ratio is taken against;
- sha256 of every file: what `commit_dir` / `fetch_complete` add on top of moving the bytes;
- LocalStore and S3Store (against a loopback `rclone serve s3`): `commit_dir` (upload) and
  `fetch_complete` (download, checksums verified), and for S3 the bare `put_files` / `get_files`;
- a reference client: `rclone copy` up and down against the same server, to show what the server
  itself allows on this machine.

Each step runs `--repeat` times; the median is reported, with the CPU seconds the client (this process
or the rclone client) and the server spent. S3 settings come from `XSTILTS_S3_PART_SIZE_MB` and
`XSTILTS_S3_CONCURRENCY` as in production. Figures go to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xstilts.store import LocalStore, Store
from xstilts.store.complete import commit_dir, fetch_complete, scan_dir
from xstilts.store.s3 import S3Settings, S3Store
from xstilts.testing.s3_server import S3ServerInfo, env_for, find_rclone, s3_server

MiB = 1024 * 1024


@dataclass
class Result:
    name: str
    seconds: float  # median over the repeats
    megabytes: float
    client_cpu: float  # CPU seconds of the client (median), this process or a child client
    server_cpu: float | None = None  # CPU seconds of the S3 server process (median)

    @property
    def rate(self) -> float:
        return self.megabytes / self.seconds


class CpuClock:
    """CPU seconds of this process plus its waited-for children, and of one other process (the server)."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid

    def read(self) -> tuple[float, float]:
        own = os.times()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = own.user + own.system + children.ru_utime + children.ru_stime
        return client, self._server()

    def _server(self) -> float:
        if self.server_pid is None:
            return 0.0
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    name: str,
    megabytes: float,
    action: Callable[[int], object],
    *,
    repeat: int,
    clock: CpuClock,
    cleanup: Callable[[int], object] | None = None,
) -> Result:
    """Run `action(i)` `repeat` times (cleanup between runs, untimed); the median of wall and CPU time."""
    walls, clients, servers = [], [], []
    for i in range(repeat):
        client0, server0 = clock.read()
        started = time.perf_counter()
        action(i)
        walls.append(time.perf_counter() - started)
        client1, server1 = clock.read()
        clients.append(client1 - client0)
        servers.append(server1 - server0)
        if cleanup is not None:
            cleanup(i)
    server = statistics.median(servers) if clock.server_pid is not None else None
    result = Result(name, statistics.median(walls), megabytes, statistics.median(clients), server)
    spread = ", ".join(f"{w:.2f}" for w in walls)
    print(f"  {name:<44} {result.rate:7.1f} MB/s  (runs: {spread} s)", file=sys.stderr, flush=True)
    return result


# -- the checkpoint ---------------------------------------------------------------------------------


def build_checkpoint(root: Path, size_mb: int, large_files: int, small_files: int, seed: int = 0) -> int:
    """Write `large_files` random `.safetensors` shards and `small_files` JSON files; return total bytes."""
    rng = random.Random(seed)
    small_total = 0
    for i in range(small_files):
        path = root / "checkpoints" / f"step-{i // 20:03d}" / f"state-{i:04d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        values = ", ".join(f"{rng.random():.6f}" for _ in range(200))
        text = f'{{"step": {i}, "values": [{values}]}}\n'
        path.write_text(text)
        small_total += len(text)
    per_file = max(1, (size_mb * MiB - small_total) // large_files)
    (root / "model").mkdir(parents=True, exist_ok=True)
    for i in range(large_files):
        write_random(root / "model" / f"model-{i + 1:05d}-of-{large_files:05d}.safetensors", per_file, rng)
    return small_total + per_file * large_files


def write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as handle:
        left = size
        while left > 0:
            chunk = min(left, 16 * MiB)
            handle.write(rng.randbytes(chunk))
            left -= chunk


# -- the steps --------------------------------------------------------------------------------------


def local_steps(src: Path, work: Path, mb: float, repeat: int) -> list[Result]:
    clock = CpuClock()
    copy = measure(
        "copy (shutil.copytree)",
        mb,
        lambda i: shutil.copytree(src, work / f"copy-{i}"),
        repeat=repeat,
        clock=clock,
        cleanup=lambda i: shutil.rmtree(work / f"copy-{i}"),
    )
    sha = measure("sha256 of every file (scan_dir)", mb, lambda i: scan_dir(src), repeat=repeat, clock=clock)
    store = LocalStore(work / "local-store")
    return [copy, sha, *store_steps("LocalStore", store, src, work, mb, repeat, clock)]


def store_steps(
    label: str, store: Store, src: Path, work: Path, mb: float, repeat: int, clock: CpuClock
) -> list[Result]:
    """commit_dir then fetch_complete, each `repeat` times on a fresh prefix / directory."""
    up = measure(
        f"{label} upload (commit_dir)",
        mb,
        lambda i: commit_dir(store, src, f"ckpt-{i}"),
        repeat=repeat,
        clock=clock,
    )
    down = measure(
        f"{label} download (fetch_complete)",
        mb,
        lambda i: fetch_complete(store, f"ckpt-{i}", work / f"fetched-{i}"),
        repeat=repeat,
        clock=clock,
        cleanup=lambda i: shutil.rmtree(work / f"fetched-{i}"),
    )
    for i in range(repeat):
        store.delete_prefix(f"ckpt-{i}")
    return [up, down]


def transfer_steps(
    store: S3Store, src: Path, work: Path, mb: float, repeat: int, clock: CpuClock
) -> list[Result]:
    """put_files / get_files alone: the transfer without the checksums of the completion protocol."""
    rels = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    up = measure(
        "S3Store put_files (no sha256)",
        mb,
        lambda i: store.put_files([(src / rel, f"raw-{i}/{rel}") for rel in rels]),
        repeat=repeat,
        clock=clock,
    )
    down = measure(
        "S3Store get_files (no sha256)",
        mb,
        lambda i: store.get_files([(f"raw-{i}/{rel}", work / f"raw-{i}" / rel) for rel in rels]),
        repeat=repeat,
        clock=clock,
        cleanup=lambda i: shutil.rmtree(work / f"raw-{i}"),
    )
    for i in range(repeat):
        store.delete_prefix(f"raw-{i}")
    return [up, down]


def rclone_steps(
    info: S3ServerInfo, bucket: str, src: Path, work: Path, mb: float, repeat: int
) -> list[Result]:
    """The same upload and download with rclone's own S3 client: what this server allows."""
    env = {
        **os.environ,
        "RCLONE_CONFIG": "/dev/null",
        "RCLONE_S3_PROVIDER": "Rclone",
        "RCLONE_S3_ENDPOINT": info.endpoint_url,
        "RCLONE_S3_ACCESS_KEY_ID": info.access_key,
        "RCLONE_S3_SECRET_ACCESS_KEY": info.secret_key,
        "RCLONE_S3_REGION": info.region,
    }

    def rclone(*args: str) -> None:
        subprocess.run([find_rclone(), "copy", *args], env=env, check=True, capture_output=True)

    clock = CpuClock(info._process.pid if info._process else None)
    up = measure(
        "reference: rclone copy up",
        mb,
        lambda i: rclone(str(src), f":s3:{bucket}/ref-{i}"),
        repeat=repeat,
        clock=clock,
    )
    down = measure(
        "reference: rclone copy down",
        mb,
        lambda i: rclone(f":s3:{bucket}/ref-{i}", str(work / f"ref-{i}")),
        repeat=repeat,
        clock=clock,
        cleanup=lambda i: shutil.rmtree(work / f"ref-{i}"),
    )
    return [up, down]


def s3_steps(
    src: Path, work: Path, mb: float, repeat: int, settings: S3Settings, reference: bool
) -> list[Result]:
    with s3_server(work / "s3-data") as info:
        os.environ.update(env_for(info))
        bucket = info.create_bucket()
        store = S3Store(bucket, "runs", settings=settings)
        clock = CpuClock(info._process.pid if info._process else None)
        results = store_steps("S3Store (rclone, loopback)", store, src, work, mb, repeat, clock)
        results += transfer_steps(store, src, work, mb, repeat, clock)
        if reference:
            results += rclone_steps(info, bucket, src, work, mb, repeat)
        return results


# -- report -----------------------------------------------------------------------------------------


def machine() -> str:
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    memory = free[1].split()[1] if len(free) > 1 else "?"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores (nproc), {memory} memory (free -h), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def report(results: list[Result], settings: S3Settings, files: int, mb: float, repeat: int) -> str:
    baseline = results[0]
    lines = [
        f"date: {datetime.date.today().isoformat()}; machine: {machine()}",
        f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}; "
        f"checkpoint: {mb:.0f} MiB in {files} files; median of {repeat} runs; "
        f"S3 part size {settings.part_size // MiB} MiB, concurrency {settings.concurrency}",
        "",
        "| step | seconds | MB/s | vs copy | client CPU s | server CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        server = f"{r.server_cpu:.2f}" if r.server_cpu is not None else "-"
        lines.append(
            f"| {r.name} | {r.seconds:.2f} | {r.rate:.0f} | {r.rate / baseline.rate:.2f} "
            f"| {r.client_cpu:.2f} | {server} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    work = Path(tempfile.mkdtemp(prefix="xstilts-bench-", dir=args.work_dir))
    try:
        src = work / "checkpoint"
        mb = build_checkpoint(src, args.size_mb, args.large_files, args.small_files) / MiB
        files = sum(1 for p in src.rglob("*") if p.is_file())
        print(f"checkpoint: {mb:.0f} MiB in {files} files under {work}", file=sys.stderr)
        print(f"load average (1 min) at the start: {os.getloadavg()[0]:.2f}", file=sys.stderr)
        settings = S3Settings.from_env()
        results = local_steps(src, work, mb, args.repeat)
        results += s3_steps(src, work, mb, args.repeat, settings, not args.no_reference)
        return report(results, settings, files, mb, args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="total size of the checkpoint (MiB)")
    parser.add_argument("--large-files", type=int, default=4, help="number of large safetensors-like shards")
    parser.add_argument("--small-files", type=int, default=400, help="number of small JSON files")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (the median is reported)")
    parser.add_argument("--no-reference", action="store_true", help="skip the rclone-client reference rows")
    parser.add_argument("--work-dir", default=None, help="where to build it (default: the temp directory)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    print(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()

"""`xstilts sweep ...`: plan, render, submit, status, logs, cancel."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from xstilts.backends.reconcile import BLOCKED, DONE, FAILED, Reconciler, write_specs
from xstilts.cli.common import Loaded, cluster_settings, find_phase, load, local_work_dir, make_backend
from xstilts.cli.display import SweepDisplay, counts_line, plan_table, status_table
from xstilts.cli.inventory import record_sweep
from xstilts.cli.logview import readable
from xstilts.cli.output import Output, OutputFormat, handle_errors, out, say
from xstilts.errors import EXIT_INTERRUPTED, EXIT_PREEMPTED, PhaseFailedError, UsageError, XstiltsError
from xstilts.spec.load import check_model_paths
from xstilts.store import DEFAULT_STORE, store_exists
from xstilts.store.complete import complete_prefixes, is_complete

app = typer.Typer(help="Plan, render, run and watch sweeps.", no_args_is_help=True)


class Backend(str, Enum):
    local = "local"
    kubernetes = "kubernetes"


FileArg = Annotated[Path, typer.Argument(help="sweep file (YAML)", show_default=False, metavar="FILE")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URI",
        help="store: a local path or s3://bucket/prefix (default: the sweep's `store`, else ./xstilts-runs)",
    ),
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")]
BackendOpt = Annotated[Backend, typer.Option("--backend", help="local (subprocesses) or kubernetes (Jobs)")]


def _check_backend(backend: Backend | str) -> str:
    value = backend.value if isinstance(backend, Backend) else backend
    if value not in ("local", "kubernetes"):
        raise typer.BadParameter("use 'local' or 'kubernetes'", param_hint="--backend")
    return value


def _hint(command: str, file: Path, backend: str, store: str | None, *extra: str) -> str:
    """The command line to run next, naming the backend (and the store, when it was given): without
    them `status` would show the local backend's view of the default store."""
    parts = ["xstilts", "sweep", command, str(file)]
    if backend != "local":
        parts += ["--backend", backend]
    if store:
        parts += ["--store", store]
    return " ".join([*parts, *extra])


# Between passes the Kubernetes backend waits on a watch of its Jobs, which wakes it on every change;
# this is only the longest quiet wait. The local backend's processes are polled.
POLL_SECONDS = {"local": 2.0, "kubernetes": 30.0}


@app.command("plan")
@handle_errors
def plan_cmd(
    file: FileArg,
    store: StoreOpt = None,
    output: OutputOpt = OutputFormat.table,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="validate and expand only: do not read the store (every state is `unknown`)"
        ),
    ] = False,
) -> None:
    """Expand and validate a sweep; print the phase DAG with addresses, status and dedupe counts.

    Planning needs no store: without S3 credentials, or with the endpoint unreachable, the DAG is
    printed with state `unknown` and one warning."""
    loaded = load(file, store, check_local=not offline)
    plan = loaded.plan
    try:  # fine inside pods (a mounted volume), fatal for `submit --backend local`
        check_model_paths(loaded.sweep, str(file))
    except XstiltsError as exc:
        Output.warning(f"{exc} (submit --backend local refuses it; pods may have it mounted)")
    complete: set[str] | None = None
    if not offline:
        try:
            complete = complete_prefixes(loaded.store, [p.prefix for p in plan.ordered()])
        except XstiltsError as exc:
            say(f"warning: cannot read the store, so every state is unknown: {exc}")
    rows = []
    for phase in plan.ordered():
        if complete is None:
            state = "unknown"
        else:
            state = "done" if phase.prefix in complete else "pending"
        inputs = {role: plan.phases[a].name for role, a in phase.inputs.items()}
        rows.append(
            {
                "address": phase.address,
                "name": phase.name,
                "kind": phase.kind,
                "task": phase.label,
                "inputs": inputs,
                "settings": phase.settings,
                "status": state,
            }
        )
    summary = {
        "sweep": plan.sweep.name,
        "store": loaded.store_uri,
        "phases": len(plan.phases),
        "requested": plan.requested,
        "deduplicated": plan.deduplicated,
        "done": None if complete is None else sum(r["status"] == "done" for r in rows),
        "runs": len(plan.runs),
    }

    def table() -> None:
        out.print(plan_table(plan, rows, out.width))
        done = "states unknown" if complete is None else f"{summary['done']} done"
        Output().line(
            f"{summary['phases']} phases ({summary['requested']} before dedupe, "
            f"{summary['deduplicated']} shared), {done}, {summary['runs']} result cells; "
            f"store {loaded.store_uri}"
        )

    Output(output).data({**summary, "phase_list": rows}, table)


@app.command("render")
@handle_errors
def render_cmd(
    file: FileArg,
    out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="directory for the YAML manifests")],
    store: StoreOpt = None,
    no_release: Annotated[
        bool,
        typer.Option(
            "--no-release",
            help="ignore the installed Helm release's settings (plain output from the sweep file and "
            "built-in defaults; no cluster contacted)",
        ),
    ] = False,
) -> None:
    """Write every phase's Kubernetes manifests as YAML files: what `submit --backend kubernetes` would
    create, with the installed release's settings (namespace, images, ServiceAccount, S3 Secret)."""
    from xstilts.render.dump import to_yaml
    from xstilts.render.job import render_phase

    sweep_file = load(file, store, check_local=False)  # rendering touches no store
    try:
        settings = cluster_settings(sweep_file.sweep, "local" if no_release else "kubernetes")
    except XstiltsError as exc:
        raise XstiltsError(f"{exc} (or render without it: --no-release)") from None
    if not store and not sweep_file.sweep.store:
        loaded = load(file, store, settings, check_local=False)
    else:
        loaded = sweep_file
    out_dir.mkdir(parents=True, exist_ok=True)
    for phase in loaded.plan.ordered():
        objects = render_phase(phase, loaded.sweep.name, loaded.store_uri, settings)
        (out_dir / f"{phase.kind}-{phase.label}-{phase.address}.yaml").write_text(to_yaml(objects))
    say(
        f"wrote {len(loaded.plan.phases)} manifests to {out_dir} "
        f"(namespace {settings.namespace}, store {loaded.store_uri})"
    )
    for warning in render_warnings(loaded.sweep, loaded.store_uri, settings):
        Output.warning(warning)


def render_warnings(sweep, store_uri: str, settings) -> list[str]:
    """What will not work as rendered: pods without S3 credentials, the `default` namespace, data
    paths that no volume mounts, hostPath volumes under a restricted Pod Security level."""
    warnings = []
    if store_uri.startswith("s3://") and not settings.s3.secret_name:
        warnings.append(
            "the pods get no S3 credentials: set kubernetes.s3.secretName to a Secret with "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the chart creates one)"
        )
    if "://" not in store_uri:
        warnings.append(
            f"the store {store_uri} is a local path: pods cannot reach it; use --store s3://bucket/prefix"
        )
    if settings.namespace == "default":
        warnings.append(
            "namespace 'default': set kubernetes.namespace (or install the chart, whose namespace is used)"
        )
    mounts = [v.mount_path.rstrip("/") for v in settings.data_volumes]
    for key, value in sweep.data.model_dump().items():
        if not key.endswith("_path") or not value or not str(value).startswith("/"):
            continue
        if not any(str(value) == m or str(value).startswith(m + "/") for m in mounts):
            warnings.append(
                f"data.{key} {value} is read inside the pods, but no volume mounts it: add a "
                f"kubernetes.dataVolumes entry (claimName or hostPath) with a mountPath above {value}"
            )
    for volume in settings.data_volumes:
        if volume.host_path:
            warnings.append(
                f"kubernetes.dataVolumes '{volume.name}' is a hostPath: namespaces that enforce the "
                "restricted Pod Security Standard refuse such pods; prefer a claimName"
            )
    return warnings


@app.command("init")
@handle_errors
def init_cmd(
    file: Annotated[Path, typer.Argument(help="the sweep file to write", show_default=False)],
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            metavar="NAME",
            help="the shipped sweep to start from: tiny, paper, rq-difficulty, rq-domain, ... "
            "(every jobs/*.yaml by its name)",
        ),
    ] = "tiny",
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented sweep file to start from."""
    from xstilts.cli.sweep_files import write_init

    write_init(preset, file, force)
    say(
        f"wrote {file} (preset {preset}); check it: xstilts sweep plan {file}; "
        f"defaults: xstilts sweep show {file}"
    )


@app.command("show")
@handle_errors
def show_cmd(file: FileArg, output: OutputOpt = OutputFormat.table) -> None:
    """The sweep with every default filled in, and per phase kind and task the hyperparameters,
    languages and resources its phases run with (YAML; JSON with -o json)."""
    import yaml

    from xstilts.cli.sweep_files import resolved

    loaded = load(file, None, check_local=False)
    data = resolved(loaded.plan)
    Output(output).data(data, lambda: yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


@app.command("list")
@handle_errors
def list_cmd(
    store: Annotated[
        str, typer.Option("--store", metavar="URI", help="store URI (a local path or s3://bucket/prefix)")
    ] = DEFAULT_STORE,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """The sweeps submitted to a store: phases done/total, last activity, GPU-hours."""
    from rich.table import Table
    from rich.text import Text

    from xstilts.cli.inventory import list_sweeps
    from xstilts.store import check_local_root, check_store_uri, is_local, local_path, open_store

    check_store_uri(store, field="--store")
    if is_local(store) and not local_path(store).is_dir():
        check_local_root(local_path(store))
        raise XstiltsError(f"the store {local_path(store).resolve()} does not exist (fix: check --store)")
    rows = list_sweeps(open_store(store))

    def table() -> Table | str:
        if not rows:
            return f"no sweeps recorded in {store} (a sweep is recorded when it is submitted)"
        shown = Table(show_edge=False, pad_edge=False)
        for column in ("sweep", "done", "last activity", "GPU-hours", "file"):
            shown.add_column(column, no_wrap=column != "file", overflow="fold")
        for r in rows:
            shown.add_row(
                Text(r["sweep"] or "?"),
                f"{r['done']}/{r['total']}",
                r["last_activity"] or "",
                f"{r['gpu_hours']:.2f}",
                Text(r["file"] or ""),
            )
        return shown

    Output(output).data(rows, table)


REPORTS = "reports"


def write_report(loaded: Loaded) -> str:
    """Build the report into the store, under `reports/<sweep>/`: a local store's directory, or (an
    S3 store) a temporary directory uploaded there, so that the in-cluster controller needs no writable
    working directory. Returns where it is."""
    import tempfile

    from xstilts.report.build import build_report
    from xstilts.store import join_key

    if "://" not in loaded.store_uri:
        files = build_report(loaded.plan, loaded.store, Path(loaded.store_uri) / REPORTS / loaded.sweep.name)
        return str(files.markdown)
    prefix = join_key(REPORTS, loaded.sweep.name)
    with tempfile.TemporaryDirectory(prefix="xstilts-report-") as tmp:
        files = build_report(loaded.plan, loaded.store, Path(tmp))
        pairs = [(path, join_key(prefix, path.relative_to(tmp).as_posix())) for path in files.all()]
        loaded.store.put_files(pairs)
        return f"{loaded.store_uri.rstrip('/')}/{join_key(prefix, files.markdown.name)}"


@app.command("submit")
@handle_errors
def submit_cmd(
    file: FileArg,
    backend: Annotated[
        Backend | None,
        typer.Option(
            "--backend",
            help="local (subprocesses) or kubernetes (Jobs); default: local, kubernetes with --in-cluster",
        ),
    ] = None,
    store: StoreOpt = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="return at once: kubernetes after the first reconcile pass (the Jobs run on), local with "
            "the controller running on in the background (its pid and log next to the store)",
        ),
    ] = False,
    in_cluster: Annotated[
        bool, typer.Option("--in-cluster", help="run the reconcile loop as a controller Job")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", min=1, metavar="N", help="local: phases at once (default: min(2, cores))"),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="write the report when all is done")
    ] = True,
    retry_failed: Annotated[
        bool | None,
        typer.Option("--retry-failed/--no-retry-failed", help="resubmit failed phases (local: on)"),
    ] = None,
) -> None:
    """Run (local) or submit (cluster) a sweep; reconcile until done unless --detach."""
    if in_cluster and backend is Backend.local:
        raise typer.BadParameter(
            "--in-cluster runs on Kubernetes: use --backend kubernetes", param_hint="--backend"
        )
    # --in-cluster: the controller Job, its settings and namespace are the cluster's.
    backend = _check_backend(backend or ("kubernetes" if in_cluster else "local"))
    sweep_file = load(file, store)  # validates before anything touches a cluster
    if backend == "local":
        check_model_paths(sweep_file.sweep, str(file))
    settings = cluster_settings(sweep_file.sweep, backend)
    loaded = load(file, store, settings) if not store and not sweep_file.sweep.store else sweep_file
    record_sweep(loaded.plan, loaded.store, str(file.resolve()))
    if in_cluster:
        _submit_controller(loaded, settings, store)
        return
    if detach and backend == "local":
        _detach_local(loaded, file, store, parallel, report, retry_failed)
        return
    plan = loaded.plan
    done_before = len(complete_prefixes(loaded.store, [p.prefix for p in plan.ordered()]))
    if done_before == len(plan.phases):
        say(
            f"All {len(plan.phases)} phases of sweep '{plan.sweep.name}' are already complete in "
            f"{loaded.store_uri}: nothing to run."
        )
    else:
        say(
            f"Sweep '{plan.sweep.name}': {len(plan.phases)} phases ({plan.deduplicated} shared), "
            f"{done_before} already complete; backend {backend}; store {loaded.store_uri}"
        )
    runner = make_backend(backend, loaded, settings, parallel, controller=not detach)
    retry = retry_failed if retry_failed is not None else backend == "local"
    if retry:

        def done(address: str) -> bool:
            phase = plan.phases.get(address)
            return phase is None or is_complete(loaded.store, phase.prefix)

        deleted = runner.retry_failed(plan.sweep.name, done=done)
        if deleted:
            say(f"Deleted {deleted} failed Job(s); their phases are submitted again.")
    reconciler = Reconciler(plan, loaded.store, runner, loaded.store_uri, settings, retry_failed=retry)
    log_dir = local_work_dir(loaded) / "logs" if backend == "local" else None
    started = time.monotonic()
    try:
        starting = _ready_phases(plan, loaded.store)
        if starting:
            first = ", ".join(p.name for p in starting[:3]) + (" ..." if len(starting) > 3 else "")
            slow = " (the first start loads the training libraries)" if backend == "local" else ""
            say(f"Starting {first}{slow}")
        shown_parallel = getattr(runner, "max_parallel", None) or len(plan.phases)
        with SweepDisplay(log_dir, parallel=shown_parallel) as display, _stop_on_sigterm(reconciler):
            statuses = reconciler.run(detach=detach, on_pass=display, poll_interval=POLL_SECONDS[backend])
    except KeyboardInterrupt:
        if backend == "local":  # Ctrl-C at the terminal stops the local phases too, at a checkpoint
            _stop_local_phases(runner, _hint("submit", file, backend, store))
        say(
            "interrupted: the sweep's Jobs keep running in the cluster; run the same command to watch "
            f"and resume: {_hint('submit', file, backend, store)}"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        # Anything else (the store gone for longer than the outage window, SIGTERM) leaves running
        # phases running: they finish on their own and the next `sweep submit` adopts them.
        if not detach:
            runner.close()
    say(counts_line(statuses) + f" · {time.monotonic() - started:.0f}s")
    if reconciler.stopping:
        say(
            "Stopped on SIGTERM: nothing more is submitted; running phases finish on their own and the "
            f"next `xstilts sweep submit {file}` adopts them."
        )
        raise typer.Exit(EXIT_PREEMPTED)
    api = getattr(runner, "api", None)
    if api is not None and api.calls:  # what this run cost the API server (docs/benchmarks.md)
        top = ", ".join(f"{k} {n}" for k, n in api.calls.most_common())
        say(
            f"API: {sum(api.calls.values())} requests in {getattr(runner, 'passes', 0)} passes ({top}); "
            f"lists returned {sum(api.listed.values())} objects, {api.received / 1e6:.1f} MB"
        )
    if detach:
        say(f"Submitted; watch with: {_hint('status', file, backend, store, '--watch')}")
        return
    problems = [s for s in statuses if s.state in (FAILED, BLOCKED)]
    if problems:
        out.print(status_table(problems))
        failed = [s for s in problems if s.state == FAILED]
        first = next((s for s in failed if s.reason), failed[0] if failed else None)
        detail = f" (first: {first.name}: {first.reason})" if first and first.reason else ""
        where = first.address if first else "ADDRESS"
        raise PhaseFailedError(
            f"{len(failed)} phase(s) failed, {len(problems) - len(failed)} blocked{detail}; "
            f"logs: {_hint('logs', file, backend, store or loaded.store_uri, '--phase', where)}"
        )
    if report:
        say(f"Report: {write_report(loaded)}")


CONTROLLER_PID = "controller.pid"
CONTROLLER_LOG = "controller.log"


def controller_pid(loaded: Loaded) -> int | None:
    """The pid of this sweep's background local controller, if one runs."""
    path = local_work_dir(loaded) / CONTROLLER_PID
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid > 1 else None


def _detach_local(
    loaded: Loaded, file: Path, store: str | None, parallel: int | None, report: bool, retry: bool | None
) -> None:
    """`submit --detach` on the local backend: the same command without --detach, in its own session,
    its output in `<work dir>/controller.log`, its pid in `controller.pid`."""
    import subprocess
    import sys

    work = local_work_dir(loaded)
    running = controller_pid(loaded)
    if running:
        raise UsageError(
            f"sweep '{loaded.sweep.name}' already has a background controller (pid {running}); watch: "
            f"{_hint('status', file, 'local', store or loaded.store_uri, '--watch')}"
        )
    work.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "xstilts",
        "sweep",
        "submit",
        str(file.resolve()),
        "--store",
        loaded.store_uri,
    ]
    if parallel:
        command += ["--parallel", str(parallel)]
    command.append("--report" if report else "--no-report")
    if retry is not None:
        command.append("--retry-failed" if retry else "--no-retry-failed")
    log = work / CONTROLLER_LOG
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    (work / CONTROLLER_PID).write_text(f"{process.pid}\n")
    where = store or loaded.store_uri
    say(
        f"Running in the background: controller pid {process.pid}, log {log}. "
        f"Watch: {_hint('status', file, 'local', where, '--watch')}; "
        f"stop: {_hint('cancel', file, 'local', where)}"
    )


def _ready_phases(plan, store) -> list:
    """The phases the first pass starts: not done, every input done."""
    done = complete_prefixes(store, [p.prefix for p in plan.ordered()])
    finished = {p.address for p in plan.ordered() if p.prefix in done}
    return [
        p
        for p in plan.ordered()
        if p.address not in finished and all(a in finished for a in p.inputs.values())
    ]


INTERRUPT_GRACE_SECONDS = 120.0  # how long interrupted phases may take to save their checkpoint


def _stop_local_phases(runner, resume: str) -> None:
    """The first Ctrl-C: SIGTERM the running phases (each saves a checkpoint and exits 143), wait for
    them, stop the fork server, exit 130. A second Ctrl-C while waiting kills them at once. Once the
    command knows how it ends, further Ctrl-Cs are ignored: one landing while it cleans up or while the
    interpreter shuts down would otherwise end it by SIGINT instead of exit 130."""
    stopping: list[str] = []
    try:
        stopping = runner.interrupt()
        if stopping:
            say(
                f"interrupted: stopping {_count(len(stopping), 'running phase')} at a checkpoint "
                "(Ctrl-C again to stop at once)"
            )
        codes = runner.wait_stopped(stopping, INTERRUPT_GRACE_SECONDS)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        runner.kill_now(stopping)
        runner.close()
        say(
            f"interrupted again: stopped {_count(len(stopping), 'phase')} at once; they resume from their "
            f"last checkpoint: {resume}"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    late = [address for address, code in codes.items() if code is None]
    runner.kill_now(late)
    runner.close()
    checkpointed = sum(code == EXIT_PREEMPTED for code in codes.values())
    finished = sum(code == 0 for code in codes.values())
    extra = f" ({finished} finished first)" if finished else ""
    say(
        f"interrupted: {_count(checkpointed, 'phase')} checkpointed{extra}; run the same command to "
        f"resume: {resume}"
    )
    raise typer.Exit(EXIT_INTERRUPTED)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@contextmanager
def _stop_on_sigterm(reconciler: Reconciler) -> Iterator[None]:
    """SIGTERM stops the reconcile loop after its current pass (the command then exits 143)."""
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: reconciler.stop())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _submit_controller(loaded: Loaded, settings, store: str | None) -> None:
    from xstilts.backends.kubernetes import submit_controller

    name = submit_controller(
        loaded.file.read_text(encoding="utf-8"), loaded.sweep.name, loaded.store_uri, settings
    )
    say(
        f"Controller Job {name} created; it reconciles the sweep in the cluster. "
        f"Watch: {_hint('status', loaded.file, 'kubernetes', store, '--watch')}"
    )


@app.command("status")
@handle_errors
def status_cmd(
    file: FileArg,
    backend: BackendOpt = Backend.local,
    store: StoreOpt = None,
    output: OutputOpt = OutputFormat.table,
    watch: Annotated[
        bool, typer.Option("--watch", help="refresh until every phase is done, failed or blocked")
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes with --watch")] = 5.0,
) -> None:
    """Per-phase state: done, running, pending, waiting, failed (with reason), blocked."""
    backend = _check_backend(backend)
    loaded = load(file, store)
    if not store_exists(loaded.store) and not watch:
        raise XstiltsError(
            f"the store {loaded.store_uri} does not exist: nothing of sweep '{loaded.sweep.name}' was "
            f"submitted to it (fix: check --store, or run it: {_hint('submit', file, backend, store)})"
        )
    settings = cluster_settings(loaded.sweep, backend)
    runner = make_backend(backend, loaded, settings)
    reconciler = Reconciler(loaded.plan, loaded.store, runner, loaded.store_uri, settings)
    while True:
        statuses = reconciler.status(submit=False)
        data = {
            "sweep": loaded.sweep.name,
            "summary": counts_line(statuses),
            "phases": [s.as_dict() for s in statuses],
        }

        def table(statuses: list = statuses) -> None:
            out.print(status_table(statuses, width=out.width))
            Output().line(counts_line(statuses))

        Output(output).data(data, table)
        if not watch or all(s.state in (DONE, FAILED, BLOCKED) for s in statuses):
            return
        time.sleep(interval)


@app.command("logs")
@handle_errors
def logs_cmd(
    file: FileArg,
    phase: Annotated[
        str | None,
        typer.Option(
            "--phase",
            metavar="PHASE",
            help="the phase: its address or a unique prefix, its name (intermediate/mnli@68365bff) or a "
            "unique kind/task (intermediate/mnli)",
        ),
    ] = None,
    backend: BackendOpt = Backend.local,
    store: StoreOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="stream new lines while the phase runs (pod or process)")
    ] = False,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--output", "-o", help="table: time, phase, step, loss, rate, messages; json: the raw log lines"
        ),
    ] = OutputFormat.table,
) -> None:
    """A phase's log, readable (progress bars and library chatter left out), or raw with -o json: from
    the cluster while the pod exists, from the local backend's log, else from the store."""
    from xstilts.phases.context import LOG_NAME
    from xstilts.store import join_key

    backend = _check_backend(backend)
    loaded = load(file, store)
    if phase is None:
        names = "\n".join(f"  {p.address}  {p.name}" for p in loaded.plan.ordered())
        example = _hint("logs", file, backend, store, "--phase", loaded.plan.ordered()[0].address)
        raise UsageError(f"choose a phase with --phase (e.g. {example}):\n{names}")
    target = find_phase(loaded.plan, phase)
    settings = cluster_settings(loaded.sweep, backend)
    runner = make_backend(backend, loaded, settings)
    lines = runner.logs(target, follow=follow)
    if lines is None:
        try:
            text = loaded.store.get_text(join_key(target.prefix, "logs", LOG_NAME))
        except FileNotFoundError:
            raise XstiltsError(f"no log for {target.name} yet (not started, or its pod is gone)") from None
        lines = iter(text.splitlines())
    shown = Output(output)
    for line in lines if shown.json else readable(lines, target.name):
        shown.line(line)


@app.command("cancel")
@handle_errors
def cancel_cmd(file: FileArg, backend: BackendOpt = Backend.local, store: StoreOpt = None) -> None:
    """Delete the sweep's running Jobs; done phases stay done."""
    backend = _check_backend(backend)
    loaded = load(file, store)
    settings = cluster_settings(loaded.sweep, backend)
    runner = make_backend(backend, loaded, settings)
    if backend == "local":  # the local background controller first, so that it submits nothing more
        controller = controller_pid(loaded)
        if controller:
            os.kill(controller, signal.SIGTERM)
            say(f"Stopped the background controller (pid {controller}).")
    phases = loaded.plan.ordered()

    def committed() -> set[str]:
        done = complete_prefixes(loaded.store, [p.prefix for p in phases])
        return {p.address for p in phases if p.prefix in done}

    count = runner.cancel(loaded.sweep.name, addresses=set(loaded.plan.phases), keep=committed)
    say(f"Cancelled {count} running phase(s) of sweep '{loaded.sweep.name}'.")


__all__ = ["app", "write_specs"]

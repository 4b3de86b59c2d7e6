"""`xstilts sweep ...`: plan, render, submit, status, logs, cancel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from xstilts.backends.reconcile import BLOCKED, DONE, FAILED, Reconciler, write_specs
from xstilts.cli.common import Loaded, cluster_settings, load, local_work_dir, make_backend
from xstilts.cli.display import SweepDisplay, counts_line, status_table
from xstilts.cli.output import OutputFormat, handle_errors, out, print_json, say
from xstilts.errors import PhaseFailedError, XstiltsError
from xstilts.store.complete import is_complete

app = typer.Typer(help="Plan, render, run and watch sweeps.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="sweep file (YAML)", show_default=False)]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="store URI (default: the sweep's `store`, else ./xstilts-runs)")
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json")]
BackendOpt = Annotated[str, typer.Option("--backend", help="local (subprocesses) or kubernetes")]


def _check_backend(backend: str) -> str:
    if backend not in ("local", "kubernetes"):
        raise typer.BadParameter("use 'local' or 'kubernetes'", param_hint="--backend")
    return backend


@app.command("plan")
@handle_errors
def plan_cmd(file: FileArg, store: StoreOpt = None, output: OutputOpt = OutputFormat.table) -> None:
    """Expand and validate a sweep; print the phase DAG with addresses, status and dedupe counts."""
    loaded = load(file, store)
    plan = loaded.plan
    rows = []
    for phase in plan.ordered():
        done = is_complete(loaded.store, phase.prefix)
        inputs = {role: plan.phases[a].name for role, a in phase.inputs.items()}
        rows.append(
            {
                "address": phase.address,
                "name": phase.name,
                "kind": phase.kind,
                "task": phase.label,
                "inputs": inputs,
                "settings": phase.settings,
                "status": "done" if done else "pending",
            }
        )
    summary = {
        "sweep": plan.sweep.name,
        "store": loaded.store_uri,
        "phases": len(plan.phases),
        "requested": plan.requested,
        "deduplicated": plan.deduplicated,
        "done": sum(r["status"] == "done" for r in rows),
        "runs": len(plan.runs),
    }
    if output is OutputFormat.json:
        print_json({**summary, "phase_list": rows})
        return
    table = Table(title=f"sweep {plan.sweep.name}", show_edge=False)
    for col in ("phase", "address", "inputs", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = "green" if r["status"] == "done" else "yellow"
        table.add_row(r["name"], r["address"], ", ".join(r["inputs"].values()), f"[{style}]{r['status']}[/]")
    out.print(table)
    out.print(
        f"{summary['phases']} phases ({summary['requested']} before dedupe, "
        f"{summary['deduplicated']} shared), "
        f"{summary['done']} done, {summary['runs']} result cells; store {loaded.store_uri}",
        highlight=False,
    )


@app.command("render")
@handle_errors
def render_cmd(
    file: FileArg,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the YAML manifests")],
    store: StoreOpt = None,
) -> None:
    """Write every phase's Kubernetes manifests as YAML files (no cluster needed)."""
    from xstilts.render.dump import to_yaml
    from xstilts.render.job import render_phase
    from xstilts.render.settings import ClusterSettings

    sweep_loaded = load(file, store)
    settings = ClusterSettings.model_validate(sweep_loaded.sweep.kubernetes)
    out_dir.mkdir(parents=True, exist_ok=True)
    for phase in sweep_loaded.plan.ordered():
        objects = render_phase(phase, sweep_loaded.sweep.name, sweep_loaded.store_uri, settings)
        (out_dir / f"{phase.kind}-{phase.label}-{phase.address}.yaml").write_text(to_yaml(objects))
    say(f"wrote {len(sweep_loaded.plan.phases)} manifests to {out_dir}")


def _report_dir(loaded: Loaded) -> Path:
    if "://" not in loaded.store_uri:
        return Path(loaded.store_uri) / "reports" / loaded.sweep.name
    return Path("reports") / loaded.sweep.name


@app.command("submit")
@handle_errors
def submit_cmd(
    file: FileArg,
    backend: BackendOpt = "local",
    store: StoreOpt = None,
    detach: Annotated[bool, typer.Option("--detach", help="return after the first reconcile pass")] = False,
    in_cluster: Annotated[
        bool, typer.Option("--in-cluster", help="run the reconcile loop as a controller Job")
    ] = False,
    parallel: Annotated[int | None, typer.Option("--parallel", min=1, help="local: phases at once")] = None,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="write the report when all is done")
    ] = True,
    retry_failed: Annotated[
        bool | None,
        typer.Option("--retry-failed/--no-retry-failed", help="resubmit failed phases (local: on)"),
    ] = None,
) -> None:
    """Run (local) or submit (cluster) a sweep; reconcile until done unless --detach."""
    backend = _check_backend(backend)
    sweep_file = load(file, store)  # validates before anything touches a cluster
    settings = cluster_settings(sweep_file.sweep, backend)
    loaded = load(file, store, settings) if not store and not sweep_file.sweep.store else sweep_file
    if in_cluster:
        _submit_controller(loaded, settings)
        return
    plan = loaded.plan
    done_before = sum(is_complete(loaded.store, p.prefix) for p in plan.ordered())
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
    runner = make_backend(backend, loaded, settings, parallel)
    retry = retry_failed if retry_failed is not None else backend == "local"
    if retry and backend == "kubernetes":
        deleted = runner.delete_failed(plan.sweep.name)
        if deleted:
            say(f"Deleted {deleted} failed Job(s); their phases are submitted again.")
    local_retry = retry and backend == "local"
    reconciler = Reconciler(plan, loaded.store, runner, loaded.store_uri, settings, retry_failed=local_retry)
    log_dir = local_work_dir(loaded) / "logs" if backend == "local" else None
    started = time.monotonic()
    try:
        with SweepDisplay(log_dir) as display:
            statuses = reconciler.run(detach=detach, on_pass=display)
    finally:
        if not detach:
            runner.close()
    say(counts_line(statuses) + f" · {time.monotonic() - started:.0f}s")
    if detach:
        say(f"Submitted; watch with: xstilts sweep status {file} --watch")
        return
    problems = [s for s in statuses if s.state in (FAILED, BLOCKED)]
    if problems:
        out.print(status_table(problems))
        raise PhaseFailedError(
            f"{sum(s.state == FAILED for s in problems)} phase(s) failed, "
            f"{sum(s.state == BLOCKED for s in problems)} "
            f"blocked; logs: xstilts sweep logs {file} --phase ADDRESS"
        )
    if report:
        from xstilts.report.build import build_report

        target = _report_dir(loaded)
        files = build_report(plan, loaded.store, target)
        say(f"Report: {getattr(files, 'markdown', target / 'report.md')}")


def _submit_controller(loaded: Loaded, settings) -> None:
    from xstilts.backends.kubernetes import submit_controller

    name = submit_controller(
        loaded.file.read_text(encoding="utf-8"), loaded.sweep.name, loaded.store_uri, settings
    )
    say(
        f"Controller Job {name} created; it reconciles the sweep in the cluster. "
        f"Watch: xstilts sweep status {loaded.file} --backend kubernetes --watch"
    )


@app.command("status")
@handle_errors
def status_cmd(
    file: FileArg,
    backend: BackendOpt = "local",
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
    settings = cluster_settings(loaded.sweep, backend)
    runner = make_backend(backend, loaded, settings)
    reconciler = Reconciler(loaded.plan, loaded.store, runner, loaded.store_uri, settings)
    while True:
        statuses = reconciler.status(submit=False)
        if output is OutputFormat.json:
            print_json(
                {
                    "sweep": loaded.sweep.name,
                    "summary": counts_line(statuses),
                    "phases": [s.as_dict() for s in statuses],
                }
            )
        else:
            out.print(status_table(statuses))
            out.print(counts_line(statuses), highlight=False)
        if not watch or all(s.state in (DONE, FAILED, BLOCKED) for s in statuses):
            return
        time.sleep(interval)


@app.command("logs")
@handle_errors
def logs_cmd(
    file: FileArg,
    phase: Annotated[
        str | None, typer.Option("--phase", help="phase address (or a unique prefix / name)")
    ] = None,
    backend: BackendOpt = "local",
    store: StoreOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="stream while the pod runs")] = False,
) -> None:
    """A phase's log: from the cluster while the pod exists, else from the store."""
    from xstilts.phases.context import LOG_NAME
    from xstilts.store import join_key

    backend = _check_backend(backend)
    loaded = load(file, store)
    if phase is None:
        names = "\n".join(f"  {p.address}  {p.name}" for p in loaded.plan.ordered())
        raise XstiltsError(f"choose a phase with --phase ADDRESS:\n{names}")
    matches = [p for p in loaded.plan.ordered() if p.address.startswith(phase) or p.name == phase]
    if len(matches) != 1:
        raise XstiltsError(f"--phase {phase!r} matches {len(matches)} phases; give more of the address")
    target = matches[0]
    settings = cluster_settings(loaded.sweep, backend)
    runner = make_backend(backend, loaded, settings)
    lines = runner.logs(target, follow=follow)
    if lines is None:
        try:
            text = loaded.store.get_text(join_key(target.prefix, "logs", LOG_NAME))
        except FileNotFoundError:
            raise XstiltsError(f"no log for {target.name} yet (not started, or its pod is gone)") from None
        lines = iter(text.splitlines())
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command("cancel")
@handle_errors
def cancel_cmd(file: FileArg, backend: BackendOpt = "local", store: StoreOpt = None) -> None:
    """Delete the sweep's running Jobs; done phases stay done."""
    backend = _check_backend(backend)
    loaded = load(file, store)
    settings = cluster_settings(loaded.sweep, backend)
    runner = make_backend(backend, loaded, settings)
    if backend == "local":
        count = runner.cancel(loaded.sweep.name, addresses=set(loaded.plan.phases))
    else:
        count = runner.cancel(loaded.sweep.name)
    say(f"Cancelled {count} running phase(s) of sweep '{loaded.sweep.name}'.")


__all__ = ["app", "write_specs"]

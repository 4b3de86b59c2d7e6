"""Checks of a sweep against the benchmark it names and the evaluation protocols, run after the task
names are known to exist (`xstilts.spec.load`). Each failure is a ConfigError naming file, field, fix."""

from __future__ import annotations

from xstilts.errors import ConfigError
from xstilts.spec.models import Sweep
from xstilts.tasks import benchmark_targets, get_task

BENCHMARK_NAMES = {"xtreme": "XTREME", "xtreme-r": "XTREME-R", "custom": "custom"}


def check_benchmark(sweep: Sweep, file: str) -> None:
    """Targets and per-target languages must belong to the sweep's benchmark (unless it is custom)."""
    if sweep.benchmark == "custom":
        return
    name = BENCHMARK_NAMES[sweep.benchmark]
    members = benchmark_targets(sweep.benchmark)
    for i, target in enumerate(sweep.targets):
        task = get_task(target, file=file, field=f"targets[{i}]")
        if sweep.benchmark not in task.benchmarks:
            other = [b for b in ("xtreme", "xtreme-r") if b in task.benchmarks]
            hint = f"set benchmark: {other[0]}, or " if other else ""
            raise ConfigError(
                f"'{task.name}' is not a {name} task ({name}: {', '.join(members)})",
                file=file, field=f"targets[{i}]",
                fix=f"{hint}drop it, or set benchmark: custom to mix benchmarks (no {name} score then)",
            )  # fmt: skip
    for target, langs in sweep.languages.items():
        task = get_task(target, file=file, field=f"languages.{target}")
        allowed = task.benchmark_languages(sweep.benchmark)
        for j, lang in enumerate(langs):
            if lang not in allowed:
                raise ConfigError(
                    f"'{lang}' is not one of {task.name}'s {name} languages",
                    file=file, field=f"languages.{target}[{j}]",
                    fix=f"{name} {task.name}: {' '.join(allowed)} (or set benchmark: custom)",
                )  # fmt: skip


def check_mlm(sweep: Sweep, file: str) -> None:
    """A hub sweep with MLM must name its corpus (fixtures have their own); `mlm` only as a task."""
    if sweep.uses_mlm and sweep.data.source == "hub" and not sweep.mlm.corpus:
        where = "mlm.enabled" if sweep.mlm.enabled else "an intermediate mixture lists mlm"
        raise ConfigError(
            f"MLM is on ({where}) but there is no corpus: it would train on the fixture text",
            file=file, field="mlm.corpus",
            fix="set mlm.corpus to a text file with one example per line (or use data.source: fixtures)",
        )  # fmt: skip


def check_bucc(sweep: Sweep, file: str) -> None:
    if sweep.evaluation.bucc.pairs == "mining" and sweep.data.source == "hub" and not sweep.data.bucc_path:
        raise ConfigError(
            "BUCC mining needs the BUCC 2018 files (the hub's bucc18 configs hold only the gold pairs)",
            file=file, field="data.bucc_path",
            fix="point data.bucc_path at the unpacked bucc2018-<xx>-en.{sample,training}-gold archives, or "
            "set evaluation.bucc.pairs: gold_only",
        )  # fmt: skip


def check_protocols(sweep: Sweep, file: str) -> None:
    check_benchmark(sweep, file)
    check_mlm(sweep, file)
    check_bucc(sweep, file)

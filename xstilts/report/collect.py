"""Read a sweep's results out of the store: one record per complete grid cell, the cells still missing,
and what each complete phase cost.

Nothing here trains or imports torch: it reads `metrics.json`, `lineage.json` and the prediction files
(`predictions/<lang>.jsonl`, for the per-example stats the bootstrap resamples) of phases whose
`_COMPLETE` marker is present (docs/architecture.md), and the dev score the target phase selected its
model on (for choosing the best intermediate setting per target on dev, never on the reported split).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from xstilts.plan.configs import IntermediateConfig
from xstilts.plan.expand import BASELINE, Plan, Run
from xstilts.plan.phase import Phase
from xstilts.store.base import Store, join_key
from xstilts.store.complete import complete_prefixes

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class RunResult:
    """The evaluate-phase metrics of one complete grid cell (encoder, setting, target, seed)."""

    encoder: str
    setting: str
    target: str
    seed: int
    evaluate: str  # evaluate phase address; seeds that share one phase share it
    metric: str
    languages: dict[str, dict[str, float]]  # lang -> {"score": ..., metric fields}
    average: float
    average_zero_shot: float | None
    # Robustness evaluation: perturbation label -> lang -> score on the perturbed data (metrics.json
    # "perturbed"; empty when the sweep has no `robustness`).
    perturbed: dict[str, dict[str, float]] = field(default_factory=dict)
    # The dev score model selection saw (target phase: English dev; BUCC: the sample split), and where
    # it comes from; None when the run has none (Tatoeba, LAReQA; older runs).
    dev: float | None = None
    dev_source: str | None = None
    protocol: dict[str, Any] = field(default_factory=dict)  # metrics.json "protocol" (direction, pairs...)
    # lang -> per-example stats (`xstilts.evaluate.statistics.ExampleStats`) from the prediction files;
    # empty when the metric is not resampled or the files carry no stats (runs of an older xstilts).
    examples: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def scores(self) -> dict[str, float]:
        return {lang: float(fields["score"]) for lang, fields in self.languages.items()}

    def rows(self) -> Iterator[dict[str, Any]]:
        """Long-format rows, one per language."""
        for lang, fields in self.languages.items():
            extra = {k: v for k, v in fields.items() if k != "score"}
            yield {
                "encoder": self.encoder, "setting": self.setting, "target": self.target, "seed": self.seed,
                "language": lang, "score": float(fields["score"]), "metric": self.metric,
                "evaluate": self.evaluate, **extra,
            }  # fmt: skip


@dataclass(frozen=True)
class MissingCell:
    """A grid cell with no usable result yet."""

    encoder: str
    setting: str
    target: str
    seed: int
    evaluate: str
    phase: str  # the evaluate phase's human-facing name
    reason: str  # "pending", or why a complete phase's metrics could not be used
    waiting_on: tuple[str, ...] = ()  # incomplete phases whose inputs are all complete (next to run)


@dataclass(frozen=True)
class PhaseCost:
    """Wall-clock time and accelerator use of one complete phase."""

    address: str
    name: str
    kind: str
    started_at: str | None
    finished_at: str | None
    seconds: float | None  # None when lineage.json lacks or garbles the timestamps
    gpus: int  # resources.gpu * nodes; 0 for a CPU-only phase
    nodes: int

    @property
    def hours(self) -> float | None:
        return None if self.seconds is None else self.seconds / SECONDS_PER_HOUR

    @property
    def gpu_hours(self) -> float:
        return (self.hours or 0.0) * self.gpus

    @property
    def cpu_hours(self) -> float:
        """Pod-hours of a CPU-only phase (hours x nodes); 0 for a GPU phase."""
        return (self.hours or 0.0) * self.nodes if self.gpus == 0 else 0.0


@dataclass
class Results:
    """Everything the report shows; encoders, settings and targets in the order the plan lists them."""

    sweep: str
    description: str
    store: str
    benchmark: str = "custom"  # the sweep's benchmark (xtreme, xtreme-r, custom)
    encoders: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # "baseline" first when the sweep has one
    targets: list[str] = field(default_factory=list)
    cells: int = 0  # grid cells in the plan (encoder x setting x target x seed)
    runs: list[RunResult] = field(default_factory=list)
    missing: list[MissingCell] = field(default_factory=list)
    costs: list[PhaseCost] = field(default_factory=list)
    # Intermediate setting -> its tasks ("baseline": none), for the research tables.
    setting_tasks: dict[str, list[str]] = field(default_factory=dict)
    # Domain alignment (analysis phases): one row per (encoder, intermediate task, target, reference,
    # language) with measures.
    alignment: list[dict[str, Any]] = field(default_factory=list)
    # Intermediate setting -> the training examples it read (its tasks' sizes, each capped by the phase's
    # max_train_examples), where the analysis phase measured the sizes: the partial correlation's control.
    setting_sizes: dict[str, int] = field(default_factory=dict)
    # Measured difficulty (difficulty probes): encoder -> intermediate task -> the probe's English dev score.
    probe_scores: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Long format: one row per (encoder, setting, target, seed, language)."""
        return [row for run in self.runs for row in run.rows()]

    @property
    def intermediate_settings(self) -> list[str]:
        return [s for s in self.settings if s != BASELINE]

    @property
    def gpu_hours(self) -> float:
        return sum(c.gpu_hours for c in self.costs)

    @property
    def cpu_hours(self) -> float:
        return sum(c.cpu_hours for c in self.costs)

    @property
    def seconds(self) -> float:
        return sum(c.seconds or 0.0 for c in self.costs)

    def gpu_hours_by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for cost in self.costs:
            totals[cost.kind] = totals.get(cost.kind, 0.0) + cost.gpu_hours
        return totals


class _CompletionCache:
    """Which phases are complete, asked of the store once for the whole plan (on S3 one listing, not a
    HEAD request per phase)."""

    def __init__(self, plan: Plan, store: Store):
        self.plan = plan
        self.store = store
        self._complete: set[str] | None = None

    def __call__(self, address: str) -> bool:
        if self._complete is None:
            self._complete = complete_prefixes(self.store, [p.prefix for p in self.plan.phases.values()])
        return self.plan.phases[address].prefix in self._complete

    def frontier(self, address: str) -> tuple[str, ...]:
        """Names of the incomplete phases upstream of (or at) `address` whose inputs are all complete."""
        found: dict[str, str] = {}
        self._walk(address, found, set())
        return tuple(found[a] for a in self.plan.phases if a in found)

    def _walk(self, address: str, found: dict[str, str], seen: set[str]) -> None:
        if address in seen or self(address):
            return
        seen.add(address)
        phase = self.plan.phases[address]
        upstream = [a for a in phase.inputs.values() if a in self.plan.phases]
        if all(self(a) for a in upstream):
            found[address] = phase.name
        for parent in upstream:
            self._walk(parent, found, seen)


def _read_json(store: Store, key: str) -> dict[str, Any]:
    data = json.loads(store.get_text(key))
    if not isinstance(data, dict):
        raise ValueError(f"{key} holds {type(data).__name__}, not an object")
    return data


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _numeric_fields(fields: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in fields.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _run_result(run: Run, metrics: dict[str, Any], **extra: Any) -> RunResult:
    languages = {str(lang): _numeric_fields(fields) for lang, fields in metrics["languages"].items()}
    missing_score = [lang for lang, fields in languages.items() if "score" not in fields]
    if missing_score:
        raise ValueError(f"no 'score' for language(s) {', '.join(missing_score)}")
    scores = [f["score"] for f in languages.values()]
    zero_shot = [f["score"] for lang, f in languages.items() if lang != "en"]
    average = metrics.get("average")
    average_zero_shot = metrics.get("average_zero_shot", _mean(zero_shot))
    return RunResult(
        encoder=run.encoder, setting=run.setting, target=run.target, seed=run.seed, evaluate=run.evaluate,
        metric=str(metrics.get("metric", "")), languages=languages,
        average=float(average) if average is not None else float(_mean(scores) or 0.0),
        average_zero_shot=float(average_zero_shot) if average_zero_shot is not None else None,
        perturbed=_perturbed_scores(metrics.get("perturbed") or {}),
        protocol=dict(metrics.get("protocol") or {}), **extra,
    )  # fmt: skip


def _perturbed_scores(perturbed: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        str(name): {str(lang): float(f["score"]) for lang, f in per_lang.items() if "score" in f}
        for name, per_lang in perturbed.items()
    }


def collect_alignment(
    plan: Plan, store: Store, done: Callable[[str], bool]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows of the complete domain-alignment analysis phases (one per encoder), with the encoder's name,
    and the training-set size of each intermediate task they measured."""
    rows: list[dict[str, Any]] = []
    sizes: dict[str, int] = {}
    for encoder, address in zip(plan.sweep.encoders, plan.analyses, strict=False):
        if not done(address):
            continue
        try:
            metrics = _read_json(store, join_key(plan.phases[address].prefix, "metrics.json"))
        except (FileNotFoundError, ValueError):
            continue
        pairs = [pair for pair in metrics.get("pairs", []) if isinstance(pair, dict)]
        rows += [{"encoder": encoder.name, "reference": "train", "language": "en", **pair} for pair in pairs]
        found = metrics.get("sizes") or {}
        sizes.update({k: int(v) for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool)})
    return rows, sizes


def collect_probes(plan: Plan, store: Store, done: Callable[[str], bool]) -> dict[str, dict[str, float]]:
    """encoder -> task -> the English dev score its difficulty probe reached (complete probes only)."""
    out: dict[str, dict[str, float]] = {}
    for (encoder, task), address in plan.probes.items():
        if not done(address):
            continue
        try:
            metrics = _read_json(store, join_key(plan.phases[address].prefix, "metrics.json"))
        except (FileNotFoundError, ValueError):
            continue
        score = (metrics.get("dev") or {}).get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            out.setdefault(encoder, {})[task] = float(score)
    return out


def setting_sizes(plan: Plan, task_sizes: dict[str, int]) -> dict[str, int]:
    """Intermediate setting -> the examples its phase trained on: each task's size, capped by the phase's
    `max_train_examples` (size-matched settings: their cap)."""
    out: dict[str, int] = {}
    for phase in plan.phases.values():
        config = phase.config
        if not isinstance(config, IntermediateConfig) or not all(t in task_sizes for t in config.tasks):
            continue
        cap = config.training.get("max_train_examples")
        if config.size_match:
            cap = min([*(task_sizes.get(t, 0) for t in config.size_match), *([cap] if cap else [])])
        total = sum(min(task_sizes[t], cap) if cap else task_sizes[t] for t in config.tasks)
        for setting in phase.settings:
            out.setdefault(setting, total)
    return out


def _dev_score(
    plan: Plan, store: Store, phase: Phase, metrics: dict[str, Any]
) -> tuple[float | None, str | None]:
    """The dev score behind a cell: the target phase's model-selection score on the English dev set, or
    the evaluate phase's own (BUCC's sample split)."""
    own = metrics.get("dev")
    if isinstance(own, dict) and isinstance(own.get("score"), int | float):
        return float(own["score"]), f"{own.get('split', 'dev')} split"
    upstream = phase.inputs.get("model")
    if upstream is None or upstream not in plan.phases:
        return None, None
    try:
        target = _read_json(store, join_key(plan.phases[upstream].prefix, "metrics.json"))
    except (FileNotFoundError, ValueError):
        return None, None
    dev = target.get("dev")
    if isinstance(dev, dict) and isinstance(dev.get("score"), int | float):
        return float(dev["score"]), "English dev"
    return None, None


def read_example_stats(store: Store, phase: Phase, metrics: dict[str, Any]) -> dict[str, Any]:
    """lang -> ExampleStats from the phase's prediction files; {} when the metric is not resampled or a
    file lacks per-example stats. numpy is needed only here (imported lazily)."""
    try:
        from xstilts.evaluate.statistics import ExampleStats, metric_kind
    except ImportError:  # no numpy (a bare controller install): the report goes without intervals
        return {}

    kind = metric_kind(str(metrics.get("metric", "")))
    if kind is None:
        return {}
    out = {}
    for lang, fields in metrics["languages"].items():
        try:
            text = store.get_text(join_key(phase.prefix, "predictions", f"{lang}.jsonl"))
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            units = fields.get("units") if isinstance(fields, dict) else None
            out[str(lang)] = ExampleStats.from_records(kind, records, int(units) if units else None)
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}
    return out


def _read_run(plan: Plan, store: Store, phase: Phase, run: Run, cache: dict[str, Any]) -> RunResult:
    if run.evaluate not in cache:
        metrics = _read_json(store, join_key(phase.prefix, "metrics.json"))
        if not metrics.get("languages"):
            raise ValueError("metrics.json has no per-language scores")
        dev, source = _dev_score(plan, store, phase, metrics)
        cache[run.evaluate] = (metrics, dev, source, read_example_stats(store, phase, metrics))
    metrics, dev, source, examples = cache[run.evaluate]
    return _run_result(run, metrics, dev=dev, dev_source=source, examples=examples)


def _missing(run: Run, phase: Phase, reason: str, waiting_on: tuple[str, ...] = ()) -> MissingCell:
    return MissingCell(
        encoder=run.encoder, setting=run.setting, target=run.target, seed=run.seed, evaluate=run.evaluate,
        phase=phase.name, reason=reason, waiting_on=waiting_on,
    )  # fmt: skip


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (`...Z` or with an offset) as an aware UTC datetime; None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def phase_cost(store: Store, phase: Phase) -> PhaseCost:
    """Duration from lineage.json (finished_at - started_at) and GPUs from the phase's resources."""
    try:
        lineage = _read_json(store, join_key(phase.prefix, "lineage.json"))
    except (FileNotFoundError, ValueError):
        lineage = {}
    started, finished = lineage.get("started_at"), lineage.get("finished_at")
    start, end = parse_timestamp(started), parse_timestamp(finished)
    seconds = max(0.0, (end - start).total_seconds()) if start and end else None
    nodes = max(1, int(phase.resources.nodes))
    return PhaseCost(
        address=phase.address, name=phase.name, kind=phase.kind,
        started_at=started if isinstance(started, str) else None,
        finished_at=finished if isinstance(finished, str) else None,
        seconds=seconds, gpus=int(phase.resources.gpu) * nodes, nodes=nodes,
    )  # fmt: skip


def _ordered_unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def collect_results(plan: Plan, store: Store) -> Results:
    """Results of every grid cell whose evaluate phase is complete; the rest are listed as missing.

    A complete evaluate phase whose metrics.json cannot be read is listed as missing with the reason
    rather than failing the whole report.
    """
    done = _CompletionCache(plan, store)
    settings = _ordered_unique([r.setting for r in plan.runs])
    if BASELINE in settings:
        settings = [BASELINE] + [s for s in settings if s != BASELINE]
    results = Results(
        sweep=plan.sweep.name, description=plan.sweep.description, store=store.describe(),
        benchmark=plan.sweep.benchmark,
        encoders=_ordered_unique([r.encoder for r in plan.runs]), settings=settings,
        targets=_ordered_unique([r.target for r in plan.runs]), cells=len(plan.runs),
    )  # fmt: skip
    read: dict[str, Any] = {}  # evaluate address -> what was read (seeds sharing a phase read it once)
    for run in plan.runs:
        phase = plan.phases[run.evaluate]
        if not done(run.evaluate):
            results.missing.append(_missing(run, phase, "pending", done.frontier(run.evaluate)))
            continue
        try:
            results.runs.append(_read_run(plan, store, phase, run, read))
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError) as exc:
            results.missing.append(_missing(run, phase, f"unreadable metrics.json: {exc}"))
    results.costs = [phase_cost(store, phase) for address, phase in plan.phases.items() if done(address)]
    results.setting_tasks = {BASELINE: [], **{str(i.name): i.task_names for i in plan.sweep.intermediate}}
    results.alignment, task_sizes = collect_alignment(plan, store, done)
    results.setting_sizes = setting_sizes(plan, task_sizes)
    results.probe_scores = collect_probes(plan, store, done)
    return results

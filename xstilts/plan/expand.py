"""Sweep -> phase DAG. Identical phases (same kind, config and inputs) get the same address and are
computed once: the paper grid (9 intermediate x 9 targets) trains each intermediate model once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xstilts.plan.phase import Phase, content_address
from xstilts.render.settings import ResourcePreset
from xstilts.spec.models import EncoderSpec, IntermediateSpec, Sweep
from xstilts.spec.training import resolve_training
from xstilts.tasks import FORMAT_HPARAMS, TaskDef, get_task, shared_training
from xstilts.tasks.registry import fixture_languages

BASELINE = "baseline"


@dataclass
class Run:
    """One cell of the results grid: (encoder, intermediate setting, target, seed) -> its evaluate phase."""

    encoder: str
    setting: str  # intermediate setting name, or "baseline"
    target: str
    seed: int
    evaluate: str  # address of the evaluate phase


@dataclass
class Plan:
    sweep: Sweep
    phases: dict[str, Phase] = field(default_factory=dict)  # address -> phase, in topological order
    runs: list[Run] = field(default_factory=list)
    analyses: list[str] = field(default_factory=list)  # addresses of analysis phases

    @property
    def requested(self) -> int:
        """Phases of the naive expansion: every result cell computes its whole upstream chain itself."""
        return sum(self.chain_length(run.evaluate) for run in self.runs)

    @property
    def deduplicated(self) -> int:
        return self.requested - len(self.phases)

    def chain_length(self, address: str) -> int:
        phase = self.phases[address]
        return 1 + sum(self.chain_length(a) for a in phase.inputs.values())

    def add(self, phase: Phase) -> str:
        existing = self.phases.get(phase.address)
        if existing is None:
            self.phases[phase.address] = phase
        else:
            existing.settings = sorted(set(existing.settings) | set(phase.settings))
        return phase.address

    def ordered(self) -> list[Phase]:
        return list(self.phases.values())

    def dependants(self, address: str) -> list[Phase]:
        return [p for p in self.phases.values() if address in p.inputs.values()]


def _task_defaults(task: TaskDef) -> dict[str, Any]:
    return {**FORMAT_HPARAMS[task.format], **task.hparams}


def _resources(sweep: Sweep, kind: str) -> ResourcePreset:
    return sweep.resources.get(kind, ResourcePreset())  # type: ignore[call-overload]


def _data_config(sweep: Sweep) -> dict[str, Any]:
    data = sweep.data.model_dump(exclude_none=True)
    if sweep.data.source == "hub":
        data.pop("fixtures_size", None)
    return data


def _languages(sweep: Sweep, task: TaskDef) -> list[str]:
    langs = sweep.languages.get(task.name) or list(task.languages)
    if sweep.data.source == "fixtures":
        langs = fixture_languages(task, langs)
    return langs


class _Expander:
    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.plan = Plan(sweep)
        self.data = _data_config(sweep)

    def training(self, kind: str, tasks: list[TaskDef], extra: Any = None) -> dict[str, Any]:
        sweep = self.sweep
        kind_layer = sweep.intermediate_training if kind == "intermediate" else sweep.target_training
        if kind == "mlm":
            kind_layer = sweep.mlm.training
        task_defaults = _task_defaults(tasks[0]) if len(tasks) == 1 else {}
        task_layers = [sweep.task_training.get(t.name) for t in tasks] if len(tasks) == 1 else []
        config = resolve_training(task_defaults, sweep.training, kind_layer, *task_layers, extra)
        return config.model_dump()

    def encoder(self, spec: EncoderSpec) -> str:
        config: dict[str, Any] = {"model": spec.model, "revision": spec.revision, "data": self.data}
        if spec.model == "tiny":
            config["tiny"] = spec.tiny.model_dump()
        else:
            config.pop("data")
        address = content_address("encoder", config, {})
        return self.plan.add(
            Phase(
                kind="encoder",
                address=address,
                label=spec.name,
                config=config,
                resources=_resources(self.sweep, "encoder"),
                settings=[spec.name],
            )
        )

    def mlm(self, encoder_address: str, spec: EncoderSpec, seed: int) -> str:
        mlm = self.sweep.mlm
        config = {
            "task": "mlm",
            "corpus": mlm.corpus,
            "mask_probability": mlm.mask_probability,
            "seed": seed,
            "data": self.data,
            "training": self.training("mlm", [], None),
            "deepspeed": self.sweep.deepspeed.model_dump(),
        }
        address = content_address("mlm", config, {"encoder": encoder_address})
        return self.plan.add(
            Phase(
                kind="mlm",
                address=address,
                label=f"mlm-{spec.name}",
                config=config,
                inputs={"encoder": encoder_address},
                resources=_resources(self.sweep, "mlm"),
            )
        )

    def intermediate(self, upstream: str, spec: IntermediateSpec, seed: int) -> str:
        tasks = [get_task(n) for n in spec.task_names]
        extra = {"sampling": spec.sampling, "temperature": spec.temperature}
        training = self.training("intermediate", tasks, spec.training)
        training.update({k: v for k, v in extra.items() if len(tasks) > 1})
        config = {
            "task": spec.name,
            "tasks": [t.name for t in tasks],
            "seed": seed,
            "data": self.data,
            "training": training,
            "deepspeed": self.sweep.deepspeed.model_dump(),
        }
        if spec.augment:  # only when used, so that plain settings keep their addresses
            config["augment"] = [a.model_dump() for a in spec.augment]
        address = content_address("intermediate", config, {"encoder": upstream})
        return self.plan.add(
            Phase(
                kind="intermediate",
                address=address,
                label=str(spec.name),
                config=config,
                inputs={"encoder": upstream},
                resources=_resources(self.sweep, "intermediate"),
                settings=[str(spec.name)],
            )
        )

    def target(self, upstream: str, task: TaskDef, seed: int, setting: str) -> str:
        # Targets that fine-tune exactly alike (MLQA and XQuAD on SQuAD) share one phase, unless the sweep
        # gives them different training settings.
        trained = shared_training(task)
        if trained is not task and self.training("target", [trained]) == self.training("target", [task]):
            task = trained
        config = {
            "task": task.name,
            "seed": seed,
            "data": self.data,
            "training": self.training("target", [task]),
            "deepspeed": self.sweep.deepspeed.model_dump(),
        }
        address = content_address("target", config, {"encoder": upstream})
        return self.plan.add(
            Phase(
                kind="target",
                address=address,
                label=task.name,
                config=config,
                inputs={"encoder": upstream},
                resources=_resources(self.sweep, "target"),
                settings=[setting],
            )
        )

    def evaluate(self, upstream: str, task: TaskDef, setting: str, encoder: EncoderSpec) -> str:
        training = self.training("target", [task])
        config = {
            "task": task.name,
            "languages": _languages(self.sweep, task),
            "data": self.data,
            "max_length": training["max_length"],
            "doc_stride": training["doc_stride"],
            "max_eval_examples": training["max_eval_examples"],
            "retrieval_layer": encoder.retrieval_layer,
        }
        if self.sweep.robustness:
            config["perturbations"] = [p.model_dump(exclude={"copies"}) for p in self.sweep.robustness]
        role = "model" if task.needs_target_training else "encoder"
        address = content_address("evaluate", config, {role: upstream})
        return self.plan.add(
            Phase(
                kind="evaluate",
                address=address,
                label=task.name,
                config=config,
                inputs={role: upstream},
                resources=_resources(self.sweep, "evaluate"),
                settings=[setting],
            )
        )

    def analysis(self, encoder_address: str, spec: EncoderSpec) -> str:
        """Domain alignment between every intermediate task and every target task (one phase per encoder)."""
        intermediate = sorted({t for i in self.sweep.intermediate for t in i.task_names})
        targets = [get_task(t).name for t in self.sweep.targets]
        config = {
            "task": "domain-alignment",
            "intermediate_tasks": intermediate,
            "targets": targets,
            "data": self.data,
            "max_examples": self.sweep.analysis.max_examples,
            "retrieval_layer": spec.retrieval_layer,
        }
        address = content_address("analysis", config, {"encoder": encoder_address})
        return self.plan.add(
            Phase(
                kind="analysis",
                address=address,
                label="domain-alignment",
                config=config,
                inputs={"encoder": encoder_address},
                resources=_resources(self.sweep, "evaluate"),
            )
        )

    def expand(self) -> Plan:
        sweep = self.sweep
        targets = [get_task(t) for t in sweep.targets]
        for enc in sweep.encoders:
            base = self.encoder(enc)
            if sweep.analysis.domain_alignment:
                self.plan.analyses.append(self.analysis(base, enc))
            for seed in sweep.seeds:
                start = self.mlm(base, enc, seed) if sweep.mlm.enabled else base
                settings: list[tuple[str, str]] = []
                if sweep.baseline:
                    settings.append((BASELINE, start))
                for spec in sweep.intermediate:
                    settings.append((str(spec.name), self.intermediate(start, spec, seed)))
                for setting, upstream in settings:
                    for task in targets:
                        if task.needs_target_training:
                            model = self.target(upstream, task, seed, setting)
                            evaluation = self.evaluate(model, task, setting, enc)
                        else:
                            evaluation = self.evaluate(upstream, task, setting, enc)
                        self.plan.runs.append(Run(enc.name, setting, task.name, seed, evaluation))
        return self.plan


def expand(sweep: Sweep) -> Plan:
    """The phase DAG of a sweep, deduplicated, in topological order (inputs before their users)."""
    return _Expander(sweep).expand()

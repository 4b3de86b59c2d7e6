"""Sweep -> phase DAG. Identical phases (same kind, config and inputs) get the same address and are
computed once: the paper grid (9 intermediate x 9 targets) trains each intermediate model once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xstilts.plan.configs import (
    AnalysisConfig,
    BuccProtocol,
    EncoderConfig,
    EvaluateConfig,
    IntermediateConfig,
    MixtureMLM,
    MLMConfig,
    TargetConfig,
)
from xstilts.plan.phase import Phase, content_address
from xstilts.spec.cluster import ResourcePreset
from xstilts.spec.kinds import KINDS
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
    search: Any = None  # xstilts.plan.search.SearchPlan when the sweep has `search:`
    # (encoder, task) -> the difficulty probe: an intermediate phase with a short fixed budget
    probes: dict[tuple[str, str], str] = field(default_factory=dict)

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


def _task_defaults(task: TaskDef) -> dict[str, Any]:
    return {**FORMAT_HPARAMS[task.format], **task.hparams}


def _resources(sweep: Sweep, kind: str) -> ResourcePreset:
    """The fields the sweep's `resources:` block sets for the kind's preset (the rest: defaults)."""
    return sweep.resources.get(KINDS[kind].preset, ResourcePreset())


def _data_config(sweep: Sweep) -> dict[str, Any]:
    data = sweep.data.model_dump(exclude_none=True)
    if sweep.data.source == "hub":
        data.pop("fixtures_size", None)
    return data


def _languages(sweep: Sweep, task: TaskDef) -> list[str]:
    """The sweep's languages for `task`: its subset, else exactly the benchmark's (fixtures: those with
    fixture data)."""
    langs = sweep.languages.get(task.name) or list(task.benchmark_languages(sweep.benchmark))
    if sweep.data.source == "fixtures":
        langs = fixture_languages(task, langs)
    return langs


class _Expander:
    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.plan = Plan(sweep)
        self.data = _data_config(sweep)

    def training(
        self, kind: str, tasks: list[TaskDef], extra: Any = None, size_cap: int | None = None
    ) -> dict[str, Any]:
        sweep = self.sweep
        kind_layer = sweep.intermediate_training if kind == "intermediate" else sweep.target_training
        if kind == "mlm":
            kind_layer = sweep.mlm.training
        task_defaults = _task_defaults(tasks[0]) if len(tasks) == 1 else {}
        task_layers = [sweep.task_training.get(t.name) for t in tasks] if len(tasks) == 1 else []
        config = resolve_training(task_defaults, sweep.training, kind_layer, *task_layers, extra)
        if size_cap is not None:  # `controls.size_match: N`: the same as capping the training set at N
            cap = min(size_cap, config.max_train_examples or size_cap)
            config = config.model_copy(update={"max_train_examples": cap})
        return config.model_dump()

    def encoder(self, spec: EncoderSpec) -> str:
        # "checkpoint": the phase saves the masked-LM checkpoint (encoder + pretrained LM head); encoder
        # phases from before it saved the bare encoder and must not be reused for MLM.
        tiny = {"data": self.data, "tiny": spec.tiny} if spec.model == "tiny" else {}
        config = EncoderConfig(model=spec.model, revision=spec.revision, checkpoint="masked-lm", **tiny)
        address = content_address("encoder", config.dump(), {})
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
        config = MLMConfig(
            task="mlm",
            corpus=mlm.corpus,
            mask_probability=mlm.mask_probability,
            seed=seed,
            data=self.data,
            training=self.training("mlm", [], None),
            deepspeed=self.sweep.deepspeed,
        )
        address = content_address("mlm", config.dump(), {"encoder": encoder_address})
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
        extra = {
            "sampling": spec.sampling,
            "temperature": spec.temperature,
            "examples_cap": spec.examples_cap,
        }
        size_match = self.sweep.controls.size_match
        size_cap = size_match if isinstance(size_match, int) else None
        training = self.training("intermediate", tasks, spec.training, size_cap)
        training.update({k: v for k, v in extra.items() if len(tasks) > 1 and v is not None})
        optional: dict[str, Any] = {}  # only when used, so that plain settings keep their addresses
        if size_match == "smallest":  # resolved when the phase runs: the smallest task's training size
            optional["size_match"] = self.size_match_pool()
        if spec.augment:
            optional["augment"] = [
                a.model_dump(exclude={"seeds", "budget", "candidates"}) for a in spec.augment
            ]
            optional["match_steps"] = self.sweep.controls.match_steps
        if spec.uses_mlm:  # MLM as a task of the mixture, on the sweep's corpus
            optional["mlm"] = MixtureMLM(
                corpus=self.sweep.mlm.corpus, mask_probability=self.sweep.mlm.mask_probability
            )
        config = IntermediateConfig(
            task=spec.name,
            tasks=[t.name for t in tasks],
            seed=seed,
            data=self.data,
            training=training,
            deepspeed=self.sweep.deepspeed,
            **optional,
        )
        address = content_address("intermediate", config.dump(), {"encoder": upstream})
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

    def size_match_pool(self) -> list[str]:
        """The intermediate tasks whose smallest training set caps them all (MLM is not a task here)."""
        return sorted({t for spec in self.sweep.intermediate for t in spec.task_names if t != "mlm"})

    def target(self, upstream: str, task: TaskDef, seed: int, setting: str) -> str:
        # Targets that fine-tune exactly alike (MLQA and XQuAD on SQuAD) share one phase, unless the sweep
        # gives them different training settings.
        trained = shared_training(task)
        if trained is not task and self.training("target", [trained]) == self.training("target", [task]):
            task = trained
        config = TargetConfig(
            task=task.name,
            seed=seed,
            data=self.data,
            training=self.training("target", [task]),
            deepspeed=self.sweep.deepspeed,
        )
        address = content_address("target", config.dump(), {"encoder": upstream})
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
        optional: dict[str, Any] = dict(self.protocol(task))
        if self.sweep.robustness:
            optional["perturbations"] = [p.evaluation_config() for p in self.sweep.robustness]
        config = EvaluateConfig(
            task=task.name,
            languages=_languages(self.sweep, task),
            data=self.data,
            max_length=training["max_length"],
            doc_stride=training["doc_stride"],
            max_eval_examples=training["max_eval_examples"],
            retrieval_layer=encoder.retrieval_layer,
            **optional,
        )
        role = "model" if task.needs_target_training else "encoder"
        address = content_address("evaluate", config.dump(), {role: upstream})
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

    def protocol(self, task: TaskDef) -> dict[str, str | BuccProtocol]:
        """Evaluation protocol options of the retrieval tasks that have them (only there, so other
        evaluate phases keep their addresses)."""
        evaluation = self.sweep.evaluation
        if task.metric == "tatoeba_accuracy":
            return {"direction": evaluation.tatoeba.direction}
        if task.metric == "bucc_f1":
            pairs = evaluation.bucc.pairs
            if pairs == "auto":
                files = self.sweep.data.source == "fixtures" or bool(self.sweep.data.bucc_path)
                pairs = "mining" if files else "gold_only"
            return {"bucc": BuccProtocol(pairs=pairs, duplicates=evaluation.bucc.duplicates)}
        return {}

    def analysis(self, encoder_address: str, spec: EncoderSpec) -> str:
        """Domain alignment between every intermediate task and every target task (one phase per encoder)."""
        intermediate = sorted({t for i in self.sweep.intermediate for t in i.task_names})
        targets = [get_task(t).name for t in self.sweep.targets]
        config = AnalysisConfig(
            task="domain-alignment",
            intermediate_tasks=intermediate,
            targets=targets,
            data=self.data,
            max_examples=self.sweep.analysis.max_examples,
            seed=self.sweep.analysis.seed,
            same_corpus=self.sweep.analysis.same_corpus,
            languages={t: _languages(self.sweep, get_task(t)) for t in targets},
            retrieval_layer=spec.retrieval_layer,
        )
        address = content_address("analysis", config.dump(), {"encoder": encoder_address})
        return self.plan.add(
            Phase(
                kind="analysis",
                address=address,
                label="domain-alignment",
                config=config,
                inputs={"encoder": encoder_address},
                resources=_resources(self.sweep, "analysis"),
            )
        )

    def probe(self, encoder_address: str, task: TaskDef) -> str:
        """The difficulty probe of `task`: the plain encoder trained `probe_steps` steps on it, scored once
        on its English dev set at the end (the sweep's first seed)."""
        steps = self.sweep.analysis.probe_steps
        budget = {"total_steps": steps, "select_best": True, "checkpoint_every": steps}
        training = self.training("intermediate", [task], None)
        training = resolve_training(training, budget).model_dump()
        config = IntermediateConfig(
            task=f"probe-{task.name}", tasks=[task.name], seed=self.sweep.seeds[0], data=self.data,
            training=training, deepspeed=self.sweep.deepspeed,
        )  # fmt: skip
        address = content_address("intermediate", config.dump(), {"encoder": encoder_address})
        return self.plan.add(
            Phase(
                kind="intermediate",
                address=address,
                label=f"probe-{task.name}",
                config=config,
                inputs={"encoder": encoder_address},
                resources=_resources(self.sweep, "intermediate"),
            )  # fmt: skip
        )

    def expand(self) -> Plan:
        sweep = self.sweep
        targets = [get_task(t) for t in sweep.targets]
        for enc in sweep.encoders:
            base = self.encoder(enc)
            if sweep.analysis.domain_alignment:
                self.plan.analyses.append(self.analysis(base, enc))
            if sweep.analysis.difficulty_probe:
                for name in sorted({t for spec in sweep.intermediate for t in spec.task_names if t != "mlm"}):
                    task = get_task(name)
                    if task.dev is not None:
                        self.plan.probes[(enc.name, task.name)] = self.probe(base, task)
            for seed in sweep.seeds:
                start = self.mlm(base, enc, seed) if sweep.mlm.enabled else base
                settings: list[tuple[str, str]] = []
                if sweep.baseline:  # the baseline is the plain encoder: never MLM-trained
                    settings.append((BASELINE, base))
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
    plan = _Expander(sweep).expand()
    if sweep.search is not None:  # successive halving: rung phases before each intermediate phase
        from xstilts.plan.search import add_rungs

        plan.search = add_rungs(plan)
    return plan

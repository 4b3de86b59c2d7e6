"""The task registry (one entry per task) and the formats tasks share."""

from xstilts.tasks.base import DIFFICULTY_LEVELS, FORMAT_HPARAMS, Format, Role, Source, TaskDef
from xstilts.tasks.registry import (
    BENCHMARKS,
    REGISTRY,
    all_tasks,
    benchmark_targets,
    fixture_languages,
    get_task,
    shared_training,
)

__all__ = [
    "BENCHMARKS",
    "DIFFICULTY_LEVELS",
    "FORMAT_HPARAMS",
    "REGISTRY",
    "Format",
    "Role",
    "Source",
    "TaskDef",
    "all_tasks",
    "benchmark_targets",
    "fixture_languages",
    "get_task",
    "shared_training",
]

"""Sweep files: pydantic models and a loader whose errors name file, field and fix."""

from xstilts.spec.load import load_sweep, parse_sweep
from xstilts.spec.models import DataSpec, EncoderSpec, IntermediateSpec, Sweep, TinyModelSpec
from xstilts.spec.training import TrainingConfig, TrainingOverrides, resolve_training

__all__ = [
    "DataSpec",
    "EncoderSpec",
    "IntermediateSpec",
    "Sweep",
    "TinyModelSpec",
    "TrainingConfig",
    "TrainingOverrides",
    "load_sweep",
    "parse_sweep",
    "resolve_training",
]

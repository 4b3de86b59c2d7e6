"""A phase: one unit of work with a content address. Kinds, in DAG order:

encoder (materialise the base encoder + tokenizer in the store) -> mlm (optional) -> intermediate ->
target -> evaluate. Retrieval targets (BUCC, Tatoeba) are evaluated straight from an encoder-bearing
phase (intermediate, mlm or encoder) with no target phase.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xstilts.render.settings import ResourcePreset

PhaseKind = Literal["encoder", "mlm", "intermediate", "target", "evaluate", "analysis"]
KIND_ORDER: tuple[str, ...] = ("encoder", "mlm", "intermediate", "target", "evaluate", "analysis")
# Bump when a phase's outputs change meaning, so old results are not reused by mistake.
ADDRESS_VERSION = 1
ADDRESS_LENGTH = 12


def content_address(kind: str, config: dict[str, Any], inputs: dict[str, str]) -> str:
    """A short hash of the phase kind, its resolved config and the addresses of its inputs."""
    payload = json.dumps(
        {"v": ADDRESS_VERSION, "kind": kind, "config": config, "inputs": inputs},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:ADDRESS_LENGTH]


class Phase(BaseModel):
    """Everything a phase needs to run; written to the store as `specs/<address>.json` at submit time."""

    model_config = ConfigDict(extra="forbid")

    kind: PhaseKind
    address: str
    label: str = Field(description="what the phase is called in human-facing places, e.g. 'mnli'")
    config: dict[str, Any]
    inputs: dict[str, str] = Field(default_factory=dict, description="role -> upstream address")
    resources: ResourcePreset = Field(default_factory=ResourcePreset)
    # Setting names the sweep uses for this phase (several sweeps may share one phase; not addressed).
    settings: list[str] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.label}@{self.address[:8]}"

    @property
    def prefix(self) -> str:
        return phase_prefix(self.kind, self.address)

    @property
    def task(self) -> str:
        return str(self.config.get("task", self.label))


def phase_prefix(kind: str, address: str) -> str:
    return f"phases/{kind}/{address}"


def spec_key(address: str) -> str:
    return f"specs/{address}.json"

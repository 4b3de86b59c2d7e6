"""A phase: one unit of work with a content address. Kinds, in DAG order:

encoder (materialise the base encoder + tokenizer in the store) -> mlm (optional) -> intermediate ->
target -> evaluate. Retrieval targets (BUCC, Tatoeba) are evaluated straight from an encoder-bearing
phase (intermediate, mlm or encoder) with no target phase. `taskemb` (task embeddings of one task under
one encoder, for `xstilts suggest`) reads an encoder phase.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer, model_validator

from xstilts.errors import InvalidAddressError
from xstilts.plan.configs import PhaseConfig
from xstilts.spec.cluster import ResourcePreset
from xstilts.spec.kinds import KINDS, PhaseKind

# Bump when a phase's outputs change meaning, so old results are not reused by mistake.
ADDRESS_VERSION = 1
ADDRESS_LENGTH = 12
ADDRESS_PATTERN = f"^[0-9a-f]{{{ADDRESS_LENGTH}}}$"
_ADDRESS = re.compile(ADDRESS_PATTERN)
Address = Annotated[str, StringConstraints(pattern=ADDRESS_PATTERN)]


def is_address(text: object) -> bool:
    """Whether `text` is a content address: exactly ADDRESS_LENGTH lowercase hex digits."""
    return isinstance(text, str) and _ADDRESS.fullmatch(text) is not None


def check_address(text: str) -> str:
    """`text` if it is a content address; else InvalidAddressError (exit 3). Called before any path or
    store key is built from an address, so `../x` can never name a file."""
    if not is_address(text):
        raise InvalidAddressError(
            f"{text!r} is not a phase address",
            fix=f"give the {ADDRESS_LENGTH} lowercase hex digits that `xstilts sweep plan` prints",
        )
    return text


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
    address: Address
    label: str = Field(description="what the phase is called in human-facing places, e.g. 'mnli'")
    # Its kind's config model (plan/configs.py); stored and hashed as the plain dict it dumps to.
    config: PhaseConfig
    inputs: dict[str, Address] = Field(default_factory=dict, description="role -> upstream address")
    resources: ResourcePreset = Field(default_factory=ResourcePreset)
    # Setting names the sweep uses for this phase (several sweeps may share one phase; not addressed).
    settings: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _config_of_its_kind(cls, data: Any) -> Any:
        """A config given as a dict (a stored spec) is read as the model of the phase's kind."""
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            data = {**data, "config": {**data["config"], "kind": data.get("kind")}}
        return data

    @model_validator(mode="after")
    def _config_matches_the_kind(self) -> Phase:
        if self.config.kind != self.kind:
            raise ValueError(f"a {self.config.kind} config for a {self.kind} phase")
        return self

    @field_serializer("config")
    def _config_as_hashed(self, config: Any) -> dict[str, Any]:
        return config.dump()

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.label}@{self.address[:8]}"

    @property
    def prefix(self) -> str:
        return phase_prefix(self.kind, self.address)

    @property
    def task(self) -> str:
        return str(getattr(self.config, "task", self.label))

    def computed_address(self) -> str:
        """The address this spec's content hashes to (equal to `address` unless the spec was edited)."""
        return content_address(self.kind, self.config.dump(), self.inputs)


def phase_prefix(kind: str, address: str) -> str:
    if kind not in KINDS:
        raise InvalidAddressError(f"{kind!r} is not a phase kind", fix=f"use one of {', '.join(KINDS)}")
    return f"phases/{kind}/{check_address(address)}"


def spec_key(address: str) -> str:
    return f"specs/{check_address(address)}.json"

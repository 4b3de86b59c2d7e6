"""Kubernetes resource quantities (`cpu: "2"`, `memory: 64Gi`) checked when the sweep is read: a value
the API server would refuse (`64GB`, `eight`) is a configuration error naming the field, not a Job that
fails at submit time."""

from __future__ import annotations

import re
from typing import Any

from xstilts.errors import ConfigError

# The grammar of resource.Quantity: a decimal number, then a binary (Ki..Ei) or decimal (n, u, m, k,
# M..E) suffix or a decimal exponent (1e3).
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FIELDS = {
    "cpu": 'a number of cores, e.g. "8" or "500m"',
    "memory": "bytes with a suffix, e.g. 64Gi or 512Mi (Gi, not GB)",
    "shm_size": "bytes with a suffix, e.g. 1Gi",
    "shmSize": "bytes with a suffix, e.g. 1Gi",
    "ephemeral_storage": "bytes with a suffix, e.g. 100Gi",
    "ephemeralStorage": "bytes with a suffix, e.g. 100Gi",
}


def is_quantity(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and value >= 0
        or isinstance(value, str)
        and bool(_QUANTITY.match(value))
    )


def check_presets(presets: dict[str, Any], file: str, where: str) -> None:
    """Every quantity in `{kind: {cpu, memory, ...}}` (the sweep's `resources:` or
    `kubernetes.presets`)."""
    for kind, preset in presets.items():
        values = preset if isinstance(preset, dict) else getattr(preset, "model_dump", dict)(by_alias=True)
        for key, value in values.items():
            if key in _FIELDS and value is not None and not is_quantity(value):
                raise ConfigError(
                    f"{value!r} is not a Kubernetes quantity",
                    file=file,
                    field=f"{where}.{kind}.{key}",
                    fix=f"give {_FIELDS[key]}",
                )

"""Training state for resume, in formats that cannot run code: tensors in safetensors, everything else
in JSON. A checkpoint directory holds exactly

| file | what |
|---|---|
| `model.safetensors` | the (unwrapped) model's weights and buffers |
| `optimizer.safetensors`, `optimizer.json` | the optimizer's state tensors, and the rest of its state dict |
| `scheduler.json` | the learning-rate scheduler's state dict |
| `scaler.json` | the fp16 gradient scaler's state (mixed precision fp16 only) |
| `rng-<rank>.json`, `rng-<rank>.safetensors` | Python, NumPy, torch and CUDA random states of each process |
| `trainer_state.json` | step, counters, loss windows, dev history (written by the Checkpointer) |

Nothing in xstilts unpickles a checkpoint: `check_files` refuses a checkpoint whose manifest lists any
other file (the `*.pkl` / `*.bin` of Accelerate's own format, which `torch.load(weights_only=False)`
would execute), before anything is downloaded. DeepSpeed engines keep their sharded state in their own
format (`torch.save`); it is read with every `torch.load` forced to `weights_only=True` and an explicit
allow-list of DeepSpeed's data classes (`weights_only_loads`), so a planted pickle is refused there too.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from xstilts.errors import UntrustedContentError

FORMAT = "xstilts-train-state/1"
MODEL = "model.safetensors"
OPTIMIZER_TENSORS, OPTIMIZER_INDEX = "optimizer.safetensors", "optimizer.json"
SCHEDULER = "scheduler.json"
SCALER = "scaler.json"
TRAINER_STATE = "trainer_state.json"
DEEPSPEED_DIR = "deepspeed"  # a DeepSpeed engine's own checkpoint (see the module docstring)
_RNG = re.compile(r"rng-\d+\.(json|safetensors)")
# What a DeepSpeed engine's checkpoint may hold: the tag file and the engine's state files under its tag.
_DEEPSPEED = re.compile(DEEPSPEED_DIR + r"/(latest|[A-Za-z0-9_.-]+/[A-Za-z0-9_]+_states\.pt)")
_TAG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_FIXED = {MODEL, OPTIMIZER_TENSORS, OPTIMIZER_INDEX, SCHEDULER, SCALER, TRAINER_STATE}


def rng_files(rank: int) -> tuple[str, str]:
    return f"rng-{rank}.json", f"rng-{rank}.safetensors"


def check_files(paths: list[str], where: str, *, deepspeed: bool = False) -> None:
    """Refuse a checkpoint that holds anything but the files above (UntrustedContentError, exit 3)."""
    for path in paths:
        if path in _FIXED or _RNG.fullmatch(path):
            continue
        if deepspeed and _DEEPSPEED.fullmatch(path) and ".." not in path:
            continue
        kind = (
            "a pickle, which can run code when loaded"
            if path.endswith((".pkl", ".bin", ".pt", ".pth"))
            else "a file of no xstilts checkpoint format"
        )
        raise UntrustedContentError(
            f"checkpoint {where} holds {path}, {kind}: refusing to resume from it (nothing was loaded; fix: "
            f"delete {where} so that the phase resumes from an earlier checkpoint or starts over, and find "
            "out who could write to the store)"
        )


# ---- a tree of containers and tensors <-> JSON + safetensors ------------------------------------------


def encode(tree: Any, tensors: dict[str, torch.Tensor], path: str = "t") -> Any:
    """`tree` as JSON-able data; its tensors go into `tensors` under generated names. Only None, bools,
    numbers, strings, tensors, lists, tuples and dicts are accepted: anything else is a bug to report,
    never something to pickle."""
    if tree is None or isinstance(tree, bool | int | str):
        return tree
    if isinstance(tree, float):
        return tree if math.isfinite(tree) else {"__float__": repr(tree)}
    if isinstance(tree, torch.Tensor):
        name = f"{path}.{len(tensors)}"
        tensors[name] = tree.detach().cpu().contiguous().clone()
        return {"__tensor__": name}
    if isinstance(tree, list):
        return [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(tree)]
    if isinstance(tree, tuple):
        return {"__tuple__": [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in tree):
            return {k: encode(v, tensors, f"{path}.{k}") for k, v in tree.items()}
        return {
            "__items__": [
                [encode(k, tensors, f"{path}.k{i}"), encode(v, tensors, f"{path}.v{i}")]
                for i, (k, v) in enumerate(tree.items())
            ]
        }
    raise TypeError(f"cannot store a {type(tree).__name__} at {path} in a checkpoint")


def decode(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(data, list):
        return [decode(v, tensors) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tensor__" in data:
        return tensors[data["__tensor__"]]
    if "__tuple__" in data:
        return tuple(decode(v, tensors) for v in data["__tuple__"])
    if "__float__" in data:
        return float(data["__float__"])
    if "__items__" in data:
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in data["__items__"]}
    return {k: decode(v, tensors) for k, v in data.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def write_tree(tree: Any, index: Path, tensor_file: Path | None = None) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    data = encode(tree, tensors)
    if tensors:
        if tensor_file is None:
            raise TypeError(f"{index.name} may not hold tensors")
        save_file(tensors, str(tensor_file))
    index.write_text(json.dumps(data, sort_keys=True))


def read_tree(index: Path, tensor_file: Path | None = None, device: str = "cpu") -> Any:
    from safetensors.torch import load_file

    tensors = (
        load_file(str(tensor_file), device=device)
        if tensor_file is not None and tensor_file.is_file()
        else {}
    )
    return decode(json.loads(index.read_text()), tensors)


# ---- random states --------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in state["cuda"]])


# ---- the whole training state -------------------------------------------------------------------------


def save(accelerator: Any, model: torch.nn.Module, optimizer: Any, scheduler: Any, directory: Path) -> None:
    """Write this process's share of the training state to `directory` (every rank calls it)."""
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rank = accelerator.process_index
    rng_index, rng_tensors = rng_files(rank)
    write_tree(rng_state(), directory / rng_index, directory / rng_tensors)
    if accelerator.state.deepspeed_plugin is not None:
        # ZeRO shards optimizer state across ranks: the engine writes (and every rank takes part). What
        # Accelerate adds beside it (its pickled random states, DeepSpeed's conversion scripts) is not
        # kept: the random states are in rng-<rank>.*, and a checkpoint holds no code.
        engine_dir = directory / DEEPSPEED_DIR
        accelerator.save_state(str(engine_dir))
        for extra in [*engine_dir.glob("*.pkl"), *engine_dir.glob("*.py")]:
            extra.unlink()
    elif accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), str(directory / MODEL))
        write_tree(optimizer.state_dict(), directory / OPTIMIZER_INDEX, directory / OPTIMIZER_TENSORS)
    if accelerator.is_main_process:
        write_tree(scheduler.state_dict(), directory / SCHEDULER)
        if getattr(accelerator, "scaler", None) is not None:
            write_tree(accelerator.scaler.state_dict(), directory / SCALER)


def load(
    accelerator: Any,
    model: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    directory: Path,
    where: str | None = None,
) -> None:
    """Restore what `save` wrote: weights, optimizer, scheduler, scaler and this rank's random states.
    A file that does not parse as what it should be is UntrustedContentError (exit 3), never a traceback;
    `where` names the checkpoint in that message."""
    from safetensors import SafetensorError

    try:
        _load(accelerator, model, optimizer, scheduler, Path(directory), where or str(directory))
    except UntrustedContentError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError, SafetensorError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise UntrustedContentError(
            f"checkpoint {where or directory} cannot be read as xstilts training state "
            f"({type(exc).__name__}: {first}): refusing to resume from it (fix: delete the checkpoint)"
        ) from None


def _load(
    accelerator: Any, model: torch.nn.Module, optimizer: Any, scheduler: Any, directory: Path, where: str
) -> None:
    if accelerator.state.deepspeed_plugin is not None:
        _load_engine(accelerator, directory, where)
    else:
        load_weights(accelerator, model, directory, where)
        optimizer.load_state_dict(read_tree(directory / OPTIMIZER_INDEX, directory / OPTIMIZER_TENSORS))
    scheduler.load_state_dict(read_tree(directory / SCHEDULER))
    if (directory / SCALER).is_file() and getattr(accelerator, "scaler", None) is not None:
        accelerator.scaler.load_state_dict(read_tree(directory / SCALER))
    rng_index, rng_tensors = rng_files(accelerator.process_index)
    if (directory / rng_index).is_file():  # absent for ranks on another node: they keep their seeded state
        set_rng_state(read_tree(directory / rng_index, directory / rng_tensors))


def load_weights(accelerator: Any, model: torch.nn.Module, directory: Path, where: str | None = None) -> None:
    """Only the model's weights (model selection at the end of training)."""
    directory = Path(directory)
    if accelerator.state.deepspeed_plugin is not None:
        _load_engine(accelerator, directory, where or str(directory))
        return
    from safetensors.torch import load_model

    load_model(accelerator.unwrap_model(model), str(directory / MODEL), strict=True)


# ---- DeepSpeed: torch.load only with weights_only=True ----------------------------------------------------


def _load_engine(accelerator: Any, directory: Path, where: str) -> None:
    """The DeepSpeed engine's state, from the tag that `latest` names (a plain name of a directory in
    this checkpoint, never a path elsewhere), with every torch.load restricted."""
    engine_dir = directory / DEEPSPEED_DIR
    tag = (engine_dir / "latest").read_text().strip() if (engine_dir / "latest").is_file() else ""
    if not _TAG.fullmatch(tag) or not (engine_dir / tag).is_dir():
        raise UntrustedContentError(
            f"checkpoint {where}: DeepSpeed's `latest` names {tag!r}, not a directory of the "
            "checkpoint: refusing to load it (fix: delete the checkpoint)"
        )
    with weights_only_loads(where):
        accelerator.load_state(str(engine_dir))


def _deepspeed_safe_globals() -> list[Any]:
    """DeepSpeed's data classes that its checkpoints reference (plain state, no code on load)."""
    found: list[Any] = []
    for module, names in (
        ("deepspeed.runtime.fp16.loss_scaler", ("LossScaler", "DynamicLossScaler")),
        ("deepspeed.runtime.zero.config", ("ZeroStageEnum",)),
        ("deepspeed.utils.tensor_fragment", ("fragment_address",)),
    ):
        try:
            imported = __import__(module, fromlist=list(names))
        except ImportError:
            continue
        found.extend(getattr(imported, name) for name in names if hasattr(imported, name))
    return found


@contextmanager
def weights_only_loads(where: Path | str) -> Iterator[None]:
    """Every `torch.load` in the block runs with `weights_only=True` (whatever its caller asked for) and
    the DeepSpeed allow-list; a pickle that references anything else is refused (exit 3)."""
    original = torch.load

    def guarded(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = guarded  # type: ignore[assignment]
    try:
        with torch.serialization.safe_globals(_deepspeed_safe_globals()):
            yield
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = found.group(1) if found else "a global"
        raise UntrustedContentError(
            f"checkpoint {where} holds a pickle that references {what}, which is not on the allow-list of "
            "data classes: refusing to load it (fix: delete the checkpoint, and find out who could write "
            "to the store)"
        ) from None
    finally:
        torch.load = original  # type: ignore[assignment]

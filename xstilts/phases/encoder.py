"""The encoder phase: materialise the base encoder and tokenizer in the store, once per sweep family.
`tiny` builds the offline random-init masked LM; anything else is loaded with `from_pretrained` at the
pinned `revision` (tokenizer AND weights). The checkpoint is saved with its masked-LM head, so the MLM
phase and MLM in a mixture continue the pretrained head; `AutoModel.from_pretrained(model/)` still
loads just the encoder."""

from __future__ import annotations

from typing import Any

from xstilts.data.fixtures import corpus_lines
from xstilts.errors import ConfigError
from xstilts.modeling.tiny import build_tiny_encoder
from xstilts.phases.context import PhaseContext

_NOT_RETRYABLE = ("HFValidationError", "RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError")


def model_config_problem(exc: BaseException, model: str, revision: str | None) -> ConfigError | None:
    """A model that cannot be loaded because of what the sweep says (a malformed or unknown id or
    revision, a gated repository, offline with the model not cached) is a configuration error: the phase
    exits 3 and is not retried. None for anything else (a network error is retried)."""
    import os

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    names = {type(e).__name__ for e in chain}
    message = str(exc).splitlines()[0]
    at = f" at revision {revision}" if revision else ""
    if names & set(_NOT_RETRYABLE):
        fix = "give a Hugging Face model id (namespace/name) or an existing local directory"
    elif "LocalEntryNotFoundError" in names and os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        fix = "it is not in the Hugging Face cache and HF_HUB_OFFLINE is set: download it once online"
    else:
        return None
    return ConfigError(f"model {model!r}{at} cannot be loaded: {message}", field="encoders.model", fix=fix)


def save_pretrained_checkpoint(model: str, revision: str | None, out_dir) -> bool:
    """Save `model` at `revision` to `out_dir` with its LM head; returns whether the head was kept.

    A model the hub has no masked-LM class or head weights for is saved as the bare encoder (MLM on it
    is then refused with a clear message instead of training a random head)."""
    from transformers import AutoTokenizer

    from xstilts.modeling.mlm import MissingLMHeadError, load_masked_lm
    from xstilts.modeling.model import load_encoder

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
        try:
            weights = load_masked_lm(model, revision=revision)
            has_head = True
        except (MissingLMHeadError, ValueError):  # ValueError: no masked-LM class for this architecture
            weights = load_encoder(model, revision=revision)
            has_head = False
    except OSError as exc:
        problem = model_config_problem(exc, model, revision)
        if problem is None:
            raise  # a network error or the like: worth retrying
        raise problem from None
    weights.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return has_head


def run(ctx: PhaseContext) -> dict[str, Any]:
    config = ctx.config
    model_dir = ctx.out / "model"
    if config.model == "tiny":
        ctx.progress.event("build_tiny_encoder", **config.tiny.model_dump())
        build_tiny_encoder(model_dir, corpus_lines(), config.tiny.model_dump())
        has_head = True
    else:
        ctx.progress.event("download_encoder", model=config.model, revision=config.revision)
        has_head = save_pretrained_checkpoint(config.model, config.revision, model_dir)
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(model_dir)
    return {
        "model_type": hf_config.model_type,
        "hidden_size": hf_config.hidden_size,
        "num_hidden_layers": hf_config.num_hidden_layers,
        "vocab_size": hf_config.vocab_size,
        "revision": config.revision,
        "lm_head": has_head,
    }

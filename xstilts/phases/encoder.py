"""The encoder phase: materialise the base encoder and tokenizer in the store, once per sweep family.
`tiny` builds the offline random-init encoder; anything else is loaded with `from_pretrained`."""

from __future__ import annotations

from typing import Any

from xstilts.data.fixtures import corpus_lines
from xstilts.modeling.tiny import build_tiny_encoder
from xstilts.phases.context import PhaseContext


def run(ctx: PhaseContext) -> dict[str, Any]:
    config = ctx.config
    model_dir = ctx.out / "model"
    if config["model"] == "tiny":
        ctx.progress.event("build_tiny_encoder", **config["tiny"])
        build_tiny_encoder(model_dir, corpus_lines(), config["tiny"])
    else:
        from transformers import AutoTokenizer

        from xstilts.modeling.model import load_encoder

        ctx.progress.event("download_encoder", model=config["model"], revision=config.get("revision"))
        tokenizer = AutoTokenizer.from_pretrained(config["model"], revision=config.get("revision"))
        encoder = (
            load_encoder(config["model"]) if not config.get("revision") else load_encoder(config["model"])
        )
        encoder.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(model_dir)
    return {
        "model_type": hf_config.model_type,
        "hidden_size": hf_config.hidden_size,
        "num_hidden_layers": hf_config.num_hidden_layers,
        "vocab_size": hf_config.vocab_size,
    }

"""The pretrained masked-LM head, for MLM as a task in an intermediate mixture and for the MLM phase.

The encoder phase saves the hub checkpoint with its LM head (`AutoModelForMaskedLM`), so continued MLM
starts from the pretrained head instead of a random one. A checkpoint without it (an encoder phase of an
older xstilts, a model the hub has no LM head for) is refused rather than silently re-initialised.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from xstilts.errors import PhaseFailedError


class MissingLMHeadError(PhaseFailedError):
    """The model directory holds no pretrained LM head."""


def load_masked_lm(path: str | Path, revision: str | None = None):
    """`AutoModelForMaskedLM` from `path` (a directory or hub id), refusing one whose LM head would be
    newly initialised (weights missing from the checkpoint; the tied decoder weight is not missing)."""
    from transformers import AutoModelForMaskedLM

    model, info = AutoModelForMaskedLM.from_pretrained(
        path, revision=revision, output_loading_info=True, attn_implementation="sdpa"
    )
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith("decoder.weight"))
    if missing:
        raise MissingLMHeadError(
            f"{path} has no pretrained masked-LM head (missing {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}): MLM would start from a random head. Re-run the encoder "
            "phase with this xstilts (it saves the LM head), or use an encoder that has one"
        )
    return model


def _head_module(masked_lm) -> nn.Module:
    heads = [m for name, m in masked_lm.named_children() if name != masked_lm.base_model_prefix]
    if len(heads) != 1:
        raise ValueError(f"cannot find the LM head of {type(masked_lm).__name__}")
    return heads[0]


class MaskedLMHead(nn.Module):
    """The checkpoint's LM head (dense + norm + decoder tied to the encoder's input embeddings) on the
    shared encoder's hidden states; cross-entropy over the masked positions (-100 elsewhere)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.head(hidden)
        labels = batch.get("labels")
        if labels is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def pretrained_mlm_head(path: str | Path, encoder: nn.Module) -> MaskedLMHead:
    """The LM head saved at `path`, its decoder tied to `encoder`'s word embeddings (as in the checkpoint)."""
    masked_lm = load_masked_lm(path)
    head = _head_module(masked_lm)
    decoder = masked_lm.get_output_embeddings()
    if decoder is None:
        raise ValueError(f"{type(masked_lm).__name__} has no output embeddings to tie")
    decoder.weight = encoder.get_input_embeddings().weight
    return MaskedLMHead(head)

"""The offline tiny encoder: a Unigram tokenizer trained on the fixture text of every fixture language,
wrapped as `XLMRobertaTokenizerFast`, and a random-init `XLMRobertaConfig` model with its masked-LM head
(as a hub checkpoint has one). Saved in `save_pretrained` format, so every `Auto*` class reloads it with
`HF_HUB_OFFLINE=1`: `AutoModel` the encoder, `AutoModelForMaskedLM` the encoder and the same LM head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
SCORE_DIGITS = 2  # near-tied pieces swap scores (about 1e-5 apart) between runs: rounded, they tie


def train_tokenizer(lines: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import XLMRobertaTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>", shrinking_factor=0.75
    )
    tok.train_from_iterator(lines, trainer=trainer)
    tok.model = _canonical_unigram(tok)
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


def _canonical_unigram(tok):
    """The trained Unigram model with its pieces in a canonical order and its scores rounded.

    The trainer learns the same pieces with the same scores every time, but in an order (and with
    last-digit score noise) that changes from run to run (Rust hash maps), so token ids differed between
    two builds of the same tiny encoder. Specials keep their places; the rest sort by score, then text."""
    import json

    from tokenizers import models

    model = json.loads(tok.to_str())["model"]
    vocab = [(piece, round(score, SCORE_DIGITS)) for piece, score in model["vocab"]]
    specials = [entry for entry in vocab if entry[0] in SPECIAL_TOKENS]
    rest = sorted((entry for entry in vocab if entry[0] not in SPECIAL_TOKENS), key=lambda e: (-e[1], e[0]))
    ordered = specials + rest
    unk = next(i for i, (piece, _) in enumerate(ordered) if piece == "<unk>")
    return models.Unigram(ordered, unk_id=unk, byte_fallback=model.get("byte_fallback", False))


def build_tiny_encoder(out_dir: Path, lines: list[str], spec: dict[str, Any]) -> Path:
    """Train the tokenizer, build a random-init XLM-R-shaped masked LM (seeded), save both to `out_dir`."""
    import torch
    from transformers import AutoModelForMaskedLM, XLMRobertaConfig

    tokenizer = train_tokenizer(lines, spec.get("vocab_size", 2000))
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.get("hidden_size", 64),
        num_hidden_layers=spec.get("num_hidden_layers", 2),
        num_attention_heads=spec.get("num_attention_heads", 4),
        intermediate_size=spec.get("intermediate_size", 128),
        max_position_embeddings=spec.get("max_position_embeddings", 514),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(spec.get("init_seed", 0))
    model = AutoModelForMaskedLM.from_config(config)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir

"""A shared encoder with one head per task.

Saved as `model/`: the encoder in `save_pretrained` format (so `AutoModel.from_pretrained(model/)` loads
it) plus its tokenizer, `heads.safetensors` and `heads.json` (task -> format, number of labels).
Target phases load the encoder only and start fresh heads. An MLM task in a mixture trains the
pretrained LM head of the upstream checkpoint (`xstilts.modeling.mlm`); it is not saved with the heads
(nothing downstream reads it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xstilts.modeling.heads import make_head
from xstilts.tasks import Format, TaskDef

HEADS_WEIGHTS = "heads.safetensors"
HEADS_INDEX = "heads.json"


def load_encoder(path: str | Path, revision: str | None = None) -> nn.Module:
    """The bare encoder at `path` (a directory, or a hub id at `revision`); heads in the checkpoint are
    ignored."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path, revision=revision)
    kwargs = {"add_pooling_layer": False} if config.model_type in ("xlm-roberta", "roberta", "bert") else {}
    return AutoModel.from_pretrained(path, revision=revision, attn_implementation="sdpa", **kwargs)


class MultiTaskModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        tasks: list[TaskDef],
        adversarial: str = "none",
        adversarial_weight: float = 1.0,
        adversarial_options: Any = None,
        *,
        pretrained: str | Path | None = None,
    ):
        """`pretrained`: the checkpoint the encoder came from, whose LM head an MLM task continues."""
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.formats = {t.name: t.format for t in tasks}
        self.num_labels = {t.name: t.num_labels for t in tasks}
        heads: dict[str, nn.Module] = {}
        for t in tasks:
            if t.format is Format.MLM:
                if pretrained is None:
                    raise ValueError(f"task '{t.name}' (MLM) needs the pretrained checkpoint for its LM head")
                from xstilts.modeling.mlm import pretrained_mlm_head

                heads[t.name] = pretrained_mlm_head(pretrained, encoder)
            else:
                heads[t.name] = make_head(t.format, hidden, t.num_labels)
        self.heads = nn.ModuleDict(heads)
        # Embedding-space adversarial training (xstilts.modeling.adversarial), in training mode only;
        # SMART adds a momentum teacher of the parameters above (saved in checkpoints, not by `save`).
        from xstilts.modeling.adversarial import attach_teacher, default_options

        self.adversarial, self.adversarial_weight = adversarial, adversarial_weight
        self.adversarial_options = default_options(adversarial, adversarial_options)
        self.adversarial_terms: dict[str, torch.Tensor] = {}  # the last training forward's loss terms
        if adversarial == "smart" and self.adversarial_options.mu > 0:
            attach_teacher(self)

    @property
    def config(self):
        return self.encoder.config

    def rename_head(self, old: str, new: str) -> None:
        """Serve the head trained as task `old` under the name `new` (MLQA evaluated with XQuAD's head)."""
        self.heads[new] = self.heads.pop(old)
        self.formats[new] = self.formats.pop(old)
        self.num_labels[new] = self.num_labels.pop(old)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.adversarial != "none" and self.training:
            from xstilts.modeling.adversarial import adversarial_forward

            logits, loss, self.adversarial_terms = adversarial_forward(
                self, task, batch, self.adversarial, self.adversarial_weight, self.adversarial_options
            )
            return logits, loss
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.formats[task] is Format.MULTIPLE_CHOICE:
            input_ids, mask = input_ids.flatten(0, 1), mask.flatten(0, 1)
        hidden = self.encode(input_ids, mask)
        return self.heads[task](hidden, batch)

    def optimizer_stepped(self, step: int, total_steps: int) -> None:
        """Called by the training loop after optimizer step `step` of `total_steps`: SMART's teacher moves."""
        teacher = getattr(self, "smart_teacher", None)
        if teacher is not None:
            from xstilts.modeling.adversarial import teacher_momentum

            teacher.update(self, teacher_momentum(self.adversarial_options, step, total_steps))

    def save(self, out_dir: Path, tokenizer=None) -> None:
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)
        saved = {name for name, fmt in self.formats.items() if fmt is not Format.MLM}
        state = {
            k: v.detach().contiguous().cpu()
            for k, v in self.heads.state_dict().items()
            if k.split(".", 1)[0] in saved
        }
        save_file(state, str(out_dir / HEADS_WEIGHTS))
        index = {
            name: {"format": fmt.value, "num_labels": self.num_labels[name]}
            for name, fmt in self.formats.items()
            if name in saved
        }
        (out_dir / HEADS_INDEX).write_text(json.dumps(index, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path, tasks: list[TaskDef], *, with_heads: bool = True) -> MultiTaskModel:
        model = cls(load_encoder(path), tasks)
        if with_heads:
            from safetensors.torch import load_file

            state = load_file(str(Path(path) / HEADS_WEIGHTS))
            wanted = {k: v for k, v in state.items() if k.split(".", 1)[0] in model.heads}
            model.heads.load_state_dict(wanted, strict=True)
        return model

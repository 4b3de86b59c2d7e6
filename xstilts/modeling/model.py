"""A shared encoder with one head per task.

Saved as `model/`: the encoder in `save_pretrained` format (so `AutoModel.from_pretrained(model/)` loads
it) plus its tokenizer, `heads.safetensors` and `heads.json` (task -> format, number of labels).
Target phases load the encoder only and start fresh heads.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from xstilts.modeling.heads import make_head
from xstilts.tasks import Format, TaskDef

HEADS_WEIGHTS = "heads.safetensors"
HEADS_INDEX = "heads.json"


def load_encoder(path: str | Path) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path)
    kwargs = {"add_pooling_layer": False} if config.model_type in ("xlm-roberta", "roberta", "bert") else {}
    return AutoModel.from_pretrained(path, attn_implementation="sdpa", **kwargs)


class MultiTaskModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        tasks: list[TaskDef],
        adversarial: str = "none",
        adversarial_weight: float = 1.0,
    ):
        super().__init__()
        # Embedding-space adversarial training (xstilts.modeling.adversarial), in training mode only.
        self.adversarial, self.adversarial_weight = adversarial, adversarial_weight
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.formats = {t.name: t.format for t in tasks}
        self.num_labels = {t.name: t.num_labels for t in tasks}
        self.heads = nn.ModuleDict({t.name: make_head(t.format, hidden, t.num_labels) for t in tasks})

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

            return adversarial_forward(self, task, batch, self.adversarial, self.adversarial_weight)
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.formats[task] is Format.MULTIPLE_CHOICE:
            input_ids, mask = input_ids.flatten(0, 1), mask.flatten(0, 1)
        hidden = self.encode(input_ids, mask)
        return self.heads[task](hidden, batch)

    def save(self, out_dir: Path, tokenizer=None) -> None:
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)
        state = {k: v.detach().contiguous().cpu() for k, v in self.heads.state_dict().items()}
        save_file(state, str(out_dir / HEADS_WEIGHTS))
        index = {
            name: {"format": fmt.value, "num_labels": self.num_labels[name]}
            for name, fmt in self.formats.items()
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

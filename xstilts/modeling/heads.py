"""Task heads on top of the encoder's hidden states, one class per format."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from xstilts.tasks import Format


class ClassificationHead(nn.Module):
    """RoBERTa's head: dropout, dense + tanh, dropout, projection, on the first token."""

    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)
        self.num_labels = num_labels

    def forward(self, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.dropout(hidden[:, 0])
        x = self.out(self.dropout(torch.tanh(self.dense(x))))
        labels = batch.get("labels")
        if labels is None:
            return x, None
        if self.num_labels == 1:
            return x, F.mse_loss(x.squeeze(-1), labels.float())
        return x, F.cross_entropy(x, labels)


class MultipleChoiceHead(nn.Module):
    """Scores each (context, choice) sequence; the encoder sees [batch * choices, length]."""

    def __init__(self, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(hidden, 1)

    def forward(self, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        num_choices = batch["input_ids"].shape[1]
        logits = self.score(self.dropout(hidden[:, 0])).view(-1, num_choices)
        labels = batch.get("labels")
        return logits, (F.cross_entropy(logits, labels) if labels is not None else None)


class TaggingHead(nn.Module):
    def __init__(self, hidden: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.out(self.dropout(hidden))
        labels = batch.get("labels")
        if labels is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


class SpanQAHead(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.out = nn.Linear(hidden, 2)

    def forward(self, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.out(hidden)  # [B, T, 2]
        mask = batch["attention_mask"] == 0
        logits = logits.masked_fill(mask.unsqueeze(-1), torch.finfo(logits.dtype).min)
        start = batch.get("start_positions")
        if start is None:
            return logits, None
        loss = (
            F.cross_entropy(logits[..., 0], start) + F.cross_entropy(logits[..., 1], batch["end_positions"])
        ) / 2
        return logits, loss


def make_head(fmt: Format, hidden: int, num_labels: int) -> nn.Module:
    if fmt in (Format.CLASSIFICATION, Format.REGRESSION):
        return ClassificationHead(hidden, num_labels)
    if fmt is Format.MULTIPLE_CHOICE:
        return MultipleChoiceHead(hidden)
    if fmt is Format.TAGGING:
        return TaggingHead(hidden, num_labels)
    if fmt is Format.SPAN_QA:
        return SpanQAHead(hidden)
    raise ValueError(f"format {fmt.value} has no trainable head")

"""Embedding-space adversarial training inside `MultiTaskModel.forward` (`TrainingConfig.adversarial`).

The whole adversarial objective is computed in one forward call of the model, so the training loop,
DDP and DeepSpeed see an ordinary `model(task, batch) -> (logits, loss)` and one backward per
micro-batch. The word embeddings are looked up once (`encoder.get_input_embeddings()`), and every pass
feeds `inputs_embeds` to the encoder, so the clean and the perturbed passes differ only by the noise.

- `r3f`: task loss + weight * symmetric KL(clean, noised) (R3F, Aghajanyan et al. 2020);
- `freelb`: FreeLB's loss alone, the mean task loss over its K ascent steps in a norm ball around the
  embeddings (Zhu et al. 2020); no clean pass;
- `smart`: task loss + weight * SMART's smoothness term + mu * the Bregman proximal term, the divergence
  between the model's clean outputs and those of its momentum teacher (Jiang et al. 2020).

Classification, multiple choice, span QA and tagging compare distributions with the symmetric KL;
regression compares its outputs with a squared error. Noise comes from torch's global RNG, which
checkpoints save and restore, so resumed runs stay exact; with `adversarial: none` nothing here runs
and no random number is drawn.

SMART's teacher (`MomentumTeacher`) is a copy of the model's trainable parameters kept as buffers of
the model: checkpoints save and resume it with the weights, `MultiTaskModel.save` (the `model/` that
later phases load) leaves it out, DDP neither broadcasts nor syncs it (each process updates the same
copy from the same parameters). It costs one more copy of the trainable parameters in memory and in
each checkpoint (and one no-grad forward pass per micro-batch); `smart.mu: 0` drops it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from xstilts.spec.adversarial import ADVERSARIAL_OPTIONS, FreeLBOptions, R3FOptions, SmartOptions
from xstilts.tasks import Format
from xstilts.train.adversarial import Divergence, freelb_loss, r3f_loss, smart_loss, symmetric_kl

LABEL_KEYS = ("labels", "start_positions", "end_positions")
ADVERSARIAL_KINDS = ("none", *ADVERSARIAL_OPTIONS)
TEACHER = "smart_teacher"  # the model's attribute (and state_dict prefix) for SMART's teacher


def default_options(kind: str, options: Any = None) -> Any:
    """The option block for `kind` (its defaults when `options` is None); None for `none`."""
    if kind == "none":
        return None
    if kind not in ADVERSARIAL_OPTIONS:
        raise ValueError(f"adversarial must be one of {', '.join(ADVERSARIAL_KINDS)}, got {kind!r}")
    model = ADVERSARIAL_OPTIONS[kind]
    if options is None:
        return model()
    if not isinstance(options, model):
        raise TypeError(f"adversarial {kind!r} takes {model.__name__}, got {type(options).__name__}")
    return options


class MomentumTeacher(nn.Module):
    """SMART's teacher: theta~_1 = theta_0, then theta~_{t+1} = (1 - beta) theta_t + beta theta~_t after
    optimizer step t, over the trainable parameters of a model (buffers, so that they are saved with its
    state_dict); frozen parameters are shared with the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.keys: dict[str, str] = {}  # parameter name -> buffer name (no dots allowed in buffer names)
        self.checked = False
        for name, param in model.named_parameters():
            if param.requires_grad:
                self.keys[name] = name.replace(".", "__")
                self.register_buffer(self.keys[name], param.detach().clone())

    def tensors(self, prefix: str) -> dict[str, Tensor]:
        """The teacher's values of the parameters under `prefix` (e.g. "encoder."), named relative to it."""
        return {
            name.removeprefix(prefix): getattr(self, key)
            for name, key in self.keys.items()
            if name.startswith(prefix)
        }

    def check(self, model: nn.Module) -> None:
        """The model's parameters must be whole, as the teacher's are (not partitioned across processes)."""
        params = dict(model.named_parameters())
        for name, key in self.keys.items():
            mine, theirs = getattr(self, key), params[name]
            if mine.shape != theirs.shape:
                raise RuntimeError(
                    f"SMART's teacher holds {name} as {tuple(mine.shape)} but the model has "
                    f"{tuple(theirs.shape)}: it needs whole parameters on every process (DeepSpeed ZeRO "
                    "stage 3 partitions them; use stage 2, or smart.mu: 0)"
                )
        self.checked = True

    @torch.no_grad()
    def update(self, model: nn.Module, beta: float) -> None:
        self.check(model)
        params = dict(model.named_parameters())
        for name, key in self.keys.items():
            mine = getattr(self, key)
            mine.lerp_(params[name].detach().to(mine.dtype), 1.0 - beta)


def teacher_momentum(options: SmartOptions, step: int, total_steps: int) -> float:
    """beta for the update after optimizer step `step` (1-based): `beta` for the first `beta_switch` of
    the steps, `beta_late` after (the paper: 0.99 for t <= 0.1 T, then 0.999)."""
    return options.beta if step <= options.beta_switch * total_steps else options.beta_late


def attach_teacher(model: nn.Module) -> MomentumTeacher:
    """Give `model` a momentum teacher of its current parameters, outside DDP's buffer broadcast."""
    teacher = MomentumTeacher(model)
    setattr(model, TEACHER, teacher)
    # DDP would broadcast every buffer from rank 0 at each forward: a whole model copy per micro-batch.
    model._ddp_params_and_buffers_to_ignore = [f"{TEACHER}.{key}" for key in teacher.keys.values()]
    return teacher


def _without_labels(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in batch.items() if k not in LABEL_KEYS}


def _distribution_view(fmt: Format, logits: Tensor) -> Tensor:
    """Logits with the distribution to compare on the last axis: span QA's start and end logits are
    each a distribution over positions ([B, T, 2] -> [B, 2, T])."""
    return logits.transpose(-1, -2) if fmt is Format.SPAN_QA else logits


def _positions(fmt: Format, batch: dict[str, Tensor]) -> Tensor | None:
    if fmt is Format.TAGGING and "labels" in batch:
        return batch["labels"] != -100  # the first sub-word of each word: the positions that are scored
    if fmt is Format.SPAN_QA:
        return torch.ones(batch["attention_mask"].shape[0], 2, device=batch["attention_mask"].device)
    return None


def output_divergence(fmt: Format, regression: bool, batch: dict[str, Tensor]) -> Divergence:
    """l_s between two outputs of the head: symmetric KL of the distributions, squared error for
    regression."""
    if regression:
        return lambda a, b: (a.float() - b.float()).pow(2).mean()
    mask = _positions(fmt, batch)
    return lambda a, b: symmetric_kl(_distribution_view(fmt, a), _distribution_view(fmt, b), mask)


def adversarial_forward(
    model: Any, task: str, batch: dict[str, Tensor], kind: str, weight: float, options: Any
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(logits, loss, detached terms of the loss) for one training micro-batch of `task`."""
    fmt = model.formats[task]
    head = model.heads[task]
    teacher = getattr(model, TEACHER, None) if kind == "smart" else None
    if teacher is not None and not teacher.checked:
        teacher.check(model)
    input_ids, mask = batch["input_ids"], batch["attention_mask"]  # [B, K, T] for multiple choice
    embeds = model.encoder.get_input_embeddings()(input_ids)
    unlabelled = _without_labels(batch)

    def hidden(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        if fmt is Format.MULTIPLE_CHOICE:
            inputs_embeds, attention_mask = inputs_embeds.flatten(0, 1), attention_mask.flatten(0, 1)
        return model.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state

    def output(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
        return head(hidden(inputs_embeds, attention_mask), unlabelled)[0]

    if kind == "freelb":
        assert isinstance(options, FreeLBOptions)
        first: list[Tensor] = []

        def task_loss(inputs_embeds: Tensor, attention_mask: Tensor) -> Tensor:
            logits, loss = head(hidden(inputs_embeds, attention_mask), batch)
            if loss is None:
                raise ValueError(f"adversarial training needs labels in the batch of task '{task}'")
            if not first:
                first.append(logits)  # what the model returns as its output: the first pass's logits
            return loss

        loss = freelb_loss(
            task_loss,
            embeds,
            mask,
            adv_steps=options.adv_steps,
            adv_lr=options.adv_lr,
            adv_init_mag=options.adv_init_mag,
            max_norm=options.max_norm,
            norm=options.norm,
            same_dropout=options.same_dropout,
        )
        return first[0], loss, {"adversarial": loss.detach()}

    logits, loss = head(hidden(embeds, mask), batch)
    if loss is None:
        raise ValueError(f"adversarial training needs labels in the batch of task '{task}'")
    divergence = output_divergence(fmt, model.num_labels.get(task) == 1, batch)
    terms = {"task": loss.detach()}
    if kind == "r3f":
        assert isinstance(options, R3FOptions)
        term = r3f_loss(
            output, embeds, mask, logits, eps=options.eps, noise=options.noise, divergence=divergence
        )
        terms["smoothness"] = term.detach()
        return logits, loss + weight * term, terms
    if kind == "smart":
        assert isinstance(options, SmartOptions)
        smooth = smart_loss(
            output,
            embeds,
            mask,
            logits,
            adv_steps=options.adv_steps,
            step_size=options.step_size,
            eps=options.eps,
            noise_std=options.noise_std,
            norm=options.norm,
            divergence=divergence,
        )
        terms["smoothness"] = smooth.detach()
        total = loss + weight * smooth
        if options.mu > 0 and teacher is not None:
            proximal = divergence(logits, teacher_output(model, teacher, task, batch))
            terms["proximal"] = proximal.detach()
            total = total + options.mu * proximal
        return logits, total, terms
    raise ValueError(f"adversarial must be one of {', '.join(ADVERSARIAL_KINDS)}, got {kind!r}")


@torch.no_grad()
def teacher_output(model: Any, teacher: MomentumTeacher, task: str, batch: dict[str, Tensor]) -> Tensor:
    """f(x; theta~): the head's clean output with the teacher's parameters (the model's own code, run
    with the teacher's tensors, in the model's mode)."""
    from torch.func import functional_call

    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    if model.formats[task] is Format.MULTIPLE_CHOICE:
        input_ids, mask = input_ids.flatten(0, 1), mask.flatten(0, 1)
    encoded = functional_call(
        model.encoder,
        teacher.tensors("encoder."),
        args=(),
        kwargs={"input_ids": input_ids, "attention_mask": mask},
    )
    head = model.heads[task]
    return functional_call(
        head, teacher.tensors(f"heads.{task}."), (encoded.last_hidden_state, _without_labels(batch))
    )[0]

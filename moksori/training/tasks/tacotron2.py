"""Tacotron2 training: teacher forcing, mel (pre- and post-net) + stop gate + guided attention.

Small data is where Tacotron2's attention most often fails to learn its alignment; the guided
(diagonal) attention loss with a weight that halves every ``guided_attention_half_life`` steps
makes it find the diagonal early and then lets the model's own attention take over. Each
validation logs the gate's accuracy and how diagonal the attention is, teacher-forced and free
running (with the failed-alignment detector's verdict), and TensorBoard gets both alignments.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moksori.audio import griffin_lim
from moksori.models.alignment import check_alignment, diagonal_share
from moksori.models.tacotron2 import (
    PRESETS,
    Tacotron2,
    Tacotron2Config,
    Tacotron2Output,
    gate_targets,
    guided_attention_schedule,
    tacotron2_loss,
)
from moksori.training.logging import Examples, plot_alignment, plot_mels
from moksori.training.recipe import Recipe, RecipeError
from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, check_model_config

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["Tacotron2Options", "Tacotron2Task", "tacotron2_config", "tacotron2_lr"]

DEFAULT_LR = 1e-3  # NVIDIA's hparams.learning_rate


@dataclass
class Tacotron2Options:
    """Tacotron2's own training settings (a recipe's ``options``)."""

    gate_pos_weight: float = 10.0  # weight of the one stop step against the many go steps
    guided_attention_weight: float = 1.0  # 0 turns the guided attention loss off
    guided_attention_sigma: float = 0.2  # width of the diagonal band (fraction of the text)
    guided_attention_half_life: int = 5000  # steps; 0: constant weight
    weight_decay: float = 1e-6  # NVIDIA's
    lr_half_life: int = 0  # steps after lr_decay_start for the learning rate to halve; 0: constant
    lr_decay_start: int = 0
    min_lr: float = 1e-5
    n_audio_examples: int = 1  # validation utterances rendered to audio (Griffin-Lim) for TensorBoard

    def __post_init__(self) -> None:
        for name in ("gate_pos_weight", "guided_attention_weight", "weight_decay", "min_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.guided_attention_sigma <= 0:
            raise ValueError(f"guided_attention_sigma must be > 0, got {self.guided_attention_sigma}")
        for name in ("guided_attention_half_life", "lr_half_life", "lr_decay_start", "n_audio_examples"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def tacotron2_config(recipe: Recipe, info: DatasetInfo) -> Tacotron2Config:
    """The recipe's ``model_config`` (a preset plus overrides) for the data's symbols, mels and speakers."""
    values = dict(recipe.model_config)
    check_model_config(Tacotron2Config, values)
    preset = values.pop("preset", "base")
    if preset not in PRESETS:
        raise RecipeError(f"model_config.preset: Tacotron2 presets are {list(PRESETS)}, got {preset!r}")
    given = values.pop("n_symbols", None)
    if given is not None and given != info.n_vocab:
        raise RecipeError(f"model_config.n_symbols is {given} but the data's symbol table has {info.n_vocab} symbols")
    values.setdefault("n_mel_channels", info.mel_config.n_mels)
    if len(info.speakers) > 1:
        values.setdefault("n_speakers", len(info.speakers))
        values.setdefault("speaker_embedding_dim", 64)
    try:
        return Tacotron2Config.preset(preset, info.n_vocab, **values)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"model_config: {error}") from error


def tacotron2_lr(base: float, warmup_steps: int, options: Tacotron2Options):  # noqa: ANN201 - a closure
    """Linear warm-up to ``base``, constant until ``lr_decay_start``, then halving every
    ``lr_half_life`` steps down to ``min_lr``."""

    def lr_at(step: int, epoch: int) -> float:
        lr = base * min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else base
        if options.lr_half_life > 0 and step > options.lr_decay_start:
            lr = max(options.min_lr, lr * 0.5 ** ((step - options.lr_decay_start) / options.lr_half_life))
        return lr

    return lr_at


class Tacotron2Task(Task):
    inference_name = "model"
    default_grad_clip = 1.0  # NVIDIA's grad_clip_thresh
    options_class = Tacotron2Options

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.nets["model"] = Tacotron2(tacotron2_config(recipe, info)).to(device)
        self.step = 0

    @property
    def model(self) -> Tacotron2:
        return self.nets["model"]

    def text_frontend(self) -> dict[str, Any] | None:
        return self.info.text_settings

    def optimizers(self) -> list[OptimizerSpec]:
        lr = self.recipe.train.lr if self.recipe.train.lr is not None else DEFAULT_LR
        optimizer = torch.optim.Adam(self.trainable("model"), lr=lr, eps=1e-6, weight_decay=self.options.weight_decay)
        return [OptimizerSpec("model", optimizer, tacotron2_lr(lr, self.recipe.train.warmup_steps, self.options))]

    def _speaker(self, batch: Batch) -> torch.Tensor | None:
        return batch["speaker"] if self.model.n_speakers > 1 else None

    def _losses(
        self, model: nn.Module, batch: Batch, guided_weight: float, ctx: "StepContext | None"
    ) -> tuple[dict[str, torch.Tensor], Tacotron2Output]:
        with ctx.autocast() if ctx is not None else contextlib.nullcontext():
            outputs = model(batch["ids"], batch["ids_lengths"], batch["mel"], batch["mel_lengths"], self._speaker(batch))
        outputs = Tacotron2Output(*(t.float() for t in outputs))
        o = self.options
        losses = tacotron2_loss(
            outputs, batch["mel"].float(), batch["mel_lengths"], batch["ids_lengths"], self.model.n_frames_per_step,
            o.gate_pos_weight, guided_weight, o.guided_attention_sigma,
        )
        return losses, outputs

    def guided_weight(self, step: int) -> float:
        o = self.options
        return guided_attention_schedule(step, o.guided_attention_weight, o.guided_attention_half_life)

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        self.step = step
        weight = self.guided_weight(step)
        losses, _ = self._losses(self.net("model"), batch, weight, ctx)
        ctx.optimize("model", losses["total"], self.trainable("model"))
        values = {key if key != "total" else "loss": value.item() for key, value in losses.items()}
        values["guided_attention_weight"] = weight
        return values

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        losses, outputs = self._losses(self.model, batch, self.guided_weight(self.step), None)
        values = {key if key != "total" else "loss": value.item() for key, value in losses.items()}
        values.update(self._teacher_forced_diagnostics(batch, outputs))
        values.update(self._free_running_diagnostics(batch))
        return values

    def _teacher_forced_diagnostics(self, batch: Batch, outputs: Tacotron2Output) -> dict[str, float]:
        r = self.model.n_frames_per_step
        target, step_mask = gate_targets(batch["mel_lengths"], outputs.gate.size(1), r)
        predicted = (torch.sigmoid(outputs.gate) > self.model.config.gate_threshold).float()
        correct = ((predicted == target).float() * step_mask).sum() / step_mask.sum()
        stop_found = ((predicted * target * step_mask).sum(dim=1) > 0).float().mean()
        steps = step_mask.sum(dim=1)
        rows = range(outputs.alignments.size(0))
        diagonal = [diagonal_share(outputs.alignments[i], int(batch["ids_lengths"][i]), int(steps[i])) for i in rows]
        sharpness = (outputs.alignments.max(dim=1).values * step_mask).sum() / step_mask.sum()
        return {
            "gate_accuracy": float(correct),
            "gate_stop_found": float(stop_found),
            "attention_diagonality": sum(diagonal) / len(diagonal),
            "attention_sharpness": float(sharpness),
        }

    def _free_running_diagnostics(self, batch: Batch) -> dict[str, float]:
        """Decode the batch without teacher forcing (at most twice its real length) and judge
        every row's alignment as synthesis would."""
        r = self.model.n_frames_per_step
        limit = min(self.model.config.max_decoder_steps, 2 * int(batch["mel_lengths"].max()) // r + 10)
        out = self.model.infer(batch["ids"], batch["ids_lengths"], self._speaker(batch), max_decoder_steps=limit)
        reports = [
            check_alignment(out.alignments[i], int(batch["ids_lengths"][i]), bool(out.hit_step_limit[i]),
                            n_frames=max(int(out.steps[i]), 1))
            for i in range(out.alignments.size(0))
        ]
        length_ratio = (out.lengths.float() / batch["mel_lengths"].float().cpu()).mean()
        return {
            "free_alignment_ok": sum(rep.ok for rep in reports) / len(reports),
            "free_diagonality": sum(rep.diagonality for rep in reports) / len(reports),
            "free_length_ratio": float(length_ratio),
        }

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        _, outputs = self._losses(self.model, batch, 0.0, None)
        out = Examples()
        n_tokens, n_frames = int(batch["ids_lengths"][0]), int(batch["mel_lengths"][0])
        r = self.model.n_frames_per_step
        out.images["alignment"] = plot_alignment(
            outputs.alignments[0, :n_tokens, : (n_frames + r - 1) // r], "teacher-forced alignment"
        )
        speaker = self._speaker(batch)
        n_examples = min(max(self.options.n_audio_examples, 1), batch["ids"].size(0))
        for i in range(n_examples):
            length = int(batch["ids_lengths"][i])
            limit = min(self.model.config.max_decoder_steps, 2 * int(batch["mel_lengths"][i]) // r + 10)
            free = self.model.infer(
                batch["ids"][i : i + 1, :length], batch["ids_lengths"][i : i + 1],
                None if speaker is None else speaker[i : i + 1], max_decoder_steps=limit,
            )
            mel = free.mel[0, :, : int(free.lengths[0])].float().cpu()
            if i == 0:
                report = check_alignment(free.alignments[0], length, bool(free.hit_step_limit[0]),
                                         n_frames=max(int(free.steps[0]), 1))
                out.images["alignment_free_running"] = plot_alignment(
                    free.alignments[0, :, : int(free.steps[0])], f"free-running alignment: {report.summary()}"
                )
                target = batch["mel"][0, :, :n_frames].float().cpu()
                out.images["mel"] = plot_mels({
                    "target": target,
                    "teacher-forced": outputs.mel_postnet[0, :, :n_frames].float().cpu(),
                    "free-running": mel,
                })
            if i < self.options.n_audio_examples:
                out.audio[f"griffin_lim/{i}"] = griffin_lim(mel, self.info.mel_config)
        return out

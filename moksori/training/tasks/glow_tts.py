"""Glow-TTS training: maximum likelihood with monotonic alignment search, the Noam schedule of
the reference, data-dependent ActNorm initialisation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moksori.audio import griffin_lim
from moksori.models.glow_tts import GlowTTS, GlowTTSConfig, GlowTTSOutput, glow_tts_loss
from moksori.training.logging import Examples, plot_alignment, plot_mels
from moksori.training.recipe import Recipe, RecipeError
from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, check_model_config

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["GlowTTSOptions", "GlowTTSTask", "noam_lr"]


@dataclass
class GlowTTSOptions:
    """Glow-TTS's own training settings (a recipe's ``options``)."""

    n_audio_examples: int = 1  # validation utterances rendered to audio (Griffin-Lim) for TensorBoard

    def __post_init__(self) -> None:
        if self.n_audio_examples < 0:
            raise ValueError(f"n_audio_examples must be >= 0, got {self.n_audio_examples}")


def _glow_config(recipe: Recipe, info: DatasetInfo) -> GlowTTSConfig:
    values = dict(recipe.model_config)
    check_model_config(GlowTTSConfig, values)
    preset = values.pop("preset", "base")
    factories = {"base": GlowTTSConfig.base, "small": GlowTTSConfig.small, "tiny": GlowTTSConfig.tiny}
    if preset not in factories:
        raise RecipeError(f"model_config.preset: Glow-TTS presets are {sorted(factories)}, got {preset!r}")
    given_vocab = values.pop("n_vocab", None)
    if given_vocab is not None and given_vocab != info.n_vocab:
        raise RecipeError(
            f"model_config.n_vocab is {given_vocab} but the data's symbol table has {info.n_vocab} symbols"
        )
    values.setdefault("out_channels", info.mel_config.n_mels)
    if len(info.speakers) > 1:
        values.setdefault("n_speakers", len(info.speakers))
        values.setdefault("gin_channels", 256)
    try:
        return factories[preset](info.n_vocab, **values)
    except TypeError as error:
        raise RecipeError(f"model_config: {error}") from error


def noam_lr(scale: float, hidden_channels: int, warmup_steps: int) -> Callable[[int, int], float]:
    """The Transformer ("Noam") schedule of the Glow-TTS reference, by 0-based step."""

    def lr_at(step: int, epoch: int) -> float:
        n = step + 1
        if warmup_steps <= 0:
            return scale * hidden_channels**-0.5 * n**-0.5
        return scale * hidden_channels**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)

    return lr_at


class GlowTTSTask(Task):
    inference_name = "model"
    default_grad_clip = 5.0
    # jaywalnut310/glow-tts clamps each gradient element to ±5 (commons.clip_grad_value_), which its
    # gradients rarely reach; a global-norm clip at 5 rescaled most early steps and trained slower.
    grad_clip_by_value = True
    options_class = GlowTTSOptions

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.nets["model"] = GlowTTS(_glow_config(recipe, info)).to(device)

    @property
    def model(self) -> GlowTTS:
        return self.nets["model"]

    def text_frontend(self) -> dict[str, Any] | None:
        return self.info.text_settings

    def optimizers(self) -> list[OptimizerSpec]:
        config = self.model.config
        scale = self.recipe.train.lr if self.recipe.train.lr is not None else 1.0
        hidden = config.hidden_channels_enc or config.hidden_channels
        optimizer = torch.optim.Adam(self.trainable("model"), lr=scale, betas=(0.9, 0.98), eps=1e-9)
        return [OptimizerSpec("model", optimizer, noam_lr(scale, hidden, self.recipe.train.warmup_steps))]

    def _inputs(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        g = batch["speaker"] if self.model.n_speakers > 1 else None
        return batch["ids"], batch["ids_lengths"], batch["mel"], batch["mel_lengths"], g

    def initialize(self, batch: Batch) -> None:
        x, x_lengths, y, y_lengths, g = self._inputs(batch)
        self.model.initialize_actnorm(x, x_lengths, y, y_lengths, g=g)

    def _losses(self, model: nn.Module, batch: Batch, ctx: "StepContext | None") -> tuple[dict, GlowTTSOutput]:
        x, x_lengths, y, y_lengths, g = self._inputs(batch)
        with ctx.autocast() if ctx is not None else contextlib.nullcontext():
            outputs = model(x, x_lengths, y, y_lengths, g=g)
        outputs = GlowTTSOutput(*(t.float() if t.is_floating_point() else t for t in outputs))
        return glow_tts_loss(outputs, x_lengths), outputs

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        losses, _ = self._losses(self.net("model"), batch, ctx)
        ctx.optimize("model", losses["total"], self.trainable("model"))
        return {"loss": losses["total"].item(), "mle": losses["mle"].item(), "duration": losses["duration"].item()}

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        losses, _ = self._losses(self.model, batch, None)
        return {"loss": losses["total"].item(), "mle": losses["mle"].item(), "duration": losses["duration"].item()}

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        _, outputs = self._losses(self.model, batch, None)
        x, x_lengths, y, y_lengths, g = self._inputs(batch)
        out = Examples()
        n_audio = self.options.n_audio_examples
        generator = torch.Generator().manual_seed(0)
        for i in range(min(max(n_audio, 1), x.shape[0])):
            mel, mel_lengths, _ = self.model.infer(
                x[i : i + 1, : x_lengths[i]], x_lengths[i : i + 1], g=None if g is None else g[i : i + 1],
                generator=generator,
            )
            mel = mel[0, :, : mel_lengths[0]].float().cpu()
            target = y[i, :, : y_lengths[i]].float().cpu()
            if i == 0:
                attn = outputs.attn[0, : x_lengths[0], : outputs.y_lengths[0]]
                out.images["alignment"] = plot_alignment(attn)
                out.images["mel"] = plot_mels({"target": target, "generated (predicted durations)": mel})
            if i < n_audio:
                out.audio[f"griffin_lim/{i}"] = griffin_lim(mel, self.info.mel_config)
        return out

"""Flowtron training: maximum likelihood (the flows' log-determinants) plus the stop gate.

* The published curriculum, in one run: ``single_flow_steps`` trains the first flow alone (the
  others are the identity at first, their couplings zero-initialised), then all flows train
  together. The other route also works: train a ``n_flows: 1`` model, then start a
  ``n_flows: 2`` run with ``init_from`` that checkpoint (the first flow and the encoder load by
  name; the second flow starts as the identity).
* ``text_encoder_from``: a Tacotron2 checkpoint or voice whose ``embedding`` and ``encoder``
  weights (same names in both models) start Flowtron's text encoder.
* ``use_attn_prior``: the diagonal beta-binomial attention prior of the reference for the first
  ``attn_prior_steps`` steps (0: always), so attention finds the diagonal on small data.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moksori.audio import griffin_lim
from moksori.models.tacotron2 import guided_attention_loss, guided_attention_schedule
from moksori.models.flowtron import PRESETS, Flowtron, FlowtronConfig, FlowtronOutput, beta_binomial_prior, flowtron_loss
from moksori.models.alignment import check_alignment, diagonal_share
from moksori.training.logging import Examples, plot_alignment, plot_mels
from moksori.training.recipe import Recipe, RecipeError
from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, check_model_config

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["FlowtronOptions", "FlowtronTask", "flowtron_config", "load_text_encoder"]

DEFAULT_LR = 1e-3  # NVIDIA's config.json


@dataclass
class FlowtronOptions:
    """Flowtron's own training settings (a recipe's ``options``)."""

    single_flow_steps: int = 0  # the curriculum: steps that train the first flow alone
    gate_loss: bool = True
    gate_pos_weight: float = 1.0  # weight of the stop frame in the gate loss (1: the reference's)
    use_attn_prior: bool = True
    attn_prior_scaling: float = 1.0  # the reference's betab_scaling_factor
    attn_prior_steps: int = 0  # steps with the prior; 0: the whole run
    # Tacotron2's guided (diagonal) attention loss on every flow's attention (0: off, the reference's
    # choice). Unlike the prior, which multiplies the attention, it trains the attention itself.
    guided_attention_weight: float = 0.0
    guided_attention_sigma: float = 0.2
    guided_attention_half_life: int = 0  # steps for the weight to halve; 0: constant
    text_encoder_from: str | None = None  # a Tacotron2 checkpoint / run folder / voice
    weight_decay: float = 1e-6
    n_audio_examples: int = 1  # validation utterances rendered to audio (Griffin-Lim) for TensorBoard

    def __post_init__(self) -> None:
        for name in ("single_flow_steps", "attn_prior_steps", "n_audio_examples", "guided_attention_half_life"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.gate_pos_weight <= 0:
            raise ValueError(f"gate_pos_weight must be > 0, got {self.gate_pos_weight}")
        if self.guided_attention_weight < 0 or self.guided_attention_sigma <= 0:
            raise ValueError("guided_attention_weight must be >= 0 and guided_attention_sigma > 0")
        if self.attn_prior_scaling <= 0:
            raise ValueError(f"attn_prior_scaling must be > 0, got {self.attn_prior_scaling}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


def flowtron_config(recipe: Recipe, info: DatasetInfo) -> FlowtronConfig:
    """The recipe's ``model_config`` (a preset plus overrides) for the data's symbols, mels, speakers."""
    values = dict(recipe.model_config)
    check_model_config(FlowtronConfig, values)
    preset = values.pop("preset", "base")
    if preset not in PRESETS:
        raise RecipeError(f"model_config.preset: Flowtron presets are {list(PRESETS)}, got {preset!r}")
    given = values.pop("n_text", None)
    if given is not None and given != info.n_vocab:
        raise RecipeError(f"model_config.n_text is {given} but the data's symbol table has {info.n_vocab} symbols")
    values.setdefault("n_mel_channels", info.mel_config.n_mels)
    values.setdefault("n_speakers", max(1, len(info.speakers)))
    try:
        return FlowtronConfig.preset(preset, info.n_vocab, **values)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"model_config: {error}") from error


def load_text_encoder(model: Flowtron, source: str | Path) -> list[str]:
    """Copy a Tacotron2's ``embedding`` and ``encoder`` weights (checkpoint, run folder or voice)
    into ``model``; returns the names loaded. Errors name what does not fit."""
    from moksori.training.warm_start import read_init_source

    try:
        state, _ = read_init_source(source, "tacotron2")
    except (ValueError, FileNotFoundError) as error:  # the message would otherwise read as the recipe's own
        raise RecipeError(f"options.text_encoder_from: {error}") from error
    wanted = {name: value for name, value in state.items() if name.startswith(("embedding.", "encoder."))}
    target = model.state_dict()
    loaded, problems = {}, []
    for name, value in wanted.items():
        if name not in target:
            continue  # BatchNorm running statistics: Flowtron normalises per utterance
        if tuple(value.shape) != tuple(target[name].shape):
            problems.append(f"{name}: {tuple(value.shape)} in the Tacotron2, {tuple(target[name].shape)} here")
        else:
            loaded[name] = value.to(target[name].dtype)
    if problems or not loaded:
        detail = "; ".join(problems) or "no embedding/encoder weights in it"
        raise RecipeError(f"options.text_encoder_from {source}: {detail} (n_text_dim must equal the Tacotron2's "
                          "encoder_embedding_dim, and both must use the same symbols)")
    model.load_state_dict(loaded, strict=False)
    return sorted(loaded)


class FlowtronTask(Task):
    inference_name = "model"
    default_grad_clip = 1.0  # NVIDIA's grad_clip_val
    options_class = FlowtronOptions

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.nets["model"] = Flowtron(flowtron_config(recipe, info)).to(device)
        self.text_encoder_loaded: list[str] = []
        if self.options.text_encoder_from:
            self.text_encoder_loaded = load_text_encoder(self.model, self.options.text_encoder_from)
        self.step = 0

    @property
    def ddp_find_unused_parameters(self) -> bool:
        # While the first flow trains alone the others get no gradient; DDP must expect that.
        return self.options.single_flow_steps > 0

    @property
    def model(self) -> Flowtron:
        return self.nets["model"]

    def text_frontend(self) -> dict[str, Any] | None:
        return self.info.text_settings

    def optimizers(self) -> list[OptimizerSpec]:
        lr = self.recipe.train.lr if self.recipe.train.lr is not None else DEFAULT_LR
        optimizer = torch.optim.RAdam(self.trainable("model"), lr=lr, weight_decay=self.options.weight_decay)
        warmup = self.recipe.train.warmup_steps

        def lr_at(step: int, epoch: int) -> float:
            return lr * min(1.0, (step + 1) / warmup) if warmup > 0 else lr

        return [OptimizerSpec("model", optimizer, lr_at)]

    def active_flows(self, step: int) -> int:
        return 1 if step < self.options.single_flow_steps else self.model.config.n_flows

    def _prior_on(self, step: int | None) -> bool:
        o = self.options
        return o.use_attn_prior and not (step is not None and o.attn_prior_steps and step >= o.attn_prior_steps)

    def _prior(self, batch: Batch, step: int | None) -> torch.Tensor | None:
        o = self.options
        if not self._prior_on(step):
            return None
        return beta_binomial_prior(batch["ids_lengths"].cpu(), batch["mel_lengths"].cpu(), o.attn_prior_scaling,
                                   batch["ids"].size(1), batch["mel"].size(2)).to(batch["mel"].device)

    def _losses(
        self, model: nn.Module, batch: Batch, step: int | None, ctx: "StepContext | None"
    ) -> tuple[dict[str, torch.Tensor], FlowtronOutput]:
        n_flows = self.active_flows(self.step if step is None else step)
        with ctx.autocast() if ctx is not None else contextlib.nullcontext():
            out = self._forward(model, batch, self._prior(batch, step), n_flows)
        # The gate belongs to the last flow: while the first trains alone there is none to train.
        use_gate = self.options.gate_loss and n_flows == self.model.config.n_flows
        losses = flowtron_loss(out, batch["mel_lengths"], self.model.config.sigma, use_gate, self.options.gate_pos_weight)
        o = self.options
        weight = guided_attention_schedule(self.step if step is None else step, o.guided_attention_weight,
                                           o.guided_attention_half_life)
        if weight > 0:
            guided = sum(guided_attention_loss(attn.float().transpose(1, 2), batch["ids_lengths"], batch["mel_lengths"],
                                               o.guided_attention_sigma) for attn in out.attns) / len(out.attns)
            losses["guided_attention"] = guided
            losses["total"] = losses["total"] + weight * guided
        return losses, out

    def _forward(self, model: nn.Module, batch: Batch, prior: torch.Tensor | None, n_flows: int) -> FlowtronOutput:
        speaker = batch["speaker"] if self.model.n_speakers > 1 else None
        return model(batch["mel"], batch["mel_lengths"], batch["ids"], batch["ids_lengths"], speaker, prior,
                     n_flows=n_flows)

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        self.step = step
        losses, _ = self._losses(self.net("model"), batch, step, ctx)
        ctx.optimize("model", losses["total"], self.trainable("model"))
        values = {key if key != "total" else "loss": value.item() for key, value in losses.items()}
        values["flows"] = float(self.active_flows(step))
        return values

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        losses, out = self._losses(self.model, batch, self.step, None)
        values = {key if key != "total" else "loss": value.item() for key, value in losses.items()}
        values["attention_diagonality"] = _diagonality(out, batch)
        if self._prior_on(self.step):
            # The prior multiplies the attention, so with it the alignment looks diagonal whether or
            # not the model has learned to attend; inference has no prior. This is the figure that
            # says whether free-running synthesis can align.
            bare = self._forward(self.model, batch, None, self.active_flows(self.step))
            values["attention_diagonality_without_prior"] = _diagonality(bare, batch)
        if out.gate is not None:
            last = (batch["mel_lengths"] - 1).unsqueeze(1)
            fired = torch.sigmoid(out.gate.float().gather(1, last)).squeeze(1) > self.model.config.gate_threshold
            values["gate_stop_found"] = float(fired.float().mean())
        return values

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        out = Examples()
        _, forward = self._losses(self.model, batch, None, None)
        n_tokens, n_frames = int(batch["ids_lengths"][0]), int(batch["mel_lengths"][0])
        out.images["alignment"] = plot_alignment(forward.attns[0][0, :n_frames, :n_tokens].t().float().cpu(),
                                                 "teacher-forced alignment (first flow)")
        speaker = batch["speaker"][:1] if self.model.n_speakers > 1 else None
        ids = batch["ids"][:1, :n_tokens]
        limit = min(self.model.config.max_decoder_steps, 2 * n_frames + 10)
        generator = torch.Generator().manual_seed(0)
        z = torch.randn(1, self.model.config.n_mel_channels, limit, generator=generator).to(ids.device) * 0.5
        free = self.model.infer(z, ids, batch["ids_lengths"][:1], speaker)
        length = int(free.lengths[0])
        mel = free.mel[0, :, :length].float().cpu()
        alignment = free.attns[-1][0, :length].t().float().cpu()
        report = check_alignment(alignment, n_tokens, bool(free.hit_limit[0]), n_frames=max(length, 1))
        out.images["alignment_free_running"] = plot_alignment(alignment, f"sigma 0.5: {report.summary()}")
        out.images["mel"] = plot_mels({"target": batch["mel"][0, :, :n_frames].float().cpu(), "sigma 0.5": mel})
        if self.options.n_audio_examples > 0:
            out.audio["griffin_lim/0"] = griffin_lim(mel, self.info.mel_config)
        return out


def _diagonality(out: FlowtronOutput, batch: Batch) -> float:
    """Mean share of the first flow's teacher-forced attention near the diagonal."""
    attn = out.attns[0]
    diagonal = [diagonal_share(attn[i].t(), int(batch["ids_lengths"][i]), int(batch["mel_lengths"][i]))
                for i in range(attn.size(0))]
    return sum(diagonal) / len(diagonal)

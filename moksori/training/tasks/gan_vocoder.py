"""GAN vocoder training (HiFi-GAN's losses and its multi-period and multi-scale discriminators),
shared by every feed-forward generator trained that way: HiFi-GAN and Vocos."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moksori.audio import MelConfig, MelSpectrogram
from moksori.models.hifigan import (
    MEL_LOSS_WEIGHT,
    Generator,
    HiFiGANConfig,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminator_total_loss,
    generator_total_loss,
    mel_loss,
    multi_resolution_stft_loss,
)
from moksori.models.vocos import Vocos, VocosConfig
from moksori.training.logging import Examples, plot_mels
from moksori.training.recipe import Recipe
from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, vocoder_config

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["GANVocoderOptions", "GANVocoderTask", "HiFiGANTask", "VocosTask", "random_segments"]


@dataclass
class GANVocoderOptions:
    """A GAN vocoder's own training settings (a recipe's ``options``): whether and from which
    step the discriminators train, and an optional multi-resolution STFT loss on the generator."""

    adversarial: bool = True
    adversarial_start_step: int = 0
    stft_loss: bool = False
    stft_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.adversarial_start_step < 0:
            raise ValueError(f"adversarial_start_step must be >= 0, got {self.adversarial_start_step}")


# The data's mel framing under HiFi-GAN's config names (jik876/hifi-gan config_v1.json).
HIFIGAN_FRAMING = {
    "num_mels": "n_mels",
    "sampling_rate": "sample_rate",
    "n_fft": "n_fft",
    "hop_size": "hop_length",
    "win_size": "win_length",
    "fmin": "fmin",
    "fmax": "fmax",
}


def random_segments(
    batch: Batch, segment_frames: int, hop: int, generator: torch.Generator, pad_value: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random window of ``segment_frames`` mel frames per utterance and its matching audio.

    Returns wave ``(b, 1, segment_frames * hop)`` and mel ``(b, n_mels, segment_frames)``;
    utterances shorter than a segment are padded (silence, and the log-mel of silence).
    """
    waves, mels = batch["wave"], batch["mel"]
    wave_out = waves.new_zeros(waves.shape[0], 1, segment_frames * hop)
    mel_out = mels.new_full((mels.shape[0], mels.shape[1], segment_frames), pad_value)
    for i in range(waves.shape[0]):
        frames = min(int(batch["mel_lengths"][i]), int(batch["wave_lengths"][i]) // hop)
        start = 0
        if frames > segment_frames:
            start = int(torch.randint(0, frames - segment_frames + 1, (1,), generator=generator))
        n = min(segment_frames, frames)
        mel_out[i, :, :n] = mels[i, :, start : start + n]
        wave_out[i, 0, : n * hop] = waves[i, start * hop : (start + n) * hop]
    return wave_out, mel_out


class GANVocoderTask(Task):
    """GAN vocoder training (HiFi-GAN's losses and discriminators) for a generator ``mel → wave``.
    A subclass names the generator, its config class (with ``preset``, the framing keys of
    ``framing``, ``segment_size``, ``learning_rate``, ``adam_b1``/``adam_b2``, ``lr_decay`` and
    ``fmax_for_loss``) and its default preset."""

    inference_name = "generator"
    load_wave = True
    default_grad_clip = 0.0
    options_class = GANVocoderOptions
    generator_class: type[nn.Module]
    config_class: type
    default_preset: str
    framing: dict[str, str] = HIFIGAN_FRAMING

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.config = vocoder_config(recipe, info, self.config_class, self.default_preset, self.framing)
        self.nets["generator"] = self.generator_class(self.config).to(device)
        self.nets["mpd"] = MultiPeriodDiscriminator().to(device)
        self.nets["msd"] = MultiScaleDiscriminator().to(device)
        loss_mel = MelConfig.from_dict({**info.mel_config.to_dict(), "fmax": self.config.fmax_for_loss})
        self.loss_mel = MelSpectrogram(loss_mel).to(device)

    def model_config(self) -> dict[str, Any]:
        return self.config.to_dict()

    def optimizers(self) -> list[OptimizerSpec]:
        config = self.config
        lr = self.recipe.train.lr if self.recipe.train.lr is not None else config.learning_rate
        betas = (config.adam_b1, config.adam_b2)

        def lr_at(step: int, epoch: int) -> float:
            return lr * config.lr_decay**epoch

        specs = [OptimizerSpec("generator", torch.optim.AdamW(self.trainable("generator"), lr, betas=betas), lr_at)]
        disc = self.trainable("mpd", "msd")
        if disc:
            specs.append(OptimizerSpec("discriminator", torch.optim.AdamW(disc, lr, betas=betas), lr_at))
        return specs

    def adversarial_at(self, step: int) -> bool:
        options = self.options
        return options.adversarial and step >= options.adversarial_start_step and bool(self.trainable("mpd", "msd"))

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        generator = torch.Generator().manual_seed(self.recipe.train.seed * 1_000_003 + step)
        hop = self.info.mel_config.hop_length
        segment_frames = self.config.segment_size // hop
        y, mel = random_segments(batch, segment_frames, hop, generator,
                                 math.log(self.info.mel_config.clamp))
        metrics: dict[str, float] = {}
        with ctx.autocast():
            y_hat = self.net("generator")(mel)
        y_hat = y_hat.float()
        adversarial = self.adversarial_at(step)
        if adversarial:
            with ctx.autocast():
                loss_d, parts_d = discriminator_total_loss(self.net("mpd"), self.net("msd"), y, y_hat)
            ctx.optimize("discriminator", loss_d.float(), self.trainable("mpd", "msd"))
            metrics.update(parts_d, disc=loss_d.item())
        with ctx.autocast():
            if adversarial:
                loss_g, parts_g = generator_total_loss(self.net("mpd"), self.net("msd"), y, y_hat, self.loss_mel)
            else:
                loss_g = mel_loss(self.loss_mel, y, y_hat)
                parts_g = {"mel": loss_g.item()}
        loss_g = loss_g.float()
        if self.options.stft_loss:
            stft = multi_resolution_stft_loss(y, y_hat)
            loss_g = loss_g + self.options.stft_loss_weight * stft
            parts_g["stft"] = stft.item()
        ctx.optimize("generator", loss_g, self.trainable("generator"))
        metrics.update(parts_g, loss=loss_g.item())
        # The unweighted mel L1, comparable between adversarial and mel-only phases.
        metrics["mel_l1"] = parts_g["mel"] / MEL_LOSS_WEIGHT
        return metrics

    def _vocode_row(self, batch: Batch, row: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Row ``row`` vocoded at its own length (in a padded batch the padding reached its last
        frames through the generator's receptive field and the STFT of the real audio), and the
        loss mels of the real and the generated audio: ``(1, samples)``, ``(1, n_mels, frames)`` x 2."""
        frames, samples = int(batch["mel_lengths"][row]), int(batch["wave_lengths"][row])
        y_hat = self.nets["generator"](batch["mel"][row : row + 1, :, :frames]).squeeze(1)
        n = min(y_hat.shape[-1], samples)
        return y_hat, self.loss_mel(batch["wave"][row : row + 1, :n]), self.loss_mel(y_hat[:, :n])

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        total, counted = 0.0, 0
        for row in range(batch["mel"].shape[0]):
            _, mel_real, mel_fake = self._vocode_row(batch, row)
            frames = min(int(batch["mel_lengths"][row]), mel_real.shape[-1])
            total += float((mel_real[..., :frames] - mel_fake[..., :frames]).abs().mean(dim=1).sum())
            counted += frames
        return {"mel_l1": total / counted}

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        y_hat, mel_real, mel_fake = self._vocode_row(batch, 0)
        frames = int(batch["mel_lengths"][0])
        samples = int(batch["wave_lengths"][0])
        return Examples(
            images={"mel": plot_mels({"real": mel_real[0, :, :frames], "generated": mel_fake[0, :, :frames]})},
            audio={"generated/0": y_hat[0, :samples].float().cpu().numpy()},
        )


class HiFiGANTask(GANVocoderTask):
    generator_class = Generator
    config_class = HiFiGANConfig
    default_preset = "v1"


class VocosTask(GANVocoderTask):
    """Vocos: ConvNeXt + inverse-STFT generator; usually trained with ``adversarial: false`` and
    ``stft_loss: true`` first (mel + multi-resolution STFT), then with the discriminators."""

    generator_class = Vocos
    config_class = VocosConfig
    default_preset = "small"

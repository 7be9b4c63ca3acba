"""WaveGlow training: maximum likelihood of random audio segments given their mels (ground-truth
mels, or an acoustic model's teacher-forced/aligned ones through ``vocoder_finetune_from``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from moksori.models.waveglow import DEFAULT_SIGMA, WaveGlow, WaveGlowConfig, WaveGlowLoss
from moksori.training.logging import Examples, plot_mels
from moksori.training.recipe import Recipe
from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, vocoder_config
from moksori.training.tasks.gan_vocoder import random_segments

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["WaveGlowTask", "waveglow_config"]

# The data's framing under WaveGlowConfig's names.
WAVEGLOW_FRAMING = {"n_mel_channels": "n_mels", "sampling_rate": "sample_rate", "hop_size": "hop_length"}
# Validation draws its segments with a fixed seed, so the numbers compare across evaluations.
VALIDATION_SEED = 0


def waveglow_config(recipe: Recipe, info: DatasetInfo) -> WaveGlowConfig:
    """Preset, then the recipe's ``model_config`` keys, then the data's framing (which must agree)."""
    return vocoder_config(recipe, info, WaveGlowConfig, "base", WAVEGLOW_FRAMING)


class WaveGlowTask(Task):
    inference_name = "model"
    load_wave = True
    default_grad_clip = 0.0  # NVIDIA trains without clipping

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.config = waveglow_config(recipe, info)
        self.nets["model"] = WaveGlow(self.config).to(device)
        self.loss = WaveGlowLoss(self.config.sigma)

    def model_config(self) -> dict[str, Any]:
        return self.config.to_dict()

    def optimizers(self) -> list[OptimizerSpec]:
        lr = self.recipe.train.lr if self.recipe.train.lr is not None else self.config.learning_rate
        optimizer = torch.optim.Adam(self.trainable("model"), lr)
        return [OptimizerSpec("model", optimizer, lambda step, epoch: lr)]

    def _segments(self, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        mel_config = self.info.mel_config
        frames = self.config.segment_size // mel_config.hop_length
        wave, mel = random_segments(batch, frames, mel_config.hop_length, generator, math.log(mel_config.clamp))
        return wave[:, 0].to(self.device), mel.to(self.device)

    def _nll(self, batch: Batch, generator: torch.Generator, model: torch.nn.Module, ctx: Any = None) -> torch.Tensor:
        wave, mel = self._segments(batch, generator)
        if ctx is None:
            return self.loss(model(mel, wave))
        with ctx.autocast():
            z, log_s, log_det_w = model(mel, wave)
        return self.loss((z.float(), [s.float() for s in log_s], [d.float() for d in log_det_w]))

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        generator = torch.Generator().manual_seed(self.recipe.train.seed * 1_000_003 + step)
        loss = self._nll(batch, generator, self.net("model"), ctx)
        ctx.optimize("model", loss, self.trainable("model"))
        return {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        return {"loss": self._nll(batch, torch.Generator().manual_seed(VALIDATION_SEED), self.nets["model"]).item()}

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        """The first utterance vocoded at the default sigma (no denoiser) and its mel beside the real one."""
        from moksori.audio import MelSpectrogram

        model = self.nets["model"]
        frames = int(batch["mel_lengths"][0])
        mel = batch["mel"][:1, :, :frames].to(self.device)
        wave = model.infer(mel, sigma=DEFAULT_SIGMA, generator=torch.Generator().manual_seed(VALIDATION_SEED))[0]
        wave = torch.nan_to_num(wave.float()).clamp(-1.0, 1.0).cpu()
        generated = MelSpectrogram(self.info.mel_config)(wave)
        return Examples(
            images={"mel": plot_mels({"real": batch["mel"][0, :, :frames], "generated": generated[:, :frames]})},
            audio={"generated/0": wave.numpy()},
        )

"""WaveNet training: teacher-forced negative log-likelihood of random audio segments given their
mels (ground-truth mels, or an acoustic model's teacher-forced/aligned ones through the base
Task's ``vocoder_finetune_from``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from moksori.models.wavenet import WaveNet, WaveNetConfig
from moksori.training.logging import Examples, plot_mels
from moksori.training.recipe import Recipe
from moksori.training.tasks.base import Batch, DatasetInfo, OptimizerSpec, Task, vocoder_config
from moksori.training.tasks.gan_vocoder import random_segments

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["WaveNetOptions", "WaveNetTask", "wavenet_config"]

# The data's framing under WaveNetConfig's names.
WAVENET_FRAMING = {"num_mels": "n_mels", "sampling_rate": "sample_rate", "hop_size": "hop_length"}
# Validation and TensorBoard examples draw with fixed seeds, so they compare across evaluations.
VALIDATION_SEED = 0


@dataclass
class WaveNetOptions:
    """WaveNet's own training settings (a recipe's ``options``): how many seconds of the first
    validation utterance TensorBoard gets, generated sample by sample (slow on a CPU: keep short)."""

    example_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.example_seconds) and self.example_seconds >= 0):
            raise ValueError(f"example_seconds must be >= 0, got {self.example_seconds}")


def wavenet_config(recipe: Recipe, info: DatasetInfo) -> WaveNetConfig:
    """Preset, then the recipe's ``model_config`` keys, then the data's framing (which must agree)."""
    return vocoder_config(recipe, info, WaveNetConfig, "base", WAVENET_FRAMING)


class WaveNetTask(Task):
    inference_name = "model"
    load_wave = True
    options_class = WaveNetOptions
    # r9y9/wavenet_vocoder's mixture-of-logistics hparams do not clip (clip_thresh=-1); its norms of
    # 50-150 made a clip at 1 rescale every step and slow the early loss.
    default_grad_clip = 0.0

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.config = wavenet_config(recipe, info)
        self.nets["model"] = WaveNet(self.config).to(device)

    def model_config(self) -> dict[str, Any]:
        return self.config.to_dict()

    def optimizers(self) -> list[OptimizerSpec]:
        config = self.config
        lr = self.recipe.train.lr if self.recipe.train.lr is not None else config.learning_rate
        optimizer = torch.optim.Adam(self.trainable("model"), lr, betas=(config.adam_b1, config.adam_b2))

        def lr_at(step: int, epoch: int) -> float:
            return lr * config.lr_decay_gamma ** (step // config.lr_decay_steps)

        return [OptimizerSpec("model", optimizer, lr_at)]

    def _nll(self, batch: Batch, generator: torch.Generator, model: torch.nn.Module, ctx: Any = None) -> torch.Tensor:
        mel_config = self.info.mel_config
        hop = mel_config.hop_length
        frames = self.config.segment_size // hop
        wave, mel = random_segments(batch, frames, hop, generator, math.log(mel_config.clamp))
        # Samples of real audio per row (a short utterance's segment is padded).
        lengths = torch.clamp(torch.minimum(batch["mel_lengths"], batch["wave_lengths"] // hop), max=frames) * hop
        wave, mel, lengths = wave[:, 0].to(self.device), mel.to(self.device), lengths.to(self.device)
        if ctx is None:
            return model.loss(wave, mel, lengths)
        with ctx.autocast():
            return model.loss(wave, mel, lengths).float()

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        generator = torch.Generator().manual_seed(self.recipe.train.seed * 1_000_003 + step)
        module = self.net("model")
        model = module.module if hasattr(module, "module") else module  # DDP wraps the model
        loss = self._nll(batch, generator, _Loss(module, model), ctx)
        ctx.optimize("model", loss, self.trainable("model"))
        return {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        model = self.nets["model"]
        return {"loss": self._nll(batch, torch.Generator().manual_seed(VALIDATION_SEED), model).item()}

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        """The first ``example_seconds`` of the first utterance, sampled, and its mel beside the real one."""
        from moksori.audio import MelSpectrogram

        frames = min(int(batch["mel_lengths"][0]),
                     max(1, round(self.options.example_seconds * self.config.sampling_rate / self.config.hop_size)))
        if self.options.example_seconds == 0:
            return Examples()
        model = self.nets["model"]
        mel = batch["mel"][:1, :, :frames].to(self.device)
        wave = model.generate(mel, torch.Generator().manual_seed(VALIDATION_SEED))[0].float().cpu()
        generated = MelSpectrogram(self.info.mel_config)(wave)
        return Examples(
            images={"mel": plot_mels({"real": batch["mel"][0, :, :frames], "generated": generated[:, :frames]})},
            audio={"generated/0": wave.numpy()},
        )


class _Loss:
    """``loss(wave, mel, lengths)`` through the runtime module's forward (so DDP sees the call)."""

    def __init__(self, module: torch.nn.Module, model: WaveNet) -> None:
        self.module, self.model = module, model

    def loss(self, wave: torch.Tensor, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.loss(wave, mel, lengths, forward=self.module)

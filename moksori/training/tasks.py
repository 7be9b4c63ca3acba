"""Per-model training hooks: what the one training loop needs to know about a model family.

A :class:`Task` builds its modules from a recipe and the preprocessed data folder, names its
optimizers and learning-rate schedules, and runs one training step through the loop's
:class:`~moksori.training.loop.StepContext` (which owns AMP, gradient scaling, clipping and
the non-finite checks). Loss maths stays in the model files; tasks only call it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from moksori.audio import MelConfig, MelSpectrogram, griffin_lim
from moksori.data.manifest import load_config
from moksori.models.glow_tts import GlowTTS, GlowTTSConfig, GlowTTSOutput, glow_tts_loss
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
from moksori.text import TextFrontend
from moksori.training.logging import Examples, plot_alignment, plot_mels
from moksori.training.recipe import Recipe, RecipeError

if TYPE_CHECKING:
    from moksori.training.loop import StepContext

__all__ = ["DatasetInfo", "GlowTTSTask", "HiFiGANTask", "OptimizerSpec", "TASKS", "Task", "VocosTask", "build_task", "random_segments"]

Batch = dict[str, Any]


@dataclass
class DatasetInfo:
    """What a task needs to know about the preprocessed folder it trains on."""

    root: Path
    n_vocab: int
    speakers: list[str]
    mel_config: MelConfig
    text_settings: dict[str, Any]

    @classmethod
    def from_dir(cls, path: str | Path) -> "DatasetInfo":
        root = Path(path)
        if not (root / "config.json").is_file():
            raise FileNotFoundError(f"{root} is not a preprocessed folder (no config.json); run `moksori preprocess` first")
        config = load_config(root)
        text_settings = dict(config["text"])
        frontend = TextFrontend.from_settings(dict(text_settings))
        return cls(
            root=root,
            n_vocab=len(frontend.symbols),
            # A single unnamed speaker is stored as [""]; checkpoints list no speakers then.
            speakers=[name for name in config.get("speakers") or [] if name] if len(config.get("speakers") or []) <= 1
            else list(config["speakers"]),
            mel_config=MelConfig.from_dict(config["mel"]),
            text_settings=text_settings,
        )


@dataclass
class OptimizerSpec:
    """An optimizer and its learning rate as a function of (step, epoch); the loop sets the rate
    before every step, so a resumed run needs no scheduler state to continue exactly."""

    name: str
    optimizer: torch.optim.Optimizer
    lr_at: Callable[[int, int], float]


class Task:
    """Base of the per-model hooks. Subclasses fill :attr:`nets` (name → module; the inference
    module under :attr:`inference_name`) in ``__init__`` and implement the hooks below."""

    model_name: str = ""
    inference_name: str = "model"
    load_wave: bool = False
    default_grad_clip: float = 0.0

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        self.recipe = recipe
        self.info = info
        self.device = device
        self.nets: dict[str, nn.Module] = {}
        # What the training step calls: the same modules, wrapped in DDP when distributed.
        self.runtime: dict[str, nn.Module] = {}

    def net(self, name: str) -> nn.Module:
        return self.runtime.get(name, self.nets[name])

    def inference_module(self) -> nn.Module:
        return self.nets[self.inference_name]

    def model_config(self) -> dict[str, Any]:
        return self.inference_module().config.to_dict()

    def text_frontend(self) -> dict[str, Any] | None:
        return None

    def grad_clip(self) -> float:
        clip = self.recipe.train.grad_clip
        return self.default_grad_clip if clip is None else float(clip)

    def train(self, mode: bool = True) -> None:
        for module in self.nets.values():
            module.train(mode)

    def trainable(self, *names: str) -> list[nn.Parameter]:
        return [p for name in names for p in self.nets[name].parameters() if p.requires_grad]

    # --- hooks ------------------------------------------------------------------------------
    def optimizers(self) -> list[OptimizerSpec]:
        raise NotImplementedError

    def initialize(self, batch: Batch) -> None:
        """Data-dependent initialisation on the first batch of a fresh (not warm-started) run."""

    def prepare_data(self, rank: int, world_size: int) -> None:
        """Build caches the data loader needs (rank 0 writes, others wait in the loop's barrier)."""

    def wrap_dataset(self, dataset: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
        return dataset

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        raise NotImplementedError

    def validate(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    def examples(self, batch: Batch, step: int) -> Examples:
        return Examples()


# --- Glow-TTS ---------------------------------------------------------------------------------


def _glow_config(recipe: Recipe, info: DatasetInfo) -> GlowTTSConfig:
    values = dict(recipe.model_config)
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
    model_name = "glow_tts"
    inference_name = "model"
    default_grad_clip = 5.0

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
        n_audio = self.recipe.train.n_audio_examples
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


# --- HiFi-GAN ---------------------------------------------------------------------------------

_MEL_TO_HIFIGAN = {
    "num_mels": "n_mels",
    "sampling_rate": "sample_rate",
    "n_fft": "n_fft",
    "hop_size": "hop_length",
    "win_size": "win_length",
    "fmin": "fmin",
    "fmax": "fmax",
}


def _vocoder_config(recipe: Recipe, info: DatasetInfo, config_cls: type, default_preset: str) -> Any:
    """A vocoder config (HiFiGANConfig or VocosConfig): preset, recipe keys, then the data's framing."""
    values = dict(recipe.model_config)
    preset = values.pop("preset", default_preset)
    try:
        base = config_cls.preset(str(preset)).to_dict()
    except ValueError as error:
        raise RecipeError(f"model_config.preset: {error}") from error
    for key, mel_key in _MEL_TO_HIFIGAN.items():
        data_value = getattr(info.mel_config, mel_key)
        if key in values and values[key] != data_value:
            raise RecipeError(
                f"model_config.{key} is {values[key]} but the data's mel config has {mel_key}={data_value}"
            )
        values[key] = data_value
    base.update(values)
    try:
        return config_cls.from_dict(base)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"model_config: {error}") from error


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


class HiFiGANTask(Task):
    """GAN vocoder training (HiFi-GAN's losses and discriminators) for any generator whose config
    carries the HiFi-GAN framing and optimiser keys; :class:`VocosTask` reuses it."""

    model_name = "hifigan"
    inference_name = "generator"
    load_wave = True
    default_grad_clip = 0.0
    generator_class: type[nn.Module] = Generator
    config_class: type = HiFiGANConfig
    default_preset = "v1"

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.config = _vocoder_config(recipe, info, self.config_class, self.default_preset)
        self.nets["generator"] = self.generator_class(self.config).to(device)
        self.nets["mpd"] = MultiPeriodDiscriminator().to(device)
        self.nets["msd"] = MultiScaleDiscriminator().to(device)
        loss_mel = MelConfig.from_dict({**info.mel_config.to_dict(), "fmax": self.config.fmax_for_loss})
        self.loss_mel = MelSpectrogram(loss_mel).to(device)
        self.aligned_mel_dir: Path | None = None

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

    def prepare_data(self, rank: int, world_size: int) -> None:
        source = self.recipe.vocoder_finetune_from
        if not source:
            return
        from moksori.training.warm_start import cache_aligned_mels

        self.aligned_mel_dir = Path(self.recipe.run_dir) / "aligned_mels"
        if rank == 0:
            cache_aligned_mels(source, self.info.root, self.aligned_mel_dir, device=self.device)

    def wrap_dataset(self, dataset: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
        if self.aligned_mel_dir is None:
            return dataset
        from moksori.training.warm_start import AlignedMelDataset

        return AlignedMelDataset(dataset, self.aligned_mel_dir)

    def adversarial_at(self, step: int) -> bool:
        train = self.recipe.train
        return train.adversarial and step >= train.adversarial_start_step and bool(self.trainable("mpd", "msd"))

    def train_step(self, batch: Batch, step: int, ctx: "StepContext") -> dict[str, float]:
        generator = torch.Generator().manual_seed(self.recipe.train.seed * 1_000_003 + step)
        segment_frames = self.config.segment_size // self.config.hop_size
        y, mel = random_segments(batch, segment_frames, self.config.hop_size, generator,
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
        if self.recipe.train.stft_loss:
            stft = multi_resolution_stft_loss(y, y_hat)
            loss_g = loss_g + self.recipe.train.stft_loss_weight * stft
            parts_g["stft"] = stft.item()
        ctx.optimize("generator", loss_g, self.trainable("generator"))
        metrics.update(parts_g, loss=loss_g.item())
        # The unweighted mel L1, comparable between adversarial and mel-only phases.
        metrics["mel_l1"] = parts_g["mel"] / MEL_LOSS_WEIGHT
        return metrics

    def _full_utterances(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        generator = self.nets["generator"]
        y_hat = generator(batch["mel"]).squeeze(1)
        n = min(y_hat.shape[-1], batch["wave"].shape[-1])
        mel_real = self.loss_mel(batch["wave"][:, :n])
        mel_fake = self.loss_mel(y_hat[:, :n])
        return y_hat, mel_real, mel_fake

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        _, mel_real, mel_fake = self._full_utterances(batch)
        frames = torch.clamp(batch["mel_lengths"], max=mel_real.shape[-1])
        mask = (torch.arange(mel_real.shape[-1], device=frames.device)[None, :] < frames[:, None]).float()
        error = (mel_real - mel_fake).abs().mean(dim=1) * mask
        return {"mel_l1": (error.sum() / mask.sum()).item()}

    @torch.no_grad()
    def examples(self, batch: Batch, step: int) -> Examples:
        first = {key: value[:1] for key, value in batch.items()}
        y_hat, mel_real, mel_fake = self._full_utterances(first)
        frames = int(first["mel_lengths"][0])
        samples = int(first["wave_lengths"][0])
        return Examples(
            images={"mel": plot_mels({"real": mel_real[0, :, :frames], "generated": mel_fake[0, :, :frames]})},
            audio={"generated/0": y_hat[0, :samples].float().cpu().numpy()},
        )


class VocosTask(HiFiGANTask):
    """Vocos: ConvNeXt + inverse-STFT generator; usually trained with ``adversarial: false`` and
    ``stft_loss: true`` first (mel + multi-resolution STFT), then with the discriminators."""

    model_name = "vocos"
    generator_class = Vocos
    config_class = VocosConfig
    default_preset = "small"


TASKS: dict[str, type[Task]] = {"glow_tts": GlowTTSTask, "hifigan": HiFiGANTask, "vocos": VocosTask}


def build_task(recipe: Recipe, info: DatasetInfo, device: torch.device) -> Task:
    try:
        cls = TASKS[recipe.model]
    except KeyError:
        raise RecipeError(f"model {recipe.model!r} has no training task; trainable: {', '.join(sorted(TASKS))}") from None
    return cls(recipe, info, device)


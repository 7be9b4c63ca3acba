"""Model families are plugins: a toy acoustic model and a toy vocoder, defined and registered
only in this file, go through train → bundle → say → ONNX export → streaming with no other
file knowing them (docs/adding-a-model.md describes the same steps for a real family)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from moksori.models import registry
from moksori.models.interfaces import (
    AcousticModel,
    AcousticOutput,
    Controls,
    ConvVocoder,
    NoiseSource,
    OnnxGraph,
)
from moksori.synthesis import Synthesizer, export_onnx, load_voice
from moksori.training.loop import StepContext
from moksori.training.pipeline import Stage, make_voice
from moksori.training.recipe import DataRecipe, Recipe, TrainRecipe
from moksori.training.tasks import Batch, DatasetInfo, OptimizerSpec, Task

# --- a toy acoustic family: every token lasts FRAMES frames, its mel is a learned vector ----------


@dataclass
class ToyAcousticConfig:
    n_vocab: int
    n_mels: int = 80
    frames_per_token: float = 3.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ToyAcousticConfig":
        return cls(**data)


class ToyAcoustic(nn.Module):
    def __init__(self, config: ToyAcousticConfig) -> None:
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.n_vocab, config.n_mels)
        nn.init.constant_(self.emb.weight, -5.0)

    def expand(self, ids: torch.Tensor, n_tokens: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Mel ``[1, n_mels, frames]``: frame j shows token floor(j * n_tokens / frames)."""
        source = torch.div(torch.arange(frames) * n_tokens, frames, rounding_mode="floor")
        return self.emb(ids[0].index_select(0, source)).transpose(0, 1).unsqueeze(0)


class ToyAcousticAdapter(AcousticModel):
    knobs = ("length_scale",)

    def infer(self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource) -> AcousticOutput:
        frames = [max(1, math.ceil(int(n) * self.model.config.frames_per_token * controls.length_scale)) for n in lengths]
        mel = torch.zeros(ids.size(0), self.model.config.n_mels, max(frames))
        for row, (n, n_frames) in enumerate(zip(lengths.tolist(), frames)):
            mel[row, :, :n_frames] = self.model.expand(ids[row : row + 1], torch.tensor(n), torch.tensor(n_frames))[0]
        return AcousticOutput(mel, torch.tensor(frames), None)

    def teacher_forced_mel(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        mel = torch.zeros_like(batch["mel"])
        for row in range(mel.size(0)):
            n, frames = batch["ids_lengths"][row], batch["mel_lengths"][row]
            mel[row, :, :frames] = self.model.expand(batch["ids"][row : row + 1], n, frames)[0]
        return mel, batch["mel_lengths"]

    def forward(self, ids: torch.Tensor, ids_lengths: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        frames = torch.ceil(ids_lengths[0] * self.model.config.frames_per_token * scales[0]).long()
        return self.model.expand(ids, ids_lengths[0], frames)

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        args = (torch.ones(1, 7, dtype=torch.long), torch.tensor([7]), torch.tensor([1.0]))
        return OnnxGraph(args, ["input", "input_lengths", "scales"], ["mel"], {"input": {1: "t"}, "mel": {2: "frames"}})

    @classmethod
    def onnx_feeds(cls, ids: list[int], controls: Controls, noise: NoiseSource, n_mels: int,
                   input_names: set[str]) -> dict[str, np.ndarray]:
        return {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([controls.length_scale], dtype=np.float32),
        }


class ToyAcousticTask(Task):
    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.nets["model"] = ToyAcoustic(ToyAcousticConfig(info.n_vocab, info.mel_config.n_mels)).to(device)

    def text_frontend(self) -> dict[str, Any] | None:
        return self.info.text_settings

    def optimizers(self) -> list[OptimizerSpec]:
        return [OptimizerSpec("model", torch.optim.Adam(self.trainable("model"), lr=0.1), lambda step, epoch: 0.1)]

    def _loss(self, batch: Batch) -> torch.Tensor:
        mel, lengths = ToyAcousticAdapter(self.nets["model"]).teacher_forced_mel(batch)
        mask = (torch.arange(mel.size(2))[None, :] < lengths[:, None]).unsqueeze(1)
        return ((mel - batch["mel"]).abs() * mask).sum() / (mask.sum() * mel.size(1))

    def train_step(self, batch: Batch, step: int, ctx: StepContext) -> dict[str, float]:
        loss = self._loss(batch)
        ctx.optimize("model", loss, self.trainable("model"))
        return {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        return {"loss": self._loss(batch).item()}


# --- a toy vocoder family: each frame's samples from a 3-frame window of mel --------------------


@dataclass
class ToyVocoderConfig:
    num_mels: int = 80
    hop_size: int = 256

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ToyVocoderConfig":
        return cls(**data)


class ToyVocoder(nn.Module):
    context_frames = 1

    def __init__(self, config: ToyVocoderConfig) -> None:
        super().__init__()
        self.config = config
        self.conv = nn.Conv1d(config.num_mels, config.hop_size, 3, padding=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        frames = torch.tanh(0.01 * self.conv(mel))  # [b, hop, frames]
        return frames.transpose(1, 2).reshape(mel.size(0), 1, -1)

    def infer(self, mel: torch.Tensor) -> torch.Tensor:
        wave = self(mel.unsqueeze(0) if mel.dim() == 2 else mel).squeeze(1)
        return wave[0] if mel.dim() == 2 else wave


class ToyVocoderTask(Task):
    inference_name = "generator"
    load_wave = True

    def __init__(self, recipe: Recipe, info: DatasetInfo, device: torch.device) -> None:
        super().__init__(recipe, info, device)
        self.nets["generator"] = ToyVocoder(ToyVocoderConfig(info.mel_config.n_mels, info.mel_config.hop_length)).to(device)

    def optimizers(self) -> list[OptimizerSpec]:
        return [OptimizerSpec("generator", torch.optim.Adam(self.trainable("generator"), lr=1e-2), lambda s, e: 1e-2)]

    def _loss(self, batch: Batch) -> torch.Tensor:
        wave = self.nets["generator"](batch["mel"]).squeeze(1)
        n = min(wave.size(1), batch["wave"].size(1))
        return (wave[:, :n] - batch["wave"][:, :n]).abs().mean()

    def train_step(self, batch: Batch, step: int, ctx: StepContext) -> dict[str, float]:
        loss = self._loss(batch)
        ctx.optimize("generator", loss, self.trainable("generator"))
        return {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, batch: Batch) -> dict[str, float]:
        return {"loss": self._loss(batch).item()}


@pytest.fixture
def toy_families():
    acoustic = registry.register(registry.Family(
        "toy_acoustic", registry.ACOUSTIC, "a test family", ToyAcoustic, ToyAcousticConfig, ("one",), "one",
        lambda preset, *, n_vocab, n_mels=80, **_: ToyAcousticConfig(n_vocab, n_mels), ToyAcousticAdapter,
        task=ToyAcousticTask,
    ))
    vocoder = registry.register(registry.Family(
        "toy_vocoder", registry.VOCODER, "a test family", ToyVocoder, ToyVocoderConfig, ("one",), "one",
        lambda preset, **_: ToyVocoderConfig(), ConvVocoder, task=ToyVocoderTask,
    ))
    yield acoustic, vocoder
    registry.unregister("toy_acoustic")
    registry.unregister("toy_vocoder")


def _stage(name: str, model: str, steps: int) -> Stage:
    recipe = Recipe(
        model=model, data=DataRecipe(dir="set-by-make_voice", batch_size=4), run_dir="set-by-make_voice",
        train=TrainRecipe(steps=steps, eval_interval=steps, checkpoint_interval=steps, log_interval=1, progress=False),
    )
    return Stage(name, recipe, registry.get(model).role)


def test_toy_families_train_bundle_speak_export_and_stream(toy_families, sample_data: Path, tmp_path: Path) -> None:
    assert "toy_acoustic" in registry.names(registry.ACOUSTIC, trainable=True)
    stages = [_stage("acoustic", "toy_acoustic", 30), _stage("vocoder", "toy_vocoder", 10)]
    stages[1].recipe.vocoder_finetune_from = "this run's acoustic model"  # make_voice wires it in
    voice_dir = make_voice(sample_data, stages, tmp_path / "toy_voice", run_dir=tmp_path / "runs", name="toy")

    # Trained: the acoustic loss fell (a token-rate mel cannot fit much better).
    metrics = [line for line in (tmp_path / "runs" / "acoustic" / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    losses = [json.loads(line)["loss"] for line in metrics if json.loads(line).get("split", "train") == "train"]
    assert losses[-1] < 0.75 * losses[0]
    # The vocoder was trained on the acoustic model's teacher-forced mels.
    assert len(list((tmp_path / "runs" / "vocoder" / "aligned_mels").glob("*.npy"))) == 9

    voice = load_voice(voice_dir)
    assert voice.config["acoustic"]["model_name"] == "toy_acoustic" and voice.vocoder_name == "toy_vocoder"
    assert isinstance(voice.acoustic_model, ToyAcousticAdapter) and voice.vocoder_model.context_frames == 16

    text = "오늘은 날씨가 정말 좋아서 산책하기에 딱 좋은 날이에요. 반갑습니다. 고맙습니다."
    synth = Synthesizer(voice_dir, use_onnx=False)
    wave = synth.synthesize(text, seed=1, sentence_silence_s=0.1, paragraph_silence_s=0.1)
    slow = synth.synthesize(text, seed=1, speed=0.5, sentence_silence_s=0.1, paragraph_silence_s=0.1)
    assert wave.dtype == np.float32 and np.abs(wave).max() > 0 and slow.size > 1.8 * wave.size - 2 * 22050 * 0.2

    chunks = list(synth.stream(text, seed=1, sentence_silence_s=0.1, paragraph_silence_s=0.1))
    assert len(chunks) == 4  # the first sentence's head, its rest, then one chunk per sentence
    np.testing.assert_allclose(np.concatenate(chunks), wave, atol=1e-6)

    written = export_onnx(voice_dir)
    assert {p.name for p in written} == {"acoustic.onnx", "vocoder.onnx"}
    onnx_synth = Synthesizer(voice_dir, use_onnx=True)
    assert onnx_synth.uses_onnx
    np.testing.assert_allclose(onnx_synth.synthesize(text, seed=1, sentence_silence_s=0.1, paragraph_silence_s=0.1),
                               wave, atol=1e-4)

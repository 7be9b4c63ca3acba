"""Tiny checkpoints and voices for the synthesis tests (untrained weights; shapes and plumbing only)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from moksori.audio import MelConfig
from moksori.models import build_model
from moksori.models.glow_tts import GlowTTSConfig
from moksori.models.hifigan import HiFiGANConfig
from moksori.synthesis import export_onnx, make_bundle
from moksori.text import TextFrontend

FRAMES_PER_TOKEN = 4.0


def tiny_glow_tts(frontend: TextFrontend, n_speakers: int = 0, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    extra: dict[str, Any] = {"n_speakers": n_speakers, "gin_channels": 8} if n_speakers > 1 else {}
    model = build_model("glow_tts", GlowTTSConfig.tiny(len(frontend.symbols), **extra).to_dict())
    with torch.no_grad():
        # Untrained flows start as the identity (zero last layers); perturb them so the decoder
        # actually computes something, and give every token a few frames so speed matters.
        for module in model.decoder.modules():
            if hasattr(module, "end"):
                module.end.weight.normal_(0.0, 0.02)
        model.encoder.proj_w.proj.bias.fill_(math.log(FRAMES_PER_TOKEN))
    return model


def tiny_hifigan(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("hifigan", HiFiGANConfig.preset("tiny").to_dict())


def write_checkpoint(
    path: Path,
    model: torch.nn.Module,
    model_name: str,
    *,
    frontend: TextFrontend | None = None,
    mel_config: MelConfig | None = None,
    speakers: list[str] | None = None,
    step: int = 1000,
) -> Path:
    """A checkpoint in the shared schema, with a bulky fake optimizer state like a real one."""
    state = model.state_dict()
    checkpoint = {
        "format": "moksori-checkpoint-1",
        "model_name": model_name,
        "model_config": model.config.to_dict(),
        "model": state,
        "step": step,
        "epoch": 3,
        "text_frontend": frontend.settings() if frontend is not None else None,
        "mel_config": (mel_config or MelConfig()).to_dict(),
        "speakers": speakers or [],
        "train_state": {"optimizer": {k: torch.randn_like(v) for k, v in state.items()}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="session")
def frontend() -> TextFrontend:
    return TextFrontend("ko", add_blank=True)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, frontend: TextFrontend) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "acoustic": write_checkpoint(root / "glow" / "latest.pt", tiny_glow_tts(frontend), "glow_tts", frontend=frontend),
        "vocoder": write_checkpoint(root / "hifigan.pt", tiny_hifigan(), "hifigan", step=2000),
    }


@pytest.fixture(scope="session")
def voice_dir(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("voices") / "tiny"
    return make_bundle(checkpoints["acoustic"], out, vocoder_ckpt=checkpoints["vocoder"], description="test voice")


@pytest.fixture(scope="session")
def onnx_voice_dir(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("voices") / "tiny_onnx"
    make_bundle(checkpoints["acoustic"], out, vocoder_ckpt=checkpoints["vocoder"])
    export_onnx(out)
    return out


class Helpers:
    tiny_glow_tts = staticmethod(tiny_glow_tts)
    tiny_hifigan = staticmethod(tiny_hifigan)
    write_checkpoint = staticmethod(write_checkpoint)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    """The checkpoint helpers above (test modules cannot import conftest under importlib mode)."""
    return Helpers

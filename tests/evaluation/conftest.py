"""Espeak clips, a tiny voice and a tiny preprocessed dataset for the evaluation tests.

The voice builder is a copy of the one in tests/synthesis/conftest.py (test packages do
not import each other): untrained weights, so the voice babbles, but every stage runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from moksori.audio import MelConfig
from moksori.espeak import synthesize
from moksori.data.preprocess import PreprocessConfig, preprocess_dataset
from moksori.data.report import format_report
from moksori.data.sample_dataset import make_sample_dataset
from moksori.models import build_model
from moksori.models.glow_tts import GlowTTSConfig
from moksori.models.hifigan import HiFiGANConfig
from moksori.synthesis import make_bundle
from moksori.text import TextFrontend

SENTENCE = "안녕하세요, 오늘 날씨가 정말 좋네요."
OTHER_SENTENCE = "저는 내일 아침에 도서관에 갈 거예요."


def _tiny_glow_tts(frontend: TextFrontend) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("glow_tts", GlowTTSConfig.tiny(len(frontend.symbols)).to_dict())
    with torch.no_grad():
        # Untrained flows start as the identity; perturb them, and give every token ~4 frames.
        for module in model.decoder.modules():
            if hasattr(module, "end"):
                module.end.weight.normal_(0.0, 0.02)
        model.encoder.proj_w.proj.bias.fill_(math.log(4.0))
    return model


def _tiny_hifigan() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("hifigan", HiFiGANConfig.preset("tiny").to_dict())


def _write_checkpoint(path: Path, model: torch.nn.Module, model_name: str, frontend: TextFrontend | None) -> Path:
    checkpoint = {
        "format": "moksori-checkpoint-1",
        "model_name": model_name,
        "model_config": model.config.to_dict(),
        "model": model.state_dict(),
        "step": 1000,
        "epoch": 1,
        "text_frontend": frontend.settings() if frontend is not None else None,
        "mel_config": MelConfig().to_dict(),
        "speakers": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="session")
def tiny_voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_voice")
    frontend = TextFrontend("ko", add_blank=True)
    acoustic = _write_checkpoint(root / "glow.pt", _tiny_glow_tts(frontend), "glow_tts", frontend)
    vocoder = _write_checkpoint(root / "hifigan.pt", _tiny_hifigan(), "hifigan", None)
    return make_bundle(acoustic, root / "tiny", vocoder_ckpt=vocoder, description="evaluation test voice")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preprocessed folder of 4 espeak clips, 2 of them in val.jsonl."""
    root = tmp_path_factory.mktemp("eval_data")
    raw = make_sample_dataset(root / "raw", language="ko", n=4, workers=1, progress=False)
    config = PreprocessConfig(language="ko", add_blank=True, val_fraction=0.5, seed=0)
    report = preprocess_dataset(raw, root / "pre", config, workers=1, progress=False)
    assert report.n_val == 2, format_report(report)
    return root / "pre"


@pytest.fixture(scope="session")
def clips() -> dict[str, tuple[np.ndarray, int]]:
    """espeak-ng recordings: a sentence, a different sentence, and the first one spoken slower."""
    return {
        "sentence": synthesize(SENTENCE),
        "other": synthesize(OTHER_SENTENCE),
        "slower": synthesize(SENTENCE, rate=140),
    }

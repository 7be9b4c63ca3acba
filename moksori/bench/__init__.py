"""Benchmarks (not tests): ``moksori bench preprocess|train|synth|serve``."""

from pathlib import Path

import torch

from moksori.audio import MelConfig
from moksori.text import TextFrontend


def write_untrained_checkpoint(path: Path, model: torch.nn.Module, model_name: str, frontend: TextFrontend | None) -> Path:
    """A checkpoint in the training schema for a freshly built model: speed does not depend on
    training, so the benchmarks measure real architectures with random weights."""
    torch.save(
        {
            "format": "moksori-checkpoint-1",
            "model_name": model_name,
            "model_config": model.config.to_dict(),
            "model": model.state_dict(),
            "step": 0,
            "epoch": 0,
            "text_frontend": frontend.settings() if frontend is not None else None,
            "mel_config": MelConfig().to_dict(),
            "speakers": [],
            "train_state": {},
        },
        path,
    )
    return path

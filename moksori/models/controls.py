"""What a synthesis request controls and where its noise comes from; no torch.

:class:`Controls` and :data:`NoiseSource` are part of the model interfaces
(:mod:`moksori.models.interfaces` re-exports them); they live here so that the ONNX Runtime path
(:mod:`moksori.models.onnx_runners`) runs without importing torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# (row in the batch, frames, channels) -> float32 standard normal noise [channels, frames]; a
# longer draw starts with the same values as a shorter one.
NoiseSource = Callable[[int, int, int], np.ndarray]

KNOBS = ("length_scale", "noise_scale", "speaker_id")


@dataclass(frozen=True)
class Controls:
    """What a request may change. ``noise_scale`` is the acoustic model's sampling temperature
    (Glow-TTS noise scale, Flowtron's sigma); ``style`` holds family-defined inputs (a reference
    mel, an interpolation weight, a mixture component), ignored by families without style.
    ``sigma`` and ``denoise`` are the vocoder's (a flow vocoder's sampling temperature, a
    denoiser's strength): None means the vocoder's own default."""

    length_scale: float = 1.0
    noise_scale: float = 0.667
    speaker_id: int | None = None
    style: dict[str, Any] = field(default_factory=dict)
    sigma: float | None = None
    denoise: float | None = None
    # The request's seed for a vocoder that samples (WaveNet): None means fresh randomness.
    seed: int | None = None


def streams_natively(vocoder: Any) -> bool:
    """Whether ``vocoder`` overrides :meth:`moksori.models.interfaces.Vocoder.stream` (pieces as
    they are made). Without torch loaded there is no such vocoder, so this never imports it."""
    interfaces = sys.modules.get("moksori.models.interfaces")
    if interfaces is None:
        return False
    base = interfaces.Vocoder
    return isinstance(vocoder, base) and type(vocoder).stream is not base.stream


__all__ = ["Controls", "KNOBS", "NoiseSource", "streams_natively"]

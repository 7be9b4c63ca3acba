"""Audio: reading/writing, resampling, trimming, loudness, the mel transform, clip quality.

Knows nothing about datasets or models. Importing it does not import torch: the mel transform
(:mod:`moksori.audio.mel`, torch and librosa) loads on first use of its names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from moksori.audio.config import MelConfig
from moksori.audio.io import (
    AudioError,
    load_audio,
    load_audio_with_rate,
    pcm16_round_trip,
    resample,
    save_wav,
    wav_bytes,
)
from moksori.audio.processing import normalize_loudness, trim_silence
from moksori.audio.quality import (
    ClipReport,
    Problem,
    QualityThresholds,
    analyze_clip,
    check_clip,
)

if TYPE_CHECKING:
    from moksori.audio.mel import MelSpectrogram, griffin_lim, mel_basis, mel_spectrogram

_MEL_NAMES = ("MelSpectrogram", "griffin_lim", "mel_basis", "mel_spectrogram")


def __getattr__(name: str) -> Any:
    if name in _MEL_NAMES:
        return getattr(importlib.import_module("moksori.audio.mel"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AudioError",
    "ClipReport",
    "MelConfig",
    "MelSpectrogram",
    "Problem",
    "QualityThresholds",
    "analyze_clip",
    "check_clip",
    "griffin_lim",
    "load_audio",
    "load_audio_with_rate",
    "mel_basis",
    "mel_spectrogram",
    "normalize_loudness",
    "resample",
    "pcm16_round_trip",
    "save_wav",
    "trim_silence",
    "wav_bytes",
]

"""Audio: reading/writing, resampling, trimming, loudness, the mel transform, clip quality.

Knows nothing about datasets or models.
"""

from moksori.audio.io import (
    AudioError,
    load_audio,
    load_audio_with_rate,
    pcm16_round_trip,
    resample,
    save_wav,
    wav_bytes,
)
from moksori.audio.mel import (
    MelConfig,
    MelSpectrogram,
    griffin_lim,
    mel_basis,
    mel_spectrogram,
)
from moksori.audio.processing import normalize_loudness, trim_silence
from moksori.audio.quality import (
    ClipReport,
    Problem,
    QualityThresholds,
    analyze_clip,
    check_clip,
)

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

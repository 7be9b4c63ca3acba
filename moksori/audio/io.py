"""Reading and writing audio files.

Every waveform inside moksori is a 1-D float32 numpy array in [-1, 1]. Files are read
with soundfile (libsndfile reads wav, flac, ogg/vorbis, opus and mp3) and written as
16-bit PCM WAV.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

from moksori.atomic import atomic_path


class AudioError(ValueError):
    """A file could not be used as audio; the message names the file and the problem."""


def load_audio(path: str | Path, sample_rate: int | None = 22050) -> np.ndarray:
    """Read an audio file as float32 mono in [-1, 1], resampled to `sample_rate`.

    Stereo (or more channels) is averaged to mono. `sample_rate=None` keeps the
    file's own rate. Raises AudioError for a missing, empty or unreadable file.
    """
    wave, file_rate = load_audio_with_rate(path)
    if sample_rate is not None and sample_rate != file_rate:
        wave = resample(wave, file_rate, sample_rate)
    return wave


def load_audio_with_rate(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file at its own rate: (float32 mono wave in [-1, 1], sample_rate)."""
    path = Path(path)
    _check_file(path)
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: not a readable audio file ({error})") from error
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio file contains no samples (zero length)")
    wave = data.mean(axis=1, dtype=np.float32)
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return np.clip(wave, -1.0, 1.0).astype(np.float32, copy=False), int(file_rate)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D waveform with soxr (high quality). Returns float32."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    wave = np.asarray(wave, dtype=np.float32)
    if orig_sr == target_sr or wave.size == 0:
        return wave.copy()
    return soxr.resample(wave, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def save_wav(path: str | Path, wave: np.ndarray | torch.Tensor, sample_rate: int) -> None:
    """Write a mono 16-bit PCM WAV atomically (temp file in the same folder, then rename).

    Samples are clipped to [-1, 1]; the parent folder is created if needed. A reader
    never sees a half-written file, and an existing file is only replaced on success.
    """
    path = Path(path)
    pcm = _to_pcm16(wave, sample_rate)
    with atomic_path(path) as temp:
        soundfile.write(temp, pcm, sample_rate, format="WAV", subtype="PCM_16")


def wav_bytes(wave: np.ndarray | torch.Tensor, sample_rate: int) -> bytes:
    """The bytes of a mono 16-bit PCM WAV file holding `wave` (clipped to [-1, 1])."""
    pcm = _to_pcm16(wave, sample_rate)
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def pcm16_round_trip(wave: np.ndarray | torch.Tensor) -> np.ndarray:
    """What `load_audio` returns for `wave` after `save_wav`: 16-bit quantised, float32 in [-1, 1).

    Lets a caller use the saved signal without reading the file back.
    """
    return (_to_pcm16(wave, 1).astype(np.float32) / 32768.0).astype(np.float32)


def _to_pcm16(wave: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().numpy()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2 and 1 in wave.shape:
        wave = wave.reshape(-1)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {wave.shape}")
    wave = np.clip(np.nan_to_num(wave), -1.0, 1.0)
    return np.round(wave * 32767.0).astype(np.int16)

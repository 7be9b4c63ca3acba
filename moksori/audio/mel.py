"""The mel transform shared by training and inference, and Griffin-Lim inversion.

The convention is HiFi-GAN's (also NVIDIA Tacotron2/WaveGlow): reflect-pad
(n_fft - hop_length) // 2 on each side, STFT without centring over a periodic Hann
window, magnitude sqrt(re² + im² + 1e-9), Slaney mel filters, natural log of the
mel magnitude clamped at 1e-5.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from moksori.audio.config import MelConfig


def mel_basis(config: MelConfig, dtype: type = np.float32) -> np.ndarray:
    """The (n_mels, n_fft // 2 + 1) Slaney mel filter bank (librosa's defaults)."""
    return librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        dtype=dtype,
    )


class MelSpectrogram(torch.nn.Module):
    """Waveform `(samples,)` or `(batch, samples)` → log-mel `(n_mels, frames)` or `(batch, n_mels, frames)`.

    For a length that is a multiple of hop_length, frames = samples // hop_length.
    Differentiable, so it can also be applied to a generator's output. `dtype` sets
    the precision of the window and filter-bank buffers (float32 for training and
    inference; float64 gives an exact reference).
    """

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self, config: MelConfig | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = config or MelConfig()
        # Built in float64 and rounded once, so a float64 module (dtype=torch.float64) is exact.
        window = torch.hann_window(self.config.win_length, dtype=torch.float64)
        basis = torch.from_numpy(mel_basis(self.config, dtype=np.float64))
        self.register_buffer("window", window.to(dtype), persistent=False)
        self.register_buffer("mel_basis", basis.to(dtype), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() not in (1, 2):
            raise ValueError(f"expected a waveform of shape (samples,) or (batch, samples), got {tuple(wave.shape)}")
        config = self.config
        padding = config.padding
        if wave.shape[-1] <= padding:
            raise ValueError(
                f"waveform of {wave.shape[-1]} samples is too short for the mel transform "
                f"(needs more than {padding})"
            )
        batch = wave.to(self.window.dtype).reshape(-1, wave.shape[-1])
        padded = torch.nn.functional.pad(batch.unsqueeze(1), (padding, padding), mode="reflect").squeeze(1)
        spectrum = torch.stft(
            padded,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            window=self.window,
            center=False,
            return_complex=True,
        )
        magnitude = torch.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-9)
        mel = torch.log(torch.clamp(torch.matmul(self.mel_basis, magnitude), min=config.clamp))
        return mel[0] if wave.dim() == 1 else mel


_cached_modules: dict[tuple[MelConfig, str], MelSpectrogram] = {}


def _cached_module(config: MelConfig, device: torch.device) -> MelSpectrogram:
    key = (config, str(device))
    module = _cached_modules.get(key)
    if module is None:
        module = MelSpectrogram(config).to(device)
        _cached_modules[key] = module
    return module


def mel_spectrogram(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int = 22050,
    *,
    config: MelConfig | None = None,
) -> torch.Tensor:
    """Log-mel of a 1-D waveform `(n_mels, frames)` or a batch `(batch, n_mels, frames)`.

    Uses the default MelConfig unless `config` is given. The wave must already be at
    the config's rate: a different `sample_rate` raises ValueError (resample first
    with `moksori.audio.resample`), because silently resampling would hide a dataset
    or pipeline mistake. A numpy input gives a CPU tensor; a torch input keeps its
    device.
    """
    config = config or MelConfig()
    if sample_rate != config.sample_rate:
        raise ValueError(
            f"mel_spectrogram got audio at {sample_rate} Hz but the mel config expects "
            f"{config.sample_rate} Hz; resample the audio first"
        )
    tensor = torch.from_numpy(np.asarray(wave, dtype=np.float32)) if not isinstance(wave, torch.Tensor) else wave
    return _cached_module(config, tensor.device)(tensor)


def griffin_lim(
    mel: torch.Tensor | np.ndarray,
    config: MelConfig | None = None,
    n_iter: int = 32,
) -> np.ndarray:
    """Invert a log-mel `(n_mels, frames)` to a float32 waveform of frames * hop_length samples.

    The mel magnitude is mapped back to a linear spectrogram with the pseudo-inverse
    of the mel filter bank (negative values clipped to zero; librosa's NNLS is
    better but far too slow for a fallback vocoder), then the phase is estimated with
    fast Griffin-Lim over the same padded, uncentred STFT that the mel transform uses.
    Deterministic: the initial phase comes from a fixed seed.
    """
    config = config or MelConfig()
    log_mel = _mel_as_numpy(mel, config)
    magnitude = np.maximum(np.linalg.pinv(mel_basis(config, np.float64)) @ np.exp(log_mel), 0.0)
    frames = log_mel.shape[1]
    padded = librosa.griffinlim(
        magnitude.astype(np.float32),
        n_iter=n_iter,
        hop_length=config.hop_length,
        win_length=config.win_length,
        n_fft=config.n_fft,
        window="hann",
        center=False,
        random_state=0,
    )
    # The uncentred STFT saw the wave with `padding` extra samples on the left.
    start = config.padding
    wave = padded[start : start + frames * config.hop_length]
    return np.pad(wave, (0, frames * config.hop_length - wave.size)).astype(np.float32, copy=False)


def _mel_as_numpy(mel: torch.Tensor | np.ndarray, config: MelConfig) -> np.ndarray:
    if isinstance(mel, torch.Tensor):
        mel = mel.detach().cpu().numpy()
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2 or mel.shape[0] != config.n_mels:
        raise ValueError(f"expected a log-mel of shape ({config.n_mels}, frames), got {mel.shape}")
    return mel

"""Vocos-style vocoder (Siuzdenko, 2023): a ConvNeXt stack at the mel frame rate predicts an STFT
(log-magnitude and phase) and an inverse STFT makes the waveform.

Every layer runs at the frame rate (86 frames/s at 22,050 Hz, hop 256), not at the sample rate
as HiFi-GAN's upsampling stack does, so a second of audio costs a few MFLOPs per layer: the
shipped default voice uses it for CPU speed. Config keys describing the audio framing share
HiFi-GAN's names so that one training task and one bundle check serve both.

The inverse STFT is a transposed convolution with a fixed windowed inverse-DFT basis followed
by division by the window envelope ("same" padding: ``frames * hop`` samples out). That is
exactly ``istft`` and, unlike ``torch.istft``, exports to ONNX.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from moksori.models.layers.common import vocode
from moksori.models.onnx_runners import vocos_context_frames

MAX_LOG_MAGNITUDE = math.log(100.0)  # the reference clips the magnitude at 1e2


@dataclass
class VocosConfig:
    num_mels: int = 80
    dim: int = 256
    intermediate_dim: int = 768
    num_layers: int = 8
    kernel_size: int = 7
    # Audio framing (same names as HiFiGANConfig); the inverse STFT uses n_fft / hop_size / win_size.
    sampling_rate: int = 22050
    n_fft: int = 1024
    hop_size: int = 256
    win_size: int = 1024
    fmin: float = 0.0
    fmax: float | None = 8000.0
    fmax_for_loss: float | None = None
    # Training.
    segment_size: int = 8192
    learning_rate: float = 5e-4
    adam_b1: float = 0.8
    adam_b2: float = 0.9
    lr_decay: float = 0.999

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"VocosConfig.{name}: {why}")

        for name in ("num_mels", "dim", "intermediate_dim", "num_layers", "hop_size"):
            if int(getattr(self, name)) < 1:
                fail(name, f"must be positive, got {getattr(self, name)}")
        if self.kernel_size % 2 == 0:
            fail("kernel_size", f"must be odd (centred convolution), got {self.kernel_size}")
        if self.win_size > self.n_fft:
            fail("win_size", f"{self.win_size} must not exceed n_fft {self.n_fft}")
        if (self.win_size - self.hop_size) % 2:
            fail("win_size", f"win_size - hop_size ({self.win_size - self.hop_size}) must be even")
        if self.segment_size % self.hop_size:
            fail("segment_size", f"{self.segment_size} must be a multiple of hop_size {self.hop_size}")

    @classmethod
    def preset(cls, name: str) -> "VocosConfig":
        """"base" (the reference's 512/1536 × 8), "small" (the default voice's), "tiny" (tests)."""
        presets: dict[str, dict[str, Any]] = {
            "base": {"dim": 512, "intermediate_dim": 1536},
            "small": {},
            "tiny": {"dim": 32, "intermediate_dim": 64, "num_layers": 2, "segment_size": 2048},
        }
        if name not in presets:
            raise ValueError(f"unknown Vocos preset {name!r}; choose from {sorted(presets)}")
        return cls(**presets[name])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VocosConfig":
        known = {f.name for f in fields(cls)}
        # batch_size: written by older moksori configs, never read (the recipe's data.batch_size is).
        unknown = sorted(set(data) - known - {"batch_size"})
        if unknown:
            raise ValueError(f"VocosConfig: unknown keys {unknown}")
        return cls(**{k: v for k, v in data.items() if k in known})


class ConvNeXtBlock(nn.Module):
    """Depthwise conv → LayerNorm → pointwise MLP (GELU) → layer scale, with a residual."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.dwconv(x).transpose(1, 2)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        return residual + (self.gamma * x).transpose(1, 2)


class InverseSTFT(nn.Module):
    """``(real, imag)`` of shape ``(batch, n_fft // 2 + 1, frames)`` → wave ``(batch, 1, frames * hop)``."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.trim = (win_length - hop_length) // 2 + (n_fft - win_length) // 2
        window = torch.zeros(n_fft)
        offset = (n_fft - win_length) // 2
        window[offset : offset + win_length] = torch.hann_window(win_length, dtype=torch.float64).float()
        bins = n_fft // 2 + 1
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        n = torch.arange(n_fft, dtype=torch.float64)[None, :]
        # irfft: DC and Nyquist count once, the other bins twice (their conjugate twins).
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        angle = 2 * math.pi * k * n / n_fft
        basis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)]) / n_fft
        self.register_buffer("basis", (basis * window.double()).float().unsqueeze(1), persistent=False)
        self.register_buffer("window_square", (window**2).view(1, 1, -1), persistent=False)

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        frames = real.shape[-1]
        wave = F.conv_transpose1d(torch.cat([real, imag], dim=1), self.basis, stride=self.hop_length)
        ones = torch.ones(1, 1, frames, dtype=real.dtype, device=real.device)
        envelope = F.conv_transpose1d(ones, self.window_square, stride=self.hop_length)
        end = self.trim + frames * self.hop_length
        return wave[..., self.trim : end] / envelope[..., self.trim : end].clamp_min(1e-8)


class Vocos(nn.Module):
    """Mel spectrogram ``(batch, num_mels, frames)`` → waveform ``(batch, 1, frames * hop)``."""

    config_class = VocosConfig
    # Reduced precision (moksori.synthesis.precision) for the backbone; the head that makes the
    # log-magnitude and the phase, and the inverse STFT, stay float32.
    precision_modules = ("embed", "convnext")

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Conv1d(config.num_mels, config.dim, config.kernel_size, padding=config.kernel_size // 2)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        layer_scale = 1.0 / config.num_layers
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, config.kernel_size, layer_scale)
            for _ in range(config.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.bins = config.n_fft // 2 + 1
        self.out = nn.Linear(config.dim, 2 * self.bins)
        self.istft = InverseSTFT(config.n_fft, config.hop_size, config.win_size)
        self.apply(_init_weights)

    @property
    def context_frames(self) -> int:
        """Mel frames either side that influence a frame's audio (convolutions plus STFT overlap):
        a span vocoded with this much context joins its neighbours exactly."""
        c = self.config
        return vocos_context_frames(c.num_layers, c.kernel_size, c.win_size, c.hop_size)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.embed(mel)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        x = self.out(self.final_layer_norm(x.transpose(1, 2))).transpose(1, 2)
        log_magnitude, phase = x.split(self.bins, dim=1)
        magnitude = torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE))
        return self.istft(magnitude * torch.cos(phase), magnitude * torch.sin(phase))

    def infer(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, num_mels, frames)`` → ``(batch, frames * hop)``; a 2-D mel gives a 1-D wave."""
        return vocode(self, mel, self.config.num_mels)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


__all__ = ["ConvNeXtBlock", "InverseSTFT", "Vocos", "VocosConfig"]

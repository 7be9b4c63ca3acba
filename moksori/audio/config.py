"""The mel parameters (:class:`MelConfig`); no torch, no librosa, so a voice's settings can be read
by the ONNX Runtime path alone. The transform itself is :mod:`moksori.audio.mel`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MelConfig:
    """Mel parameters; the defaults are the project-wide convention (see DESIGN.md)."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    clamp: float = 1e-5

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} must not exceed n_fft {self.n_fft}")
        if self.hop_length <= 0 or self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} must be in 1..n_fft ({self.n_fft})")

    @property
    def padding(self) -> int:
        """Reflect padding applied to each side before the STFT."""
        return (self.n_fft - self.hop_length) // 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MelConfig:
        """Build from a dict; unknown keys are an error so typos do not pass silently."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown MelConfig field(s): {', '.join(unknown)}")
        return cls(**values)


__all__ = ["MelConfig"]

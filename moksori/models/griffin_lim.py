"""Griffin-Lim as a vocoder family: no weights, no training; the phase is estimated from the mel
(see :func:`moksori.audio.griffin_lim`). A voice without a trained vocoder uses it."""

from __future__ import annotations

import torch

from moksori.audio import MelConfig, griffin_lim
from moksori.models.interfaces import Controls, Vocoder


class GriffinLim(Vocoder):
    """Mel → audio by Griffin-Lim. Its iterations spread every frame over the whole sentence, so
    ``context_frames`` is None: streaming vocodes whole sentences."""

    context_frames = None

    def __init__(self, mel_config: MelConfig, n_iter: int = 32) -> None:
        super().__init__()
        self.mel_config = mel_config
        self.n_iter = n_iter

    def infer(self, mel: torch.Tensor, controls: Controls | None = None) -> torch.Tensor:
        if mel.dim() == 3:
            return torch.stack([self.infer(row) for row in mel])
        return torch.from_numpy(griffin_lim(mel, self.mel_config, self.n_iter))


__all__ = ["GriffinLim"]

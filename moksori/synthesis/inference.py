"""The Glow-TTS inference path with the noise passed in, shared by PyTorch synthesis and ONNX export.

``GlowTTS.infer`` draws its own noise, whose shape depends on the batch; here the noise of every
sentence comes from its own seeded generator (:func:`sentence_noise`), so a sentence sounds the
same whether it is synthesised alone, in a batch, through PyTorch or through ONNX Runtime. With
``noise_scale=0`` the output equals ``GlowTTS.infer``.

Everything in :meth:`GlowTTSInference.forward` is traceable with dynamic lengths (no Python
ints taken from tensors), which is what the ONNX export needs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moksori.models.glow_tts import GlowTTS
from moksori.models.layers.common import generate_path, sequence_mask


def sentence_noise(seed: int | None, index: int, frames: int, channels: int) -> np.ndarray:
    """Standard normal noise ``[channels, frames]`` for sentence ``index`` of a request.

    Drawn frame by frame from ``numpy.random.default_rng([seed, index])``, so a longer draw starts
    with the same values as a shorter one: the noise of a sentence does not depend on how many
    frames the caller asked for. ``seed=None`` gives fresh randomness.
    """
    rng = np.random.default_rng(None if seed is None else [seed, index])
    return np.ascontiguousarray(rng.standard_normal((frames, channels), dtype=np.float32).T)


class GlowTTSInference(nn.Module):
    """Text ids → mel for an eval-mode GlowTTS (its weights are shared, not copied)."""

    def __init__(self, model: GlowTTS):
        super().__init__()
        self.model = model
        self.multi_speaker = model.n_speakers > 1

    def speaker_vector(self, sid: torch.Tensor | None) -> torch.Tensor | None:
        if not self.multi_speaker:
            return None
        if sid is None:
            raise ValueError(f"this voice has {self.model.n_speakers} speakers: a speaker id is needed")
        return F.normalize(self.model.emb_g(sid)).unsqueeze(-1)  # [b, gin, 1], as GlowTTS._speaker

    def durations(
        self, ids: torch.Tensor, ids_lengths: torch.Tensor, length_scale: torch.Tensor | float, g: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder pass. Returns x_m, x_logs, x_mask, frames per token ``[b, t_x]``, mel lengths ``[b]``."""
        x_m, x_logs, logw, x_mask = self.model.encoder(ids, ids_lengths, g=g)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale).squeeze(1)
        n_sqz = self.model.n_sqz
        y_lengths = torch.clamp_min(w_ceil.sum(dim=1), 1).long()
        y_lengths = torch.clamp_min(torch.div(y_lengths, n_sqz, rounding_mode="floor") * n_sqz, n_sqz)
        return x_m, x_logs, x_mask, w_ceil, y_lengths

    def decode(
        self,
        x_m: torch.Tensor,
        x_logs: torch.Tensor,
        x_mask: torch.Tensor,
        w_ceil: torch.Tensor,
        y_lengths: torch.Tensor,
        noise: torch.Tensor,
        noise_scale: torch.Tensor | float,
        g: torch.Tensor | None,
    ) -> torch.Tensor:
        """Expand the priors by the durations, add ``noise`` ``[b, c, frames]`` and run the flows backwards."""
        z_mask = sequence_mask(y_lengths, y_lengths.max()).unsqueeze(1).to(x_mask.dtype)
        attn = generate_path(w_ceil, (x_mask.unsqueeze(-1) * z_mask.unsqueeze(2)).squeeze(1))
        z_m = torch.matmul(x_m, attn)
        z_logs = torch.matmul(x_logs, attn)
        z = (z_m + torch.exp(z_logs) * noise * noise_scale) * z_mask
        y, _ = self.model.decoder(z, z_mask, g=g, reverse=True)
        return y * z_mask

    def forward(
        self,
        ids: torch.Tensor,
        ids_lengths: torch.Tensor,
        scales: torch.Tensor,
        noise: torch.Tensor,
        sid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One graph for export: ``scales`` = [noise_scale, length_scale]; ``noise`` ``[b, c, n]`` of any
        length n ≥ 1 (frame ``j`` uses noise column ``j mod n``, so pass at least as many as expected)."""
        g = self.speaker_vector(sid)
        x_m, x_logs, x_mask, w_ceil, y_lengths = self.durations(ids, ids_lengths, scales[1], g)
        frames = torch.arange(y_lengths.max(), device=ids.device) % noise.size(2)
        return self.decode(x_m, x_logs, x_mask, w_ceil, y_lengths, noise.index_select(2, frames), scales[0], g)


class VocoderInference(nn.Module):
    """HiFi-GAN generator ``mel [b, n_mels, frames]`` → ``wave [b, samples]`` (for export)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel).squeeze(1)


__all__ = ["GlowTTSInference", "VocoderInference", "sentence_noise"]

"""Invertible layers of the Glow-TTS decoder: ActNorm, InvConvNear, CouplingBlock.

Every layer maps ``(x, x_mask, g, reverse)`` to ``(z, logdet)``; ``logdet`` is ``[b]`` in the
forward direction and ``None`` in reverse. Parameter names match jaywalnut310/glow-tts.
"""

from __future__ import annotations

import torch
from torch import nn

from moksori.models.layers.common import (
    apply_weight_norm,
    remove_weight_norm,
    squeeze,
    unsqueeze,
)
from moksori.models.layers.wavenet import WN

FlowOutput = tuple[torch.Tensor, torch.Tensor | None]


def _mask_and_lengths(x: torch.Tensor, x_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if x_mask is None:
        x_mask = torch.ones(x.size(0), 1, x.size(2), device=x.device, dtype=x.dtype)
    return x_mask, x_mask.sum(dim=(1, 2))


class ActNorm(nn.Module):
    """Per-channel affine ``z = bias + exp(logs) * x`` with optional data-dependent init (ddi)."""

    def __init__(self, channels: int, ddi: bool = False):
        super().__init__()
        self.channels = channels
        self.initialized = not ddi
        self.logs = nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor | None = None,
        g: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> FlowOutput:
        x_mask, x_len = _mask_and_lengths(x, x_mask)
        if not self.initialized:
            self.initialize(x, x_mask)
            self.initialized = True
        if reverse:
            return (x - self.bias) * torch.exp(-self.logs) * x_mask, None
        z = (self.bias + torch.exp(self.logs) * x) * x_mask
        return z, torch.sum(self.logs) * x_len

    def set_ddi(self, ddi: bool) -> None:
        self.initialized = not ddi

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, x_mask: torch.Tensor) -> None:
        """Choose bias/logs so this batch comes out with zero mean and unit variance per channel."""
        denom = x_mask.sum(dim=(0, 2))
        m = (x * x_mask).sum(dim=(0, 2)) / denom
        m_sq = (x * x * x_mask).sum(dim=(0, 2)) / denom
        logs = 0.5 * torch.log(torch.clamp_min(m_sq - m**2, 1e-6))
        self.bias.copy_((-m * torch.exp(-logs)).view_as(self.bias))
        self.logs.copy_((-logs).view_as(self.logs))

    def store_inverse(self) -> None:
        pass


class InvConvNear(nn.Module):
    """Invertible 1x1 convolution over groups of ``n_split`` channels (Glow-TTS, section 3.3).

    Channels are split in two halves; each group takes ``n_split/2`` neighbouring channels from
    each half, and one ``n_split x n_split`` matrix mixes every group.
    """

    def __init__(self, channels: int, n_split: int = 4, no_jacobian: bool = False):
        super().__init__()
        if n_split % 2 != 0:
            raise ValueError(f"InvConvNear n_split must be even, got {n_split}")
        if channels % n_split != 0:
            raise ValueError(f"InvConvNear channels ({channels}) must be divisible by n_split ({n_split})")
        self.channels = channels
        self.n_split = n_split
        self.no_jacobian = no_jacobian
        w_init = torch.linalg.qr(torch.randn(n_split, n_split))[0]
        if torch.det(w_init) < 0:
            w_init[:, 0] = -w_init[:, 0]
        self.weight = nn.Parameter(w_init)

    def _group(self, x: torch.Tensor) -> torch.Tensor:
        # [b, c, t] -> [b, n_split, c/n_split, t]
        b, c, t = x.shape
        x = x.reshape(b, 2, c // self.n_split, self.n_split // 2, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.n_split, c // self.n_split, t)

    def _ungroup(self, z: torch.Tensor) -> torch.Tensor:
        b, _, cg, t = z.shape
        z = z.reshape(b, 2, self.n_split // 2, cg, t).permute(0, 1, 3, 2, 4)
        return z.reshape(b, cg * self.n_split, t)

    def inverse_weight(self) -> torch.Tensor:
        if getattr(self, "weight_inv", None) is not None:
            return self.weight_inv
        return torch.linalg.inv(self.weight.double()).to(self.weight.dtype)

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor | None = None,
        g: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> FlowOutput:
        x_mask, x_len = _mask_and_lengths(x, x_mask)
        c = x.size(1)
        if reverse:
            weight, logdet = self.inverse_weight(), None
        else:
            weight = self.weight
            if self.no_jacobian:
                logdet = torch.zeros_like(x_len)
            else:
                logdet = torch.logdet(self.weight) * (c / self.n_split) * x_len
        z = torch.einsum("ij,bjct->bict", weight.to(x.dtype), self._group(x))
        return self._ungroup(z) * x_mask, logdet

    def store_inverse(self) -> None:
        # A non-persistent buffer follows .to(device) but stays out of the state dict.
        inv = torch.linalg.inv(self.weight.detach().double()).to(self.weight.dtype)
        self.register_buffer("weight_inv", inv, persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # New weights make a stored inverse stale: recompute it.
        if getattr(self, "weight_inv", None) is not None:
            self.store_inverse()


class CouplingBlock(nn.Module):
    """Affine coupling: the first half of the channels, through a WN stack, predicts a shift
    ``m`` and log-scale ``logs`` for the second half."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
        sigmoid_scale: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.sigmoid_scale = sigmoid_scale
        self.start = apply_weight_norm(nn.Conv1d(in_channels // 2, hidden_channels, 1))
        # A zero last layer makes the block start as the identity, which keeps early training stable.
        self.end = nn.Conv1d(hidden_channels, in_channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        self.wn = WN(in_channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels, p_dropout)

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor | None = None,
        g: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> FlowOutput:
        x_mask, _ = _mask_and_lengths(x, x_mask)
        half = self.in_channels // 2
        x_0, x_1 = x[:, :half], x[:, half:]
        out = self.end(self.wn(self.start(x_0) * x_mask, x_mask, g))
        m, logs = out[:, :half], out[:, half:]
        if self.sigmoid_scale:
            logs = torch.log(1e-6 + torch.sigmoid(logs + 2))
        if reverse:
            z_1, logdet = (x_1 - m) * torch.exp(-logs) * x_mask, None
        else:
            z_1 = (m + torch.exp(logs) * x_1) * x_mask
            logdet = torch.sum(logs * x_mask, dim=(1, 2))
        return torch.cat([x_0, z_1], dim=1), logdet

    def remove_weight_norm(self) -> None:
        remove_weight_norm(self.start)
        self.wn.remove_weight_norm()

    def store_inverse(self) -> None:
        self.remove_weight_norm()


__all__ = ["ActNorm", "CouplingBlock", "InvConvNear", "squeeze", "unsqueeze"]

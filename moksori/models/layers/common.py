"""Small helpers shared by the models: masks, channel LayerNorm, duration paths, weight norm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean mask ``[b, max_length]``, True where the position is inside the sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def generate_path(duration: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard monotonic alignment from integer durations.

    duration: ``[b, t_x]``; mask: ``[b, t_x, t_y]``. Token ``i`` covers frames
    ``[cumsum(d)[i-1], cumsum(d)[i])``; the result is ``[b, t_x, t_y]`` in mask's dtype.
    """
    b, t_x, t_y = mask.shape
    ends = torch.cumsum(duration, dim=1)
    starts = ends - duration
    frames = torch.arange(t_y, device=duration.device, dtype=ends.dtype).view(1, 1, t_y)
    path = (frames >= starts.unsqueeze(-1)) & (frames < ends.unsqueeze(-1))
    return path.to(mask.dtype) * mask


def maximum_path(value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Monotonic alignment search (Glow-TTS) through the ``monotonic-alignment-search`` package.

    value, mask: ``[b, t_x, t_y]``. Returns a 0/1 path of the same shape where every frame maps to
    exactly one token, the token index never decreases, and each step advances by 0 or 1.
    """
    from monotonic_alignment_search import maximum_path as _maximum_path

    return _maximum_path(value.float(), mask.float(), implementation="cython").to(value.dtype)


def squeeze(
    x: torch.Tensor, x_mask: torch.Tensor | None = None, n_sqz: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold ``n_sqz`` neighbouring frames into channels: ``[b, c, t] -> [b, c*n_sqz, t//n_sqz]``.

    Channel ``k*c + ch`` of the result holds channel ``ch`` of frame ``n_sqz*j + k`` (the reference
    layout; flow weights depend on it). An odd tail frame is dropped.
    """
    b, c, t = x.shape
    t = (t // n_sqz) * n_sqz
    x = x[:, :, :t].reshape(b, c, t // n_sqz, n_sqz)
    x = x.permute(0, 3, 1, 2).reshape(b, c * n_sqz, t // n_sqz)
    if x_mask is None:
        x_mask = torch.ones(b, 1, t // n_sqz, device=x.device, dtype=x.dtype)
    else:
        x_mask = x_mask[:, :, n_sqz - 1 : t : n_sqz]
    return x * x_mask, x_mask


def unsqueeze(
    x: torch.Tensor, x_mask: torch.Tensor | None = None, n_sqz: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`squeeze`: ``[b, c*n_sqz, t] -> [b, c, t*n_sqz]``."""
    b, c, t = x.shape
    x = x.reshape(b, n_sqz, c // n_sqz, t).permute(0, 2, 3, 1).reshape(b, c // n_sqz, t * n_sqz)
    if x_mask is None:
        x_mask = torch.ones(b, 1, t * n_sqz, device=x.device, dtype=x.dtype)
    else:
        x_mask = x_mask.repeat_interleave(n_sqz, dim=2)
    return x * x_mask, x_mask


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[b, c, ...]`` (parameters ``gamma``/``beta`` as in Glow-TTS)."""

    def __init__(self, channels: int, eps: float = 1e-4):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        variance = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) * torch.rsqrt(variance + self.eps)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return x * self.gamma.view(shape) + self.beta.view(shape)


def fused_add_tanh_sigmoid_multiply(
    a: torch.Tensor, b: torch.Tensor, n_channels: int
) -> torch.Tensor:
    """WaveNet gate: ``tanh(in[:n]) * sigmoid(in[n:])`` with ``in = a + b``."""
    x = a + b
    return torch.tanh(x[:, :n_channels]) * torch.sigmoid(x[:, n_channels:])


def apply_weight_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Weight normalisation through the parametrization API (state keys
    ``parametrizations.weight.original0`` = g and ``original1`` = v)."""
    return weight_norm(module, name=name)


def remove_weight_norm(module: nn.Module, name: str = "weight") -> None:
    """Bake a weight-norm parametrization into a plain weight (no-op when absent)."""
    if parametrize.is_parametrized(module, name):
        parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def has_weight_norm(module: nn.Module, name: str = "weight") -> bool:
    return parametrize.is_parametrized(module, name)


class ConvReluNorm(nn.Module):
    """Residual conv prenet of the Glow-TTS text encoder (conv → LayerNorm → ReLU → dropout)."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int,
        n_layers: int,
        p_dropout: float,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError("ConvReluNorm needs n_layers >= 1")
        self.n_layers = n_layers
        self.conv_layers = nn.ModuleList()
        self.norm_layers = nn.ModuleList()
        for i in range(n_layers):
            channels = in_channels if i == 0 else hidden_channels
            self.conv_layers.append(
                nn.Conv1d(channels, hidden_channels, kernel_size, padding=kernel_size // 2)
            )
            self.norm_layers.append(LayerNorm(hidden_channels))
        self.relu_drop = nn.Sequential(nn.ReLU(), nn.Dropout(p_dropout))
        # Zero projection: the prenet starts as the identity (x + 0).
        self.proj = nn.Conv1d(hidden_channels, out_channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x_org = x
        for conv, norm in zip(self.conv_layers, self.norm_layers):
            x = self.relu_drop(norm(conv(x * x_mask)))
        return (x_org + self.proj(x)) * x_mask


# A mel longer than this (plus twice the generator's context_frames) is vocoded in spans of this
# many frames, each with context_frames of mel either side, trimmed and joined (the same audio
# to float rounding): activations then stay bounded whatever the length (HiFi-GAN V1 on 20 s:
# peak RSS 786 → 538 MB measured, see benchmarks/README.md), for ~6 % more convolution work.
VOCODE_CHUNK_FRAMES = 512


def vocode(generator: nn.Module, mel: torch.Tensor, num_mels: int) -> torch.Tensor:
    """Run a vocoder ``(batch, num_mels, frames)`` → ``(batch, 1, samples)`` on a batched or 2-D mel:
    returns ``(batch, samples)``, or ``(samples,)`` for a 2-D mel. Shared by every vocoder's ``infer``.
    A generator with ``context_frames`` (its receptive field) runs long mels in spans."""
    if mel.dim() not in (2, 3) or mel.shape[-2] != num_mels:
        raise ValueError(f"expected mel of shape (batch, {num_mels}, frames), got {tuple(mel.shape)}")
    unbatched = mel.dim() == 2
    batch = mel.unsqueeze(0) if unbatched else mel
    context = getattr(generator, "context_frames", None)
    if context is None or batch.shape[-1] <= VOCODE_CHUNK_FRAMES + 2 * int(context):
        wave = generator(batch).squeeze(1)
    else:
        wave = _vocode_in_spans(generator, batch, int(context))
    return wave.squeeze(0) if unbatched else wave


def _vocode_in_spans(generator: nn.Module, mel: torch.Tensor, context: int) -> torch.Tensor:
    frames = mel.shape[-1]
    pieces = []
    for start in range(0, frames, VOCODE_CHUNK_FRAMES):
        end = min(start + VOCODE_CHUNK_FRAMES, frames)
        lo, hi = max(0, start - context), min(frames, end + context)
        wave = generator(mel[..., lo:hi]).squeeze(1)
        hop = wave.shape[-1] // (hi - lo)
        pieces.append(wave[..., (start - lo) * hop : (end - lo) * hop])
    return torch.cat(pieces, dim=-1)


__all__ = [
    "ConvReluNorm",
    "LayerNorm",
    "apply_weight_norm",
    "fused_add_tanh_sigmoid_multiply",
    "generate_path",
    "has_weight_norm",
    "maximum_path",
    "remove_weight_norm",
    "sequence_mask",
    "squeeze",
    "unsqueeze",
    "vocode",
]


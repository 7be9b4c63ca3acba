"""Transformer text encoder with windowed relative-position self-attention (Glow-TTS / VITS).

Relative positions ``j - i`` within ``[-window_size, window_size]`` get learned key/value
embeddings (``emb_rel_k``/``emb_rel_v``, shared by all heads); farther pairs get none.
Parameter names follow jaywalnut310/glow-tts ``attentions.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from moksori.models.layers.common import LayerNorm


def relative_index(length: int, window_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Index ``j - i + window_size`` into the relative tables for every (query i, key j), clamped,
    and a mask that is True where ``|j - i| <= window_size``."""
    pos = torch.arange(length, device=device)
    rel = pos.view(1, -1) - pos.view(-1, 1)
    inside = rel.abs() <= window_size
    index = (rel + window_size).clamp(0, 2 * window_size)
    return index, inside


class MultiHeadAttention(nn.Module):
    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        window_size: int | None = None,
        heads_share: bool = True,
        p_dropout: float = 0.0,
        block_length: int | None = None,
        proximal_bias: bool = False,
        proximal_init: bool = False,
    ):
        super().__init__()
        if channels % n_heads != 0:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.channels = channels
        self.out_channels = out_channels
        self.n_heads = n_heads
        self.window_size = window_size
        self.heads_share = heads_share
        self.block_length = block_length
        self.proximal_bias = proximal_bias
        self.k_channels = channels // n_heads

        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        if window_size is not None:
            n_heads_rel = 1 if heads_share else n_heads
            rel_stddev = self.k_channels**-0.5
            shape = (n_heads_rel, 2 * window_size + 1, self.k_channels)
            self.emb_rel_k = nn.Parameter(torch.randn(shape) * rel_stddev)
            self.emb_rel_v = nn.Parameter(torch.randn(shape) * rel_stddev)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)

        nn.init.xavier_uniform_(self.conv_q.weight)
        nn.init.xavier_uniform_(self.conv_k.weight)
        if proximal_init:
            self.conv_k.weight.data.copy_(self.conv_q.weight.data)
            self.conv_k.bias.data.copy_(self.conv_q.bias.data)
        nn.init.xavier_uniform_(self.conv_v.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: queries ``[b, d, t_t]``; c: keys/values ``[b, d, t_s]``; attn_mask ``[b, 1, t_t, t_s]``."""
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        out, _ = self.attention(q, k, v, mask=attn_mask)
        return self.conv_o(out)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        return x.view(b, self.n_heads, self.k_channels, t).transpose(2, 3)  # [b, h, t, d_k]

    def attention(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, d, t_s = key.shape
        t_t = query.size(2)
        query = self._heads(query) / math.sqrt(self.k_channels)
        key, value = self._heads(key), self._heads(value)

        scores = torch.matmul(query, key.transpose(-2, -1))  # [b, h, t_t, t_s]
        if self.window_size is not None:
            if t_s != t_t:
                raise ValueError("relative attention is only available for self-attention")
            index, inside = relative_index(t_s, self.window_size, query.device)
            rel_logits = torch.matmul(query, self.emb_rel_k.unsqueeze(0).transpose(-2, -1))  # [b, h, t, 2w+1]
            gathered = torch.gather(rel_logits, 3, index.expand(b, self.n_heads, t_t, t_s))
            scores = scores + gathered * inside
        if self.proximal_bias:
            if t_s != t_t:
                raise ValueError("proximal bias is only available for self-attention")
            scores = scores + self._attention_bias_proximal(t_s).to(scores)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e4)
            if self.block_length is not None:
                block_mask = torch.ones_like(scores).triu(-self.block_length).tril(self.block_length)
                scores = scores.masked_fill(block_mask == 0, -1e4)
        p_attn = self.drop(F.softmax(scores, dim=-1))  # [b, h, t_t, t_s]
        output = torch.matmul(p_attn, value)
        if self.window_size is not None:
            output = output + self._relative_values(p_attn, index, inside)
        output = output.transpose(2, 3).contiguous().view(b, d, t_t)
        return output, p_attn

    def _relative_values(self, p_attn: torch.Tensor, index: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        # Collect attention weights by relative offset: w_rel[..., i, r] = p[..., i, i + r - window].
        b, h, t, _ = p_attn.shape
        n_rel = 2 * self.window_size + 1
        w_rel = p_attn.new_zeros(b, h, t, n_rel)
        w_rel = w_rel.scatter_add(3, index.expand(b, h, t, t), p_attn * inside)
        return torch.matmul(w_rel, self.emb_rel_v.unsqueeze(0))

    @staticmethod
    def _attention_bias_proximal(length: int) -> torch.Tensor:
        r = torch.arange(length, dtype=torch.float32)
        diff = r.unsqueeze(0) - r.unsqueeze(1)
        return -torch.log1p(diff.abs()).unsqueeze(0).unsqueeze(0)


class FFN(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filter_channels: int,
        kernel_size: int,
        p_dropout: float = 0.0,
        activation: str | None = None,
    ):
        super().__init__()
        self.activation = activation
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = self.conv_1(x * x_mask)
        x = x * torch.sigmoid(1.702 * x) if self.activation == "gelu" else torch.relu(x)
        x = self.conv_2(self.drop(x) * x_mask)
        return x * x_mask


class Encoder(nn.Module):
    """Post-LN transformer: ``n_layers`` x [self-attention, LayerNorm, conv FFN, LayerNorm]."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int | None = None,
        block_length: int | None = None,
    ):
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(
                MultiHeadAttention(
                    hidden_channels,
                    hidden_channels,
                    n_heads,
                    window_size=window_size,
                    p_dropout=p_dropout,
                    block_length=block_length,
                )
            )
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(
                FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout=p_dropout)
            )
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        for attn, norm_1, ffn, norm_2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2
        ):
            x = x * x_mask
            x = norm_1(x + self.drop(attn(x, x, attn_mask)))
            x = norm_2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask


__all__ = ["Encoder", "FFN", "MultiHeadAttention", "relative_index"]

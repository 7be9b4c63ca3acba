"""WN: the non-causal WaveNet-style stack of gated dilated convolutions (WaveGlow, Glow-TTS, VITS).

Parameter names follow the reference implementations (``in_layers``, ``res_skip_layers``,
``cond_layer``) so published checkpoints map by name.
"""

from __future__ import annotations

import torch
from torch import nn

from moksori.models.layers.common import (
    apply_weight_norm,
    fused_add_tanh_sigmoid_multiply,
    remove_weight_norm,
)


class WN(nn.Module):
    """Gated residual stack ``[b, hidden, t] -> [b, hidden, t]`` (sum of skip outputs).

    ``in_channels`` is kept for signature compatibility with the reference; the stack runs at
    ``hidden_channels`` (the caller projects into it). ``gin_channels > 0`` adds a global
    conditioning input ``g: [b, gin_channels, 1 or t]``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.p_dropout = p_dropout

        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            cond = nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
            self.cond_layer = apply_weight_norm(cond)

        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            in_layer = nn.Conv1d(
                hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation, padding=padding
            )
            self.in_layers.append(apply_weight_norm(in_layer))
            # The last layer has only a skip output.
            res_skip_channels = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            res_skip = nn.Conv1d(hidden_channels, res_skip_channels, 1)
            self.res_skip_layers.append(apply_weight_norm(res_skip))

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.hidden_channels
        output = torch.zeros_like(x)
        if g is not None:
            if not self.gin_channels:
                raise ValueError("WN got a conditioning input g but was built with gin_channels=0")
            g = self.cond_layer(g)

        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = self.drop(in_layer(x))
            g_l = g[:, 2 * h * i : 2 * h * (i + 1)] if g is not None else torch.zeros_like(x_in)
            acts = fused_add_tanh_sigmoid_multiply(x_in, g_l, h)
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                output = output + res_skip[:, h:]
            else:
                output = output + res_skip
        return output * x_mask

    def remove_weight_norm(self) -> None:
        if self.gin_channels:
            remove_weight_norm(self.cond_layer)
        for layer in [*self.in_layers, *self.res_skip_layers]:
            remove_weight_norm(layer)


__all__ = ["WN"]

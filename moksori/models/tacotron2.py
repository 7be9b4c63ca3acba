"""Tacotron2: an attention-based autoregressive acoustic model (Shen et al., 2018).

Text ids → embedding → ``Encoder`` (3 convolutions + a bidirectional LSTM) → memory. The
``Decoder`` produces mel frames one step at a time: the previous frame goes through the
``Prenet`` (dropout kept on at inference: the model relies on it for variety and to stop
the decoder copying its input), an attention LSTM, location-sensitive ``Attention`` over the memory,
a decoder LSTM, then a linear projection to ``n_frames_per_step`` mel frames and a stop gate.
The ``Postnet`` (5 convolutions) adds a residual to the decoder's mel.

Module and parameter names and the hyper-parameter names follow NVIDIA/tacotron2 (``model.py``,
``layers.py``, ``hparams.py``) so that its published ``tacotron2_statedict.pt`` loads through
:func:`load_reference_state_dict`.

Differences from the reference that do not change a single unpadded sentence's output: the
decoder state is passed explicitly (one step is a pure function, exported to ONNX as one graph),
padded positions are masked between the encoder and postnet convolutions (a sentence reads the
same alone or in a padded batch), and the prenet's dropout masks may be given by the caller
(drawn from the synthesizer's per-sentence noise, so PyTorch and ONNX Runtime agree).

Alignments are ``[batch, tokens, decoder steps]`` throughout (the reference returns them
transposed).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moksori.checkpoint import strip_module_prefix
from moksori.models.interfaces import AcousticModel, AcousticOutput, Controls, MelPiece, NoiseSource, OnnxGraph
from moksori.models.alignment import AlignmentReport, check_alignment
from moksori.models.layers.common import sequence_mask
from moksori.models import onnx_runners
from moksori.models.onnx_runners import FIRST_NOISE_STEPS, FRAMES_PER_SYMBOL  # noqa: F401 (re-exported)
from moksori.models.onnx_runners import PrenetNoise, Tacotron2Onnx


@dataclass
class Tacotron2Config:
    """Hyper-parameters under NVIDIA's ``hparams.py`` names (model part), plus moksori's options:
    ``p_prenet_dropout`` (fixed 0.5 in the reference), ``prenet_dropout_at_inference`` (True in
    the reference), ``n_speakers``/``speaker_embedding_dim`` (a learned speaker vector appended to
    every memory step when ``n_speakers > 1``), ``benchmark_frames_per_token`` (benchmarks only)."""

    n_symbols: int
    symbols_embedding_dim: int = 512
    encoder_kernel_size: int = 5
    encoder_n_convolutions: int = 3
    encoder_embedding_dim: int = 512
    n_mel_channels: int = 80
    n_frames_per_step: int = 1
    decoder_rnn_dim: int = 1024
    prenet_dim: int = 256
    max_decoder_steps: int = 1000
    gate_threshold: float = 0.5
    p_attention_dropout: float = 0.1
    p_decoder_dropout: float = 0.1
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    attention_location_n_filters: int = 32
    attention_location_kernel_size: int = 31
    postnet_embedding_dim: int = 512
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 5
    p_prenet_dropout: float = 0.5
    prenet_dropout_at_inference: bool = True
    n_speakers: int = 0
    speaker_embedding_dim: int = 0
    # Speed benchmarks of untrained models only: every sentence decodes this many frames per token
    # and the stop gate is ignored (set_constant_durations). None for every real voice.
    benchmark_frames_per_token: float | None = None

    def __post_init__(self) -> None:
        if self.n_symbols < 1:
            raise ValueError(f"Tacotron2Config.n_symbols must be >= 1, got {self.n_symbols}")
        if self.symbols_embedding_dim != self.encoder_embedding_dim:
            raise ValueError(
                "Tacotron2Config: symbols_embedding_dim must equal encoder_embedding_dim "
                f"(the encoder's first convolution reads the embedding), got "
                f"{self.symbols_embedding_dim} and {self.encoder_embedding_dim}"
            )
        if self.encoder_embedding_dim % 2:
            raise ValueError("Tacotron2Config.encoder_embedding_dim must be even (bidirectional LSTM halves)")
        if self.n_frames_per_step < 1:
            raise ValueError(f"Tacotron2Config.n_frames_per_step must be >= 1, got {self.n_frames_per_step}")
        if self.postnet_n_convolutions < 2:
            raise ValueError("Tacotron2Config.postnet_n_convolutions must be >= 2")
        for name in ("encoder_kernel_size", "postnet_kernel_size", "attention_location_kernel_size"):
            if getattr(self, name) % 2 == 0:
                raise ValueError(f"Tacotron2Config.{name} must be odd, got {getattr(self, name)}")
        if not 0.0 <= self.p_prenet_dropout < 1.0:
            raise ValueError(f"Tacotron2Config.p_prenet_dropout must be in [0, 1), got {self.p_prenet_dropout}")
        if self.max_decoder_steps < 1:
            raise ValueError(f"Tacotron2Config.max_decoder_steps must be >= 1, got {self.max_decoder_steps}")
        if self.n_speakers > 1 and self.speaker_embedding_dim <= 0:
            raise ValueError("Tacotron2Config: n_speakers > 1 needs speaker_embedding_dim > 0")

    @property
    def memory_dim(self) -> int:
        """Width of the memory the decoder attends to (encoder output + speaker vector)."""
        return self.encoder_embedding_dim + (self.speaker_embedding_dim if self.n_speakers > 1 else 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Tacotron2Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Tacotron2Config: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(data))

    @classmethod
    def base(cls, n_symbols: int, **overrides: Any) -> "Tacotron2Config":
        """NVIDIA's ``hparams.py`` (about 28M parameters with its 148 symbols)."""
        return cls(n_symbols=n_symbols, **overrides)

    @classmethod
    def small(cls, n_symbols: int, **overrides: Any) -> "Tacotron2Config":
        """A CPU-sized model (about a fifth of base): 256-wide encoder, 512-wide LSTMs."""
        params: dict[str, Any] = dict(
            symbols_embedding_dim=256,
            encoder_embedding_dim=256,
            attention_rnn_dim=512,
            decoder_rnn_dim=512,
            prenet_dim=128,
            postnet_embedding_dim=256,
        )
        params.update(overrides)
        return cls(n_symbols=n_symbols, **params)

    @classmethod
    def tiny(cls, n_symbols: int, **overrides: Any) -> "Tacotron2Config":
        """A ~0.2M-parameter model for tests."""
        params: dict[str, Any] = dict(
            symbols_embedding_dim=32,
            encoder_embedding_dim=32,
            encoder_n_convolutions=1,
            attention_rnn_dim=64,
            decoder_rnn_dim=64,
            prenet_dim=32,
            attention_dim=32,
            attention_location_n_filters=8,
            attention_location_kernel_size=15,
            postnet_embedding_dim=32,
            postnet_n_convolutions=2,
            max_decoder_steps=400,
        )
        params.update(overrides)
        return cls(n_symbols=n_symbols, **params)

    @classmethod
    def preset(cls, name: str, n_symbols: int, **overrides: Any) -> "Tacotron2Config":
        if name not in PRESETS:
            raise ValueError(f"unknown tacotron2 preset {name!r}; choose from {', '.join(PRESETS)}")
        return getattr(cls, name)(n_symbols, **overrides)


PRESETS = ("base", "small", "tiny")


# --- layers (NVIDIA names: LinearNorm.linear_layer, ConvNorm.conv) ----------------------------------


class LinearNorm(nn.Module):
    """A linear layer with Xavier-uniform initialisation for the activation that follows it."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, w_init_gain: str = "linear"):
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim, bias=bias)
        nn.init.xavier_uniform_(self.linear_layer.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class ConvNorm(nn.Module):
    """A same-padded 1-D convolution with Xavier-uniform initialisation."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, bias: bool = True, w_init_gain: str = "linear"
    ):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)
        nn.init.xavier_uniform_(self.conv.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, gain: str) -> nn.Sequential:
    return nn.Sequential(ConvNorm(in_channels, out_channels, kernel_size, w_init_gain=gain), nn.BatchNorm1d(out_channels))


class Encoder(nn.Module):
    """``convolutions`` (conv → BatchNorm → ReLU → dropout 0.5) then a bidirectional ``lstm``."""

    def __init__(self, embedding_dim: int, n_convolutions: int = 3, kernel_size: int = 5):
        super().__init__()
        self.convolutions = nn.ModuleList(
            [_conv_bn(embedding_dim, embedding_dim, kernel_size, "relu") for _ in range(n_convolutions)]
        )
        self.lstm = nn.LSTM(embedding_dim, embedding_dim // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: embedded text ``[b, channels, tokens]``; lengths ``[b]`` (None: no padding, the form
        exported to ONNX). Returns the memory ``[b, tokens, channels]``, zero past each length."""
        mask = None if lengths is None else sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        for conv in self.convolutions:
            if mask is not None:
                x = x * mask
            x = F.dropout(F.relu(conv(x)), 0.5, self.training)
        x = x.transpose(1, 2)
        if lengths is None:
            outputs, _ = self.lstm(x)
            return outputs
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=x.size(1))
        return outputs


class LocationLayer(nn.Module):
    """Convolution over the previous and cumulative attention weights (``location_conv``), projected
    into the attention space (``location_dense``)."""

    def __init__(self, n_filters: int, kernel_size: int, attention_dim: int):
        super().__init__()
        self.location_conv = ConvNorm(2, n_filters, kernel_size, bias=False)
        self.location_dense = LinearNorm(n_filters, attention_dim, bias=False, w_init_gain="tanh")

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        """``[b, 2, tokens]`` → ``[b, tokens, attention_dim]``."""
        return self.location_dense(self.location_conv(weights_cat).transpose(1, 2))


class Attention(nn.Module):
    """Location-sensitive additive attention: ``v(tanh(query + location + memory))``."""

    def __init__(
        self, query_dim: int, memory_dim: int, attention_dim: int, location_n_filters: int, location_kernel_size: int
    ):
        super().__init__()
        self.query_layer = LinearNorm(query_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.memory_layer = LinearNorm(memory_dim, attention_dim, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(location_n_filters, location_kernel_size, attention_dim)

    def energies(self, query: torch.Tensor, processed_memory: torch.Tensor, weights_cat: torch.Tensor) -> torch.Tensor:
        """query ``[b, query_dim]``, processed memory ``[b, tokens, attention_dim]``, previous and
        cumulative weights ``[b, 2, tokens]`` → unnormalised scores ``[b, tokens]``."""
        processed_query = self.query_layer(query.unsqueeze(1))
        location = self.location_layer(weights_cat)
        return self.v(torch.tanh(processed_query + location + processed_memory)).squeeze(-1)

    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        weights_cat: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the context ``[b, memory_dim]`` and the weights ``[b, tokens]``; ``mask``
        ``[b, tokens]`` is True on padding (those tokens get no attention)."""
        scores = self.energies(query, processed_memory, weights_cat)
        if mask is not None:
            scores = scores.masked_fill(mask, -float("inf"))
        weights = F.softmax(scores, dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights


def prenet_keep_threshold(p: float) -> float:
    """The standard-normal value below which a fraction ``p`` of draws falls: a unit is dropped when
    its noise is below it, so noise-driven masks drop units with probability ``p``."""
    return onnx_runners.prenet_keep_threshold(p)  # one implementation, torch-free for the ONNX loop


def prenet_mask_from_noise(noise: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout masks (0 or ``1/(1-p)``) from standard-normal ``noise`` of the same shape."""
    return (noise > prenet_keep_threshold(p)).to(noise.dtype) / (1.0 - p)


class Prenet(nn.Module):
    """Two bias-free linear layers with ReLU and dropout. The dropout is on at inference too
    (``always_dropout``); ``masks`` ``[..., sum of layer sizes]`` (from :func:`prenet_mask_from_noise`)
    replace the random draws when given."""

    def __init__(self, in_dim: int, sizes: list[int], p_dropout: float = 0.5, always_dropout: bool = True):
        super().__init__()
        in_sizes = [in_dim] + sizes[:-1]
        self.layers = nn.ModuleList([LinearNorm(i, o, bias=False) for i, o in zip(in_sizes, sizes)])
        self.sizes = list(sizes)
        self.p_dropout = p_dropout
        self.always_dropout = always_dropout

    @property
    def mask_channels(self) -> int:
        return sum(self.sizes)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        offset = 0
        for linear, size in zip(self.layers, self.sizes):
            x = F.relu(linear(x))
            if masks is not None:
                x = x * masks[..., offset : offset + size]
            elif self.p_dropout > 0:
                x = F.dropout(x, self.p_dropout, training=self.training or self.always_dropout)
            offset += size
        return x


class Postnet(nn.Module):
    """``postnet_n_convolutions`` convolutions with BatchNorm (tanh between them, dropout 0.5 in
    training): the residual added to the decoder's mel."""

    def __init__(self, n_mel_channels: int, embedding_dim: int, kernel_size: int, n_convolutions: int):
        super().__init__()
        channels = [n_mel_channels] + [embedding_dim] * (n_convolutions - 1) + [n_mel_channels]
        self.convolutions = nn.ModuleList(
            [
                _conv_bn(channels[i], channels[i + 1], kernel_size, "tanh" if i < n_convolutions - 1 else "linear")
                for i in range(n_convolutions)
            ]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x ``[b, n_mel, frames]``; mask ``[b, 1, frames]`` (1 on valid frames) or None."""
        last = len(self.convolutions) - 1
        for i, conv in enumerate(self.convolutions):
            if mask is not None:
                x = x * mask
            x = conv(x)
            if i < last:
                x = torch.tanh(x)
            x = F.dropout(x, 0.5, self.training)
        return x if mask is None else x * mask


class DecoderState(NamedTuple):
    """The recurrent state between two decoder steps (NVIDIA stores these on the module)."""

    attention_hidden: torch.Tensor  # [b, attention_rnn_dim]
    attention_cell: torch.Tensor
    decoder_hidden: torch.Tensor  # [b, decoder_rnn_dim]
    decoder_cell: torch.Tensor
    attention_weights: torch.Tensor  # [b, tokens]
    attention_weights_cum: torch.Tensor  # [b, tokens]
    attention_context: torch.Tensor  # [b, memory_dim]


class FastStepWeights(NamedTuple):
    """What :meth:`Decoder.fast_step` reads, prepared once per batch of sentences: views of the fp32
    weights (no copies) and the memory multiplied by the context columns of both LSTM cells' input
    weights. ``W @ context == attention_weights @ (memory @ W.T)``, so each step sums ``tokens``
    rows of ``4 * rnn_dim`` instead of reading the ``4 * rnn_dim x memory_dim`` block (about
    16 MB at NVIDIA's sizes, a fifth of the bytes a step reads) from memory."""

    attention_prenet: torch.Tensor  # [4 * attention_rnn_dim, prenet_dim] (view of weight_ih)
    attention_hh: torch.Tensor  # [4 * attention_rnn_dim, attention_rnn_dim]
    attention_bias: torch.Tensor  # [4 * attention_rnn_dim] (b_ih + b_hh)
    attention_memory: torch.Tensor  # [b, tokens, 4 * attention_rnn_dim]
    decoder_input: torch.Tensor  # [4 * decoder_rnn_dim, attention_rnn_dim] (view of weight_ih)
    decoder_hh: torch.Tensor  # [4 * decoder_rnn_dim, decoder_rnn_dim]
    decoder_bias: torch.Tensor  # [4 * decoder_rnn_dim]
    decoder_memory: torch.Tensor  # [b, tokens, 4 * decoder_rnn_dim]
    output: torch.Tensor  # [frame_dim + 1, decoder_rnn_dim + memory_dim]: projection and gate rows
    output_bias: torch.Tensor  # [frame_dim + 1]


def _cell_bias(cell: nn.LSTMCell) -> torch.Tensor:
    if cell.bias_ih is None:
        return cell.weight_ih.new_zeros(cell.weight_ih.size(0))
    return cell.bias_ih + cell.bias_hh


def _lstm_pointwise(gates: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``nn.LSTMCell``'s update from its summed gate pre-activations (PyTorch's CPU order)."""
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, 1)
    new_cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
    return torch.sigmoid(out_gate) * torch.tanh(new_cell), new_cell


class Decoder(nn.Module):
    """The autoregressive decoder: ``prenet``, ``attention_rnn``, ``attention_layer``,
    ``decoder_rnn``, ``linear_projection`` (mel) and ``gate_layer`` (stop token)."""

    def __init__(self, c: Tacotron2Config):
        super().__init__()
        self.n_mel_channels = c.n_mel_channels
        self.n_frames_per_step = c.n_frames_per_step
        self.memory_dim = c.memory_dim
        self.attention_rnn_dim = c.attention_rnn_dim
        self.decoder_rnn_dim = c.decoder_rnn_dim
        self.p_attention_dropout = c.p_attention_dropout
        self.p_decoder_dropout = c.p_decoder_dropout
        frame_dim = c.n_mel_channels * c.n_frames_per_step
        self.prenet = Prenet(frame_dim, [c.prenet_dim, c.prenet_dim], c.p_prenet_dropout, c.prenet_dropout_at_inference)
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + c.memory_dim, c.attention_rnn_dim)
        self.attention_layer = Attention(
            c.attention_rnn_dim, c.memory_dim, c.attention_dim,
            c.attention_location_n_filters, c.attention_location_kernel_size,
        )
        self.decoder_rnn = nn.LSTMCell(c.attention_rnn_dim + c.memory_dim, c.decoder_rnn_dim, bias=True)
        self.linear_projection = LinearNorm(c.decoder_rnn_dim + c.memory_dim, frame_dim)
        self.gate_layer = LinearNorm(c.decoder_rnn_dim + c.memory_dim, 1, bias=True, w_init_gain="sigmoid")

    @property
    def frame_dim(self) -> int:
        return self.n_mel_channels * self.n_frames_per_step

    def initial_state(self, memory: torch.Tensor) -> DecoderState:
        b, tokens, _ = memory.shape
        zeros = memory.new_zeros
        return DecoderState(
            zeros(b, self.attention_rnn_dim), zeros(b, self.attention_rnn_dim),
            zeros(b, self.decoder_rnn_dim), zeros(b, self.decoder_rnn_dim),
            zeros(b, tokens), zeros(b, tokens), zeros(b, self.memory_dim),
        )

    def step(
        self,
        prenet_out: torch.Tensor,
        state: DecoderState,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """One step from the prenet's output of the previous frame(s). Returns the mel
        ``[b, n_mel * n_frames_per_step]``, the gate logit ``[b]`` and the new state."""
        cell_input = torch.cat((prenet_out, state.attention_context), -1)
        att_h, att_c = self.attention_rnn(cell_input, (state.attention_hidden, state.attention_cell))
        att_h = F.dropout(att_h, self.p_attention_dropout, self.training)
        weights_cat = torch.stack((state.attention_weights, state.attention_weights_cum), dim=1)
        context, weights = self.attention_layer(att_h, memory, processed_memory, weights_cat, mask)
        dec_h, dec_c = self.decoder_rnn(torch.cat((att_h, context), -1), (state.decoder_hidden, state.decoder_cell))
        dec_h = F.dropout(dec_h, self.p_decoder_dropout, self.training)
        hidden_context = torch.cat((dec_h, context), dim=1)
        mel = self.linear_projection(hidden_context)
        gate = self.gate_layer(hidden_context).squeeze(1)
        new_state = DecoderState(att_h, att_c, dec_h, dec_c, weights, state.attention_weights_cum + weights, context)
        return mel, gate, new_state

    def fast_step_weights(self, memory: torch.Tensor) -> FastStepWeights | None:
        """The per-batch products :meth:`fast_step` needs, or None where it does not apply: in
        training, when a cell is not a plain fp32 ``nn.LSTMCell`` (int8 or bf16 adapters run
        :meth:`step`), or when the memory is so long that its products outweigh the weights."""
        cells = (self.attention_rnn, self.decoder_rnn)
        if self.training or any(type(cell) is not nn.LSTMCell for cell in cells):
            return None
        if memory.size(1) >= self.memory_dim or any(cell.weight_ih.dtype != memory.dtype for cell in cells):
            return None
        prenet_dim = self.attention_rnn.input_size - self.memory_dim
        att_ih, dec_ih = self.attention_rnn.weight_ih, self.decoder_rnn.weight_ih
        projection, gate = self.linear_projection.linear_layer, self.gate_layer.linear_layer
        return FastStepWeights(
            att_ih[:, :prenet_dim], self.attention_rnn.weight_hh, _cell_bias(self.attention_rnn),
            torch.matmul(memory, att_ih[:, prenet_dim:].t()),
            dec_ih[:, : self.attention_rnn_dim], self.decoder_rnn.weight_hh, _cell_bias(self.decoder_rnn),
            torch.matmul(memory, dec_ih[:, self.attention_rnn_dim :].t()),
            torch.cat((projection.weight, gate.weight)), torch.cat((projection.bias, gate.bias)),
        )

    def fast_step(
        self,
        prenet_out: torch.Tensor,
        state: DecoderState,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        mask: torch.Tensor | None,
        w: FastStepWeights,
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """:meth:`step` at inference with the context terms of both cells taken from ``w``
        (equal to :meth:`step` up to float rounding: the same sums in another order). The state
        must be one that decoding produces: its context is its attention weights times ``memory``."""
        gates = torch.addmm(w.attention_bias, prenet_out, w.attention_prenet.t())
        gates.addmm_(state.attention_hidden, w.attention_hh.t())
        gates.unsqueeze(1).baddbmm_(state.attention_weights.unsqueeze(1), w.attention_memory)
        att_h, att_c = _lstm_pointwise(gates, state.attention_cell)
        weights_cat = torch.stack((state.attention_weights, state.attention_weights_cum), dim=1)
        context, weights = self.attention_layer(att_h, memory, processed_memory, weights_cat, mask)
        gates = torch.addmm(w.decoder_bias, att_h, w.decoder_input.t())
        gates.addmm_(state.decoder_hidden, w.decoder_hh.t())
        gates.unsqueeze(1).baddbmm_(weights.unsqueeze(1), w.decoder_memory)
        dec_h, dec_c = _lstm_pointwise(gates, state.decoder_cell)
        out = torch.addmm(w.output_bias, torch.cat((dec_h, context), dim=1), w.output.t())
        new_state = DecoderState(att_h, att_c, dec_h, dec_c, weights, state.attention_weights_cum + weights, context)
        return out[:, :-1], out[:, -1], new_state

    def infer_step(
        self,
        prenet_out: torch.Tensor,
        state: DecoderState,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        mask: torch.Tensor | None,
        fast: FastStepWeights | None,
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """:meth:`fast_step` with ``fast`` (from :meth:`fast_step_weights`), else :meth:`step`."""
        if fast is None:
            return self.step(prenet_out, state, memory, processed_memory, mask)
        return self.fast_step(prenet_out, state, memory, processed_memory, mask, fast)

    def forward(
        self, memory: torch.Tensor, mels: torch.Tensor, memory_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing. ``mels`` ``[b, n_mel, frames]`` with frames a multiple of
        ``n_frames_per_step``. Returns mel ``[b, n_mel, frames]``, gate logits ``[b, steps]`` and
        alignments ``[b, tokens, steps]``."""
        b = memory.size(0)
        r = self.n_frames_per_step
        steps = mels.size(2) // r
        inputs = mels.transpose(1, 2).reshape(b, steps, self.frame_dim)  # step s holds frames s*r..s*r+r-1
        go = memory.new_zeros(b, 1, self.frame_dim)
        prenet_out = self.prenet(torch.cat((go, inputs[:, :-1]), dim=1))  # [b, steps, prenet]
        mask = ~sequence_mask(memory_lengths, memory.size(1))
        processed_memory = self.attention_layer.memory_layer(memory)
        state = self.initial_state(memory)
        mel_out, gate_out, align_out = [], [], []
        for t in range(steps):
            mel, gate, state = self.step(prenet_out[:, t], state, memory, processed_memory, mask)
            mel_out.append(mel)
            gate_out.append(gate)
            align_out.append(state.attention_weights)
        mel = torch.stack(mel_out, dim=1).reshape(b, steps * r, self.n_mel_channels).transpose(1, 2)
        return mel, torch.stack(gate_out, dim=1), torch.stack(align_out, dim=2)


class Tacotron2Output(NamedTuple):
    """Teacher-forced outputs (frames padded to a multiple of ``n_frames_per_step``)."""

    mel: torch.Tensor  # [b, n_mel, frames] decoder output
    mel_postnet: torch.Tensor  # [b, n_mel, frames] decoder output + postnet residual
    gate: torch.Tensor  # [b, steps] stop-gate logits
    alignments: torch.Tensor  # [b, tokens, steps]


class Tacotron2Inference(NamedTuple):
    """Free-running outputs."""

    mel: torch.Tensor  # [b, n_mel, frames] after the postnet, zero past each length
    lengths: torch.Tensor  # [b] frames
    alignments: torch.Tensor  # [b, tokens, steps]
    steps: torch.Tensor  # [b] decoder steps of each row
    hit_step_limit: torch.Tensor  # [b] bool: the gate never fired within max_decoder_steps


# (step, batch size) -> prenet dropout masks [batch, prenet mask channels], or None (random dropout)
PrenetMasks = Callable[[int, int], torch.Tensor | None]


class Tacotron2(nn.Module):
    """NVIDIA's ``Tacotron2``: ``embedding``, ``encoder``, ``decoder``, ``postnet`` (and
    ``speaker_embedding`` with several speakers)."""

    config_class = Tacotron2Config

    def __init__(self, config: Tacotron2Config):
        super().__init__()
        c = config
        self.config = c
        self.n_mel_channels = c.n_mel_channels
        self.n_frames_per_step = c.n_frames_per_step
        self.n_speakers = c.n_speakers
        self.embedding = nn.Embedding(c.n_symbols, c.symbols_embedding_dim)
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (c.n_symbols + c.symbols_embedding_dim))
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.encoder = Encoder(c.encoder_embedding_dim, c.encoder_n_convolutions, c.encoder_kernel_size)
        if c.n_speakers > 1:
            self.speaker_embedding = nn.Embedding(c.n_speakers, c.speaker_embedding_dim)
        self.decoder = Decoder(c)
        self.postnet = Postnet(c.n_mel_channels, c.postnet_embedding_dim, c.postnet_kernel_size, c.postnet_n_convolutions)

    @classmethod
    def from_config(cls, config: Tacotron2Config | Mapping[str, Any]) -> "Tacotron2":
        if not isinstance(config, Tacotron2Config):
            config = Tacotron2Config.from_dict(config)
        return cls(config)

    def encode(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, speaker: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token ids ``[b, tokens]`` → memory ``[b, tokens, memory_dim]`` (lengths None: unpadded)."""
        memory = self.encoder(self.embedding(ids).transpose(1, 2), lengths)
        if self.n_speakers > 1:
            if speaker is None:
                raise ValueError(f"this Tacotron2 has {self.n_speakers} speakers: pass speaker ids")
            vector = self.speaker_embedding(speaker).unsqueeze(1).expand(-1, memory.size(1), -1)
            memory = torch.cat((memory, vector), dim=2)
        elif speaker is not None:
            raise ValueError("this Tacotron2 is single-speaker (n_speakers <= 1) but got speaker ids")
        return memory

    def fixed_steps(self, lengths: torch.Tensor) -> torch.Tensor | None:
        """Steps per row when the config fixes them (benchmarks of untrained models), else None."""
        per_token = self.config.benchmark_frames_per_token
        if per_token is None:
            return None
        frames = torch.ceil(lengths.float() * per_token / self.n_frames_per_step)
        return frames.long().clamp_min(1)

    def pad_frames(self, mels: torch.Tensor) -> torch.Tensor:
        """Zero-pad the frame axis to a multiple of ``n_frames_per_step``."""
        extra = (-mels.size(2)) % self.n_frames_per_step
        return F.pad(mels, (0, extra)) if extra else mels

    def forward(
        self,
        ids: torch.Tensor,
        ids_lengths: torch.Tensor,
        mels: torch.Tensor,
        mel_lengths: torch.Tensor,
        speaker: torch.Tensor | None = None,
    ) -> Tacotron2Output:
        """Teacher-forced pass: ids ``[b, tokens]``, mels ``[b, n_mel, frames]``."""
        memory = self.encode(ids, ids_lengths, speaker)
        mels = self.pad_frames(mels)
        mel, gate, alignments = self.decoder(memory, mels, ids_lengths)
        frame_mask = sequence_mask(mel_lengths, mel.size(2)).unsqueeze(1).to(mel.dtype)
        mel = mel * frame_mask
        mel_postnet = (mel + self.postnet(mel, frame_mask)) * frame_mask
        return Tacotron2Output(mel, mel_postnet, gate, alignments)

    @torch.no_grad()
    def infer(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        speaker: torch.Tensor | None = None,
        prenet_masks: PrenetMasks | None = None,
        max_decoder_steps: int | None = None,
    ) -> Tacotron2Inference:
        """Free-running batched decoding: each row stops when its gate passes ``gate_threshold``;
        rows still running after ``max_decoder_steps`` stop there and are flagged in
        ``hit_step_limit`` (nothing is raised: the caller decides what to tell the user)."""
        limit = self.config.max_decoder_steps if max_decoder_steps is None else int(max_decoder_steps)
        b = ids.size(0)
        memory = self.encode(ids, lengths, speaker)
        mask = ~sequence_mask(lengths, memory.size(1))
        processed_memory = self.decoder.attention_layer.memory_layer(memory)
        state = self.decoder.initial_state(memory)
        frame = memory.new_zeros(b, self.decoder.frame_dim)
        steps = torch.zeros(b, dtype=torch.long)
        finished = torch.zeros(b, dtype=torch.bool)
        fixed = self.fixed_steps(lengths.cpu())
        fast = self.decoder.fast_step_weights(memory)
        mel_out, align_out = [], []
        for t in range(limit):
            prenet_out = self.decoder.prenet(frame, None if prenet_masks is None else prenet_masks(t, b))
            frame, gate, state = self.decoder.infer_step(prenet_out, state, memory, processed_memory, mask, fast)
            mel_out.append(frame)
            align_out.append(state.attention_weights)
            stop = (torch.sigmoid(gate) > self.config.gate_threshold).cpu() if fixed is None else fixed <= t + 1
            steps[stop & ~finished] = t + 1
            finished |= stop
            if bool(finished.all()):
                break
        hit_limit = ~finished
        steps[hit_limit] = len(mel_out)
        r = self.n_frames_per_step
        mel = torch.stack(mel_out, dim=1).reshape(b, len(mel_out) * r, self.n_mel_channels).transpose(1, 2)
        frame_lengths = steps * r
        frame_mask = sequence_mask(frame_lengths.to(mel.device), mel.size(2)).unsqueeze(1).to(mel.dtype)
        mel = mel * frame_mask
        mel = (mel + self.postnet(mel, frame_mask)) * frame_mask
        alignments = torch.stack(align_out, dim=2)
        step_mask = sequence_mask(steps.to(mel.device), alignments.size(2)).unsqueeze(1).to(alignments.dtype)
        return Tacotron2Inference(mel, frame_lengths, alignments * step_mask, steps, hit_limit)


# --- loss -------------------------------------------------------------------------------------------


def gate_targets(mel_lengths: torch.Tensor, steps: int, n_frames_per_step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stop-gate targets ``[b, steps]`` (1 from each row's last step on) and the valid-step mask."""
    last = torch.div(mel_lengths + n_frames_per_step - 1, n_frames_per_step, rounding_mode="floor")  # steps per row
    positions = torch.arange(steps, device=mel_lengths.device).unsqueeze(0)
    targets = (positions >= (last - 1).unsqueeze(1)).float()
    return targets, positions < last.unsqueeze(1)


def guided_attention_penalty(
    ids_lengths: torch.Tensor, step_lengths: torch.Tensor, tokens: int, steps: int, sigma: float = 0.2
) -> torch.Tensor:
    """Tachibana et al.'s diagonal prior: ``W[b, n, t] = 1 - exp(-(n/N - t/T)² / 2σ²)``, zero outside
    each row's ``N`` tokens × ``T`` steps. Shape ``[b, tokens, steps]``."""
    n = torch.arange(tokens, device=ids_lengths.device).view(1, -1, 1).float()
    t = torch.arange(steps, device=ids_lengths.device).view(1, 1, -1).float()
    big_n = ids_lengths.view(-1, 1, 1).float()
    big_t = step_lengths.view(-1, 1, 1).float()
    w = 1.0 - torch.exp(-((n / big_n - t / big_t) ** 2) / (2 * sigma**2))
    valid = (n < big_n) & (t < big_t)
    return w * valid


def guided_attention_loss(
    alignments: torch.Tensor, ids_lengths: torch.Tensor, step_lengths: torch.Tensor, sigma: float = 0.2
) -> torch.Tensor:
    """Attention mass off the diagonal, averaged over valid decoder steps (0 for a perfectly
    diagonal alignment, up to 1)."""
    b, tokens, steps = alignments.shape
    w = guided_attention_penalty(ids_lengths, step_lengths, tokens, steps, sigma)
    return (alignments * w).sum() / step_lengths.sum().clamp_min(1)


def guided_attention_schedule(step: int, weight: float, half_life: int) -> float:
    """The guided-attention weight at training ``step``: ``weight`` halving every ``half_life``
    steps (0: constant). Strong early, where it makes attention find the diagonal; weak later,
    where the model's own alignment should take over."""
    if half_life <= 0:
        return float(weight)
    return float(weight) * 0.5 ** (step / half_life)


def tacotron2_loss(
    outputs: Tacotron2Output,
    mels: torch.Tensor,
    mel_lengths: torch.Tensor,
    ids_lengths: torch.Tensor,
    n_frames_per_step: int = 1,
    gate_pos_weight: float = 10.0,
    guided_weight: float = 0.0,
    guided_sigma: float = 0.2,
) -> dict[str, torch.Tensor]:
    """``{"mel", "mel_postnet", "gate", "guided_attention", "total"}``: mel MSE before and after
    the postnet over valid frames, gate BCE over valid steps (positives weighted by
    ``gate_pos_weight``: one stop step per sentence against hundreds of go steps), and the guided
    attention loss times ``guided_weight``."""
    frames = outputs.mel.size(2)
    target = F.pad(mels, (0, frames - mels.size(2))) if mels.size(2) < frames else mels[:, :, :frames]
    frame_mask = sequence_mask(mel_lengths, frames).unsqueeze(1).to(target.dtype)
    n_valid = frame_mask.sum() * target.size(1)
    mel_loss = (((outputs.mel - target) ** 2) * frame_mask).sum() / n_valid
    post_loss = (((outputs.mel_postnet - target) ** 2) * frame_mask).sum() / n_valid
    steps = outputs.gate.size(1)
    gate_target, step_mask = gate_targets(mel_lengths, steps, n_frames_per_step)
    bce = F.binary_cross_entropy_with_logits(
        outputs.gate, gate_target, pos_weight=torch.tensor(gate_pos_weight, device=outputs.gate.device), reduction="none"
    )
    gate_loss = (bce * step_mask).sum() / step_mask.sum()
    step_lengths = step_mask.sum(dim=1)
    guided = guided_attention_loss(outputs.alignments, ids_lengths, step_lengths, guided_sigma)
    total = mel_loss + post_loss + gate_loss + guided_weight * guided
    return {"mel": mel_loss, "mel_postnet": post_loss, "gate": gate_loss, "guided_attention": guided, "total": total}


# --- NVIDIA checkpoints ---------------------------------------------------------------------------


def config_from_reference_state_dict(state_dict: Mapping[str, torch.Tensor], **overrides: Any) -> Tacotron2Config:
    """The :class:`Tacotron2Config` whose shapes match an NVIDIA state dict (sizes read from the
    tensors; the rest NVIDIA's defaults unless overridden)."""
    sd = state_dict
    try:
        n_symbols, emb_dim = sd["embedding.weight"].shape
        n_enc = len({k.split(".")[2] for k in sd if k.startswith("encoder.convolutions.")})
        enc_kernel = sd["encoder.convolutions.0.0.conv.weight"].shape[2]
        prenet_dim, frame_dim = sd["decoder.prenet.layers.0.linear_layer.weight"].shape
        attention_rnn_dim = sd["decoder.attention_rnn.weight_hh"].shape[1]
        decoder_rnn_dim = sd["decoder.decoder_rnn.weight_hh"].shape[1]
        attention_dim, memory_dim = sd["decoder.attention_layer.memory_layer.linear_layer.weight"].shape
        loc_filters, _, loc_kernel = sd["decoder.attention_layer.location_layer.location_conv.conv.weight"].shape
        n_post = len({k.split(".")[2] for k in sd if k.startswith("postnet.convolutions.")})
        post_dim, n_mel, post_kernel = sd["postnet.convolutions.0.0.conv.weight"].shape
    except KeyError as missing:
        raise ValueError(f"not an NVIDIA Tacotron2 state dict: no {missing} entry") from None
    speakers = sd.get("speaker_embedding.weight")
    params: dict[str, Any] = dict(
        n_symbols=n_symbols, symbols_embedding_dim=emb_dim, encoder_embedding_dim=emb_dim,
        encoder_n_convolutions=n_enc, encoder_kernel_size=enc_kernel, n_mel_channels=n_mel,
        n_frames_per_step=frame_dim // n_mel, prenet_dim=prenet_dim, attention_rnn_dim=attention_rnn_dim,
        decoder_rnn_dim=decoder_rnn_dim, attention_dim=attention_dim, attention_location_n_filters=loc_filters,
        attention_location_kernel_size=loc_kernel, postnet_embedding_dim=post_dim,
        postnet_kernel_size=post_kernel, postnet_n_convolutions=n_post,
    )
    if speakers is not None:
        params.update(n_speakers=speakers.shape[0], speaker_embedding_dim=speakers.shape[1])
    elif memory_dim != emb_dim:
        raise ValueError(f"memory width {memory_dim} differs from the encoder's {emb_dim} with no speaker embedding")
    params.update(overrides)
    return Tacotron2Config(**params)


def unwrap_reference_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of NVIDIA's ``{"state_dict": …, "optimizer": …, "iteration": …}`` (or a bare
    state dict), ``module.`` prefixes removed; every entry must be a tensor."""
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        checkpoint = checkpoint["state_dict"]
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
    return strip_module_prefix(checkpoint)


def load_reference_state_dict(model: Tacotron2, checkpoint: Mapping[str, Any], strict: bool = True) -> list[str]:
    """Load an NVIDIA/tacotron2 checkpoint into ``model``. Returns the problems (missing/unexpected
    keys), empty on a perfect match; with ``strict`` any problem raises ``ValueError`` and nothing is
    loaded. Shape mismatches always raise."""
    source = unwrap_reference_checkpoint(checkpoint)
    target = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(source[k].shape)} vs model {tuple(v.shape)}"
        for k, v in target.items()
        if k in source and source[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError("checkpoint does not fit this Tacotron2 config (shape mismatch):\n  " + "\n  ".join(mismatched))
    # BatchNorm's num_batches_tracked is only a training counter (older PyTorch did not save it).
    missing = sorted(k for k in set(target) - set(source) if not k.endswith("num_batches_tracked"))
    problems = [f"missing from checkpoint: {k}" for k in missing]
    problems += [f"unexpected in checkpoint: {k}" for k in sorted(set(source) - set(target))]
    if strict and problems:
        raise ValueError("checkpoint keys do not match the model:\n  " + "\n  ".join(problems))
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in source.items() if k in target}, strict=False)
    return problems


def import_reference(path: str | Path) -> tuple[Tacotron2Config, dict[str, torch.Tensor]]:
    """Config and state dict (float32) of an NVIDIA ``tacotron2_statedict.pt``-style file
    (``{"state_dict": …, "optimizer": …}`` or a bare state dict), read without executing any code
    from it. The config's sizes come from the tensors; the rest are NVIDIA's hparams."""
    from moksori.checkpoint import CheckpointError, torch_load

    try:
        raw = torch_load(path)
    except Exception as error:  # torch raises many kinds for a damaged or hostile file
        raise CheckpointError(f"{path}: cannot read an NVIDIA Tacotron2 checkpoint ({error})") from error
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict', got a {type(raw).__name__}")
    try:
        state = {k: v.float() if v.is_floating_point() else v for k, v in unwrap_reference_checkpoint(raw).items()}
        config = config_from_reference_state_dict(state)
        model = Tacotron2(config)
        load_reference_state_dict(model, state, strict=True)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from error
    return config, model.state_dict()


def set_constant_durations(model: Tacotron2, frames_per_token: float) -> None:
    """Make an untrained Tacotron2 decode ``frames_per_token`` frames per token, ignoring its stop
    gate (speed benchmarks of random-weight models, as Glow-TTS's fixed durations)."""
    model.config.benchmark_frames_per_token = float(frames_per_token)


def reference_text_frontend() -> dict[str, Any]:
    """The text front end of NVIDIA's published English Tacotron2 (its symbol table and
    ``english_cleaners``), as ``TextFrontend.settings()``."""
    from moksori.text import TextFrontend
    from moksori.text.nvidia import NVIDIA_ENGLISH

    return TextFrontend("en", cleaners=NVIDIA_ENGLISH).settings()


# --- inference adapter (the acoustic interface) -----------------------------------------------------

# FRAMES_PER_SYMBOL (the symbol limit of a sentence) and FIRST_NOISE_STEPS live with the ONNX loop
# (moksori.models.onnx_runners), which runs without torch.


class _NoiseColumns(PrenetNoise):
    """Prenet dropout masks for decoder step ``t`` of each row, drawn from the sentence's noise
    (:class:`PrenetNoise`, the ONNX loop's), as torch tensors."""

    def make_masks(self, noise: np.ndarray) -> torch.Tensor:
        return prenet_mask_from_noise(torch.from_numpy(noise), self.p)


def _alignment_report(alignment: torch.Tensor, n_tokens: int, steps: int, hit_limit: bool) -> AlignmentReport:
    return check_alignment(alignment, n_tokens, hit_limit, n_frames=max(int(steps), 1))


# Decoder steps between two pieces of Tacotron2Acoustic.stream (~0.19 s of speech at 22,050 Hz / 256).
STREAM_CHUNK_STEPS = 16


def postnet_context(config: Tacotron2Config) -> int:
    """Decoder frames either side that change one postnet output frame: each of the
    ``postnet_n_convolutions`` same-padded convolutions of width ``postnet_kernel_size`` reaches
    ``(kernel - 1) / 2`` frames further (5 x 2 = 10 with NVIDIA's hparams)."""
    return config.postnet_n_convolutions * (config.postnet_kernel_size - 1) // 2


def _postnet_span(model: Tacotron2, steps: list[torch.Tensor], start: int, end: int) -> torch.Tensor:
    """Postnet mel frames [start, end) ``[n_mels, frames]`` from the decoder's outputs so far
    (``[1, n_mels * r]`` per step), computed from :func:`postnet_context` frames either side (fewer at
    the sentence's edges, where the whole-sentence postnet pads with zeros too), so it equals the
    whole-sentence postnet's frames there."""
    r, context = model.n_frames_per_step, postnet_context(model.config)
    total = len(steps) * r
    lo, hi = max(0, start - context), min(total, end + context)
    first, last = lo // r, -(-hi // r)
    decoded = torch.cat(steps[first:last]).reshape((last - first) * r, model.n_mel_channels).T[None]
    decoded = decoded[:, :, lo - first * r : hi - first * r]
    mel = decoded + model.postnet(decoded)
    return mel[0, :, start - lo : end - lo]


@torch.no_grad()
def stream_pieces(
    model: Tacotron2, ids: torch.Tensor, lengths: torch.Tensor, speaker: torch.Tensor | None,
    prenet_masks: PrenetMasks | None, chunk_steps: int = STREAM_CHUNK_STEPS, first_frames: int | None = None,
) -> Iterator[MelPiece]:
    """:meth:`Tacotron2.infer` of one sentence (batch 1) as mel pieces: the decoder loop yields
    whenever ``chunk_steps`` more frames (the first time ``first_frames``, when given) have all the
    decoder frames the postnet needs around them; the last piece carries the alignment report. The
    pieces join into ``infer``'s mel (same steps, same masks, the postnet over enough context)."""
    c, decoder = model.config, model.decoder
    memory = model.encode(ids, lengths, speaker)
    mask = ~sequence_mask(lengths, memory.size(1))
    processed_memory = decoder.attention_layer.memory_layer(memory)
    state = decoder.initial_state(memory)
    frame = memory.new_zeros(1, decoder.frame_dim)
    fixed = model.fixed_steps(lengths.cpu())
    fast = decoder.fast_step_weights(memory)
    r, context = model.n_frames_per_step, postnet_context(c)
    steps: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    sent, want, stopped = 0, max(1, first_frames or chunk_steps * r), False
    for t in range(c.max_decoder_steps):
        prenet_out = decoder.prenet(frame, None if prenet_masks is None else prenet_masks(t, 1))
        frame, gate, state = decoder.infer_step(prenet_out, state, memory, processed_memory, mask, fast)
        steps.append(frame)
        weights.append(state.attention_weights)
        stopped = bool(torch.sigmoid(gate[0]) > c.gate_threshold) if fixed is None else int(fixed[0]) <= t + 1
        if stopped:
            break
        ready = len(steps) * r - context
        if ready - sent >= want:
            yield MelPiece(_postnet_span(model, steps, sent, ready))
            sent, want = ready, chunk_steps * r
    alignment = torch.cat(weights).T  # [tokens, steps]
    report = _alignment_report(alignment, int(lengths[0]), len(steps), not stopped)
    yield MelPiece(_postnet_span(model, steps, sent, len(steps) * r), True, report)


class Tacotron2Acoustic(Tacotron2Onnx, AcousticModel):
    """Text ids → mel for an eval-mode Tacotron2: batched greedy decoding, each row stopping at its
    own gate, the prenet's dropout masks drawn from the sentence's noise (so a sentence reads the
    same alone, batched, or through ONNX Runtime). Every row's alignment is checked
    (:func:`check_alignment`) and reported in :class:`AcousticOutput` ``reports``.

    ONNX: the encoder is ``acoustic.onnx``, one decoder step ``acoustic.decoder_step.onnx``, the
    postnet ``acoustic.postnet.onnx``; :meth:`onnx_run` runs the loop in Python."""

    # knobs, onnx_extra_graphs and onnx_run (the decoder loop in ONNX Runtime) are Tacotron2Onnx's.
    # int8: the two 1024-unit LSTM cells hold ~97% of the weights a decoder step reads. The prenet,
    # projection, stop gate and attention stay fp32: they are small, and the gate decides the length.
    precision_modules = ("model.decoder.attention_rnn", "model.decoder.decoder_rnn")

    def __init__(self, model: Tacotron2):
        super().__init__(model)
        self.config: Tacotron2Config = model.config

    @property
    def max_symbols(self) -> int:
        return onnx_runners.attention_max_symbols(self.config.max_decoder_steps, self.config.n_frames_per_step)

    def _speaker(self, controls: Controls, rows: int) -> torch.Tensor | None:
        if self.model.n_speakers <= 1:
            return None
        return torch.full((rows,), int(controls.speaker_id or 0), dtype=torch.long)

    def infer(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource
    ) -> AcousticOutput:
        c = self.config
        masks = _NoiseColumns(noise, ids.size(0), self.model.decoder.prenet.mask_channels, c.p_prenet_dropout,
                              c.max_decoder_steps)
        out = self.model.infer(ids, lengths, self._speaker(controls, ids.size(0)),
                               masks if c.prenet_dropout_at_inference else None)
        reports = tuple(
            _alignment_report(out.alignments[row], int(lengths[row]), int(out.steps[row]), bool(out.hit_step_limit[row]))
            for row in range(ids.size(0))
        )
        alignment = out.alignments.repeat_interleave(c.n_frames_per_step, dim=2)
        return AcousticOutput(out.mel, out.lengths, alignment, reports)

    def stream(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource,
        first_frames: int | None = None,
    ) -> Iterator[MelPiece]:
        """One sentence as pieces from the decoder loop (:func:`stream_pieces`): one every
        ``STREAM_CHUNK_STEPS`` steps, the first as soon as ``first_frames`` frames are final. The
        pieces join into :meth:`infer`'s mel for the same noise; the last carries the report."""
        if ids.size(0) != 1:
            raise ValueError(f"stream takes one sentence (batch 1), got a batch of {ids.size(0)}")
        c = self.config
        masks = _NoiseColumns(noise, 1, self.model.decoder.prenet.mask_channels, c.p_prenet_dropout,
                              c.max_decoder_steps)
        return stream_pieces(self.model, ids, lengths, self._speaker(controls, 1),
                             masks if c.prenet_dropout_at_inference else None, first_frames=first_frames)

    def teacher_forced_mel(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The postnet mel decoded with the real mel as the decoder's input (NVIDIA's
        ground-truth-aligned mels for WaveGlow/HiFi-GAN fine-tuning)."""
        speaker = batch.get("speaker") if self.model.n_speakers > 1 else None
        with torch.no_grad():
            out = self.model(batch["ids"], batch["ids_lengths"], batch["mel"], batch["mel_lengths"], speaker)
        frames = batch["mel"].size(2)
        return out.mel_postnet[:, :, :frames], batch["mel_lengths"].clone()

    # --- ONNX: encoder, one decoder step, postnet; the loop in Python --------------------------
    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        """The encoder: ``input`` int64 [1, T] (and ``sid`` int64 [1] with several speakers) →
        ``memory`` [1, T, memory_dim], ``processed_memory`` [1, T, attention_dim]."""
        args: tuple[torch.Tensor, ...] = (torch.ones(1, 12, dtype=torch.long),)
        names = ["input"]
        if self.model.n_speakers > 1:
            args += (torch.zeros(1, dtype=torch.long),)
            names.append("sid")
        axes = {"input": {1: "tokens"}, "memory": {1: "tokens"}, "processed_memory": {1: "tokens"}}
        return OnnxGraph(args, names, ["memory", "processed_memory"], axes)

    def forward(self, ids: torch.Tensor, sid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.model.encode(ids, None, sid)
        return memory, self.model.decoder.attention_layer.memory_layer(memory)

    def onnx_graphs(self, n_mels: int) -> dict[str, tuple[nn.Module, OnnxGraph]]:
        c, tokens = self.config, 12
        state = self.model.decoder.initial_state(torch.zeros(1, tokens, c.memory_dim))
        step_args = (
            torch.zeros(1, self.model.decoder.frame_dim),
            torch.ones(1, self.model.decoder.prenet.mask_channels),
            *state,
            torch.zeros(1, tokens, c.memory_dim),
            torch.zeros(1, tokens, c.attention_dim),
        )
        step_axes = {name: {1: "tokens"} for name in ("attention_weights", "attention_weights_cum", "memory",
                                                       "processed_memory", "out_attention_weights",
                                                       "out_attention_weights_cum")}
        step = OnnxGraph(step_args, ["frame", "prenet_mask", *DecoderState._fields, "memory", "processed_memory"],
                         ["mel", "gate", *(f"out_{name}" for name in DecoderState._fields)], step_axes)
        postnet = OnnxGraph((torch.zeros(1, n_mels, 16),), ["mel"], ["mel_postnet"],
                            {"mel": {2: "frames"}, "mel_postnet": {2: "frames"}})
        return {"": (self, self.onnx_graph(n_mels)), "decoder_step": (_OnnxDecoderStep(self.model), step),
                "postnet": (_OnnxPostnet(self.model), postnet)}

    def onnx_metadata(self) -> dict[str, str]:
        c = self.config
        facts = {
            "max_decoder_steps": c.max_decoder_steps, "gate_threshold": c.gate_threshold,
            "p_prenet_dropout": c.p_prenet_dropout if c.prenet_dropout_at_inference else 0.0,
            "n_frames_per_step": c.n_frames_per_step, "prenet_channels": self.model.decoder.prenet.mask_channels,
            "frame_dim": self.model.decoder.frame_dim, "attention_rnn_dim": c.attention_rnn_dim,
            "decoder_rnn_dim": c.decoder_rnn_dim, "memory_dim": c.memory_dim,
        }
        if c.benchmark_frames_per_token is not None:
            facts["benchmark_frames_per_token"] = c.benchmark_frames_per_token
        return {f"tacotron2.{key}": str(value) for key, value in facts.items()}


class _OnnxDecoderStep(nn.Module):
    """One decoder step for export: prenet (with the given dropout mask) then :meth:`Decoder.step`;
    inputs and outputs are the state's tensors one by one."""

    def __init__(self, model: Tacotron2):
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, prenet_mask: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        *state, memory, processed_memory = rest
        decoder = self.model.decoder
        mel, gate, new_state = decoder.step(decoder.prenet(frame, prenet_mask), DecoderState(*state), memory,
                                            processed_memory, None)
        return (mel, gate, *new_state)


class _OnnxPostnet(nn.Module):
    def __init__(self, model: Tacotron2):
        super().__init__()
        self.model = model

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return mel + self.model.postnet(mel)


__all__ = [
    "Attention",
    "Tacotron2Acoustic",
    "ConvNorm",
    "Decoder",
    "DecoderState",
    "Encoder",
    "LinearNorm",
    "LocationLayer",
    "PRESETS",
    "Postnet",
    "Prenet",
    "Tacotron2",
    "Tacotron2Config",
    "Tacotron2Inference",
    "Tacotron2Output",
    "config_from_reference_state_dict",
    "gate_targets",
    "guided_attention_loss",
    "guided_attention_penalty",
    "guided_attention_schedule",
    "import_reference",
    "load_reference_state_dict",
    "reference_text_frontend",
    "set_constant_durations",
    "postnet_context",
    "prenet_mask_from_noise",
    "stream_pieces",
    "tacotron2_loss",
    "unwrap_reference_checkpoint",
]

"""Flowtron (NVIDIA): an autoregressive flow between mel frames and a Gaussian latent z.

Each flow is an affine coupling over time: frame ``t`` of its output is
``exp(log_s_t) * x_t + b_t`` where ``log_s_t`` and ``b_t`` come from an attention LSTM and a
decoder LSTM that see only the frames before ``t`` (and the whole text). Flows alternate
direction (``AR_Step`` forward, ``AR_Back_Step`` on the time-reversed frames), so the second
flow conditions on the future of the first. The Jacobian of a flow is triangular; its log
determinant is the sum of ``log_s``. Training maximises the likelihood of z under a Gaussian
(or Gaussian-mixture) prior plus a stop-gate loss on the last flow; inference samples z
(``sigma``, a reference's mean, an interpolation, a mixture component) and inverts the flows
one frame at a time until the gate fires.

Parameter names follow NVIDIA/flowtron (``speaker_embedding``, ``embedding``, ``encoder``,
``flows.N`` with ``attention_lstm``, ``attention_layer.query/key/value/v``, ``lstm``,
``dense_layer.layers``, ``conv``, ``gate_layer``; ``mel_encoder`` and ``gaussian_mixture`` for
the mixture prior), so its published checkpoints import (:func:`load_reference_state_dict`).
The text encoder is Tacotron2's (:class:`moksori.models.tacotron2.Encoder`) with Flowtron's
masked instance normalisation in place of batch normalisation.

Layouts: mels and z are ``[b, n_mel_channels, frames]`` as everywhere in moksori; inside the
flows frames are batch-first ``[b, frames, channels]``.

``use_cumm_attention`` (NVIDIA's later option, off in its published configs): an
``attn_cond_layer`` (Tacotron2's location layer) reads the previous and the accumulated attention
weights and gates the memory before the keys, so each frame's attention knows where the last ones
were. It costs a frame-by-frame attention loop in training and is what lets a small model, which
leans on the previous frame, keep its attention moving and stop when it synthesises on its own.

Not supported: the CTC attention loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moksori.models.interfaces import AcousticModel, AcousticOutput, Controls, NoiseSource, OnnxGraph
from moksori.models.alignment import check_alignment
from moksori.models.layers.common import sequence_mask
from moksori.models.onnx_runners import (
    FLOWTRON_FRAME_STATE,
    FLOWTRON_LOCATION_STATE,
    FlowtronOnnx,
    FlowtronStyle,
    attention_max_symbols,
    flowtron_metadata,
    flowtron_prior,
    segment_means,
    spread_segments,
)
from moksori.models.tacotron2 import ConvNorm, Encoder, LinearNorm

# --- config -------------------------------------------------------------------------------------


@dataclass
class FlowtronConfig:
    """NVIDIA/flowtron's ``model_config`` names, plus the text encoder's shape, the encoder
    dropout and the inference limits."""

    n_speakers: int = 1
    n_speaker_dim: int = 128
    n_text: int = 185
    n_text_dim: int = 512
    n_flows: int = 2
    n_mel_channels: int = 80
    n_hidden: int = 1024
    n_attn_channels: int = 640
    n_lstm_layers: int = 2
    mel_encoder_n_hidden: int = 512
    n_components: int = 0
    mean_scale: float = 0.0
    fixed_gaussian: bool = True
    dummy_speaker_embedding: bool = False
    use_gate_layer: bool = True
    use_cumm_attention: bool = False
    encoder_n_convolutions: int = 3
    encoder_kernel_size: int = 5
    p_dropout: float = 0.5  # text-encoder dropout (the reference's fixed 0.5)
    gate_threshold: float = 0.5
    max_decoder_steps: int = 1000
    sigma: float = 1.0  # standard deviation of the Gaussian prior in training

    def __post_init__(self) -> None:
        for name in ("n_speakers", "n_speaker_dim", "n_text", "n_text_dim", "n_flows", "n_mel_channels",
                     "n_hidden", "n_attn_channels", "n_lstm_layers", "encoder_n_convolutions",
                     "max_decoder_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FlowtronConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_text_dim % 2:
            raise ValueError(f"FlowtronConfig.n_text_dim must be even (a bidirectional LSTM), got {self.n_text_dim}")
        if self.encoder_kernel_size % 2 == 0:
            raise ValueError(f"FlowtronConfig.encoder_kernel_size must be odd, got {self.encoder_kernel_size}")
        if self.n_components < 0 or self.n_components == 1:
            raise ValueError(f"FlowtronConfig.n_components must be 0 (Gaussian) or >= 2, got {self.n_components}")
        if not 0.0 <= self.p_dropout < 1.0:
            raise ValueError(f"FlowtronConfig.p_dropout must be in [0, 1), got {self.p_dropout}")
        if self.sigma <= 0:
            raise ValueError(f"FlowtronConfig.sigma must be positive, got {self.sigma}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FlowtronConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown Flowtron config key(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def base(cls, n_text: int = 185, **overrides: Any) -> "FlowtronConfig":
        """NVIDIA's published LJSpeech/LibriTTS config (``config.json``)."""
        return cls(n_text=n_text, **overrides)

    @classmethod
    def small(cls, n_text: int = 185, **overrides: Any) -> "FlowtronConfig":
        """About a tenth of the base model: trains on one GPU in hours on a small voice."""
        values: dict[str, Any] = dict(n_speaker_dim=64, n_text_dim=256, n_hidden=512, n_attn_channels=256,
                                      mel_encoder_n_hidden=256)
        return cls(n_text=n_text, **{**values, **overrides})

    @classmethod
    def tiny(cls, n_text: int = 185, **overrides: Any) -> "FlowtronConfig":
        """For tests and CPU demos."""
        values: dict[str, Any] = dict(n_speaker_dim=8, n_text_dim=32, n_hidden=32, n_attn_channels=16,
                                      n_lstm_layers=1, mel_encoder_n_hidden=16, encoder_n_convolutions=2,
                                      encoder_kernel_size=3, max_decoder_steps=400)
        return cls(n_text=n_text, **{**values, **overrides})

    @classmethod
    def preset(cls, name: str, n_text: int = 185, **overrides: Any) -> "FlowtronConfig":
        factories = {"base": cls.base, "small": cls.small, "tiny": cls.tiny}
        if name not in factories:
            raise ValueError(f"unknown Flowtron preset {name!r}; choose from {', '.join(factories)}")
        return factories[name](n_text, **overrides)


PRESETS = ("base", "small", "tiny")

# --- layers (LinearNorm / ConvNorm are Tacotron2's, under NVIDIA's names) -----------------------


class MaskedInstanceNorm1d(nn.InstanceNorm1d):
    """Instance normalisation over the valid frames only (``mask`` ``[b, 1, t]``); without a
    mask, plain instance normalisation. Parameters ``weight``/``bias`` (affine), no buffers."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_features, eps=eps, affine=affine, track_running_stats=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().forward(x)
        mask = mask.to(x.dtype)
        count = mask.sum(dim=2, keepdim=True).clamp_min(1.0)
        mean = (x * mask).sum(dim=2, keepdim=True) / count
        var = (((x - mean) * mask) ** 2).sum(dim=2, keepdim=True) / count
        out = (x - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            out = out * self.weight.view(1, -1, 1) + self.bias.view(1, -1, 1)
        return out


class DenseLayer(nn.Module):
    """``layers``: tanh-activated linear layers."""

    def __init__(self, in_dim: int, sizes: list[int]) -> None:
        super().__init__()
        in_sizes = [in_dim] + sizes[:-1]
        self.layers = nn.ModuleList(LinearNorm(i, o) for i, o in zip(in_sizes, sizes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear in self.layers:
            x = torch.tanh(linear(x))
        return x


class Attention(nn.Module):
    """Additive attention of a decoder state (query) over the text+speaker memory. ``forward``
    takes projected keys/values (:meth:`memory`) so a step-by-step decoder projects them once."""

    def __init__(self, n_query: int, n_memory: int, n_att_channels: int) -> None:
        super().__init__()
        self.query = LinearNorm(n_query, n_att_channels, bias=False, w_init_gain="tanh")
        self.key = LinearNorm(n_memory, n_att_channels, bias=False, w_init_gain="tanh")
        self.value = LinearNorm(n_memory, n_att_channels, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(n_att_channels, 1, bias=False, w_init_gain="tanh")

    def memory(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[b, t_text, n_att]`` of the memory ``[b, t_text, n_memory]``."""
        return self.key(text), self.value(text)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        text_mask: torch.Tensor,
        attn_prior: torch.Tensor | None = None,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``queries`` ``[b, t_mel, n_query]``; ``text_mask`` ``[b, t_text]`` True on real tokens;
        ``attn_prior`` ``[b, t_mel, t_text]`` multiplies the attention (then renormalised).
        Returns the context ``[b, t_mel, n_att]`` and the weights ``[b, t_mel, t_text]``."""
        q = self.query(queries)
        scores = self.v(torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1) / temperature
        pad = ~text_mask.unsqueeze(1)
        scores = scores.masked_fill(pad, float("-inf"))
        attn = torch.softmax(scores, dim=2)
        if attn_prior is not None:
            # The reference's posterior: log attention + log prior, renormalised over the tokens.
            posterior = torch.log(attn.float() + 1e-20) + torch.log(attn_prior.float() + 1e-20)
            attn = torch.softmax(posterior.masked_fill(pad, float("-inf")), dim=2).to(values.dtype)
        return torch.bmm(attn, values), attn


class AttentionConditioningLayer(nn.Module):
    """NVIDIA's cumulative-attention conditioning: Tacotron2's location convolutions over the
    accumulated and the previous attention weights ``[b, 2, t_text]``, ending in a sigmoid gate
    ``[b, n_memory, t_text]`` on every memory channel of every token."""

    def __init__(self, n_memory: int, input_dim: int = 2, attention_n_filters: int = 32,
                 attention_kernel_sizes: tuple[int, int] = (5, 3)) -> None:
        super().__init__()
        self.location_conv_hidden = ConvNorm(input_dim, attention_n_filters, attention_kernel_sizes[0],
                                             w_init_gain="relu")
        self.location_conv_out = ConvNorm(attention_n_filters, n_memory, attention_kernel_sizes[1],
                                          w_init_gain="sigmoid")
        # The same two modules again under the reference's Sequential name, so its state dicts load.
        self.conv_layers = nn.Sequential(self.location_conv_hidden, nn.ReLU(), self.location_conv_out, nn.Sigmoid())

    def forward(self, attention_weights_cat: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``token_mask`` ``[b, t_text]`` True on real tokens: the hidden layer is zeroed past each
        row's text, as the output convolution's zero padding is for the row alone (its bias made
        the last tokens' gates depend on how much padding the batch gave the row)."""
        if token_mask is None:
            return self.conv_layers(attention_weights_cat)
        hidden = F.relu(self.location_conv_hidden(attention_weights_cat))
        hidden = hidden * token_mask.unsqueeze(1).to(hidden.dtype)
        return torch.sigmoid(self.location_conv_out(hidden))


# --- frame order helpers --------------------------------------------------------------------------


def reverse_frames(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[r]`` frames of each row of ``x`` ``[b, t, ...]`` (frame axis 1);
    padding stays at the end. Its own inverse."""
    t = x.size(1)
    positions = torch.arange(t, device=x.device).unsqueeze(0)
    lengths = lengths.to(x.device).unsqueeze(1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, index)


class FlowOutput(NamedTuple):
    z: torch.Tensor  # [b, t, c] processing order of this step
    log_s: torch.Tensor  # [b, t, c]
    gate: torch.Tensor | None  # [b, t] logits (the last flow only)
    attn: torch.Tensor  # [b, t, t_text]


# --- the flow steps -------------------------------------------------------------------------------


class AR_Step(nn.Module):  # noqa: N801 - NVIDIA's class name
    """One autoregressive affine coupling over the frames in their given order."""

    def __init__(self, config: FlowtronConfig, add_gate: bool) -> None:
        super().__init__()
        c = config
        n_memory = c.n_text_dim + c.n_speaker_dim
        self.n_mel_channels = c.n_mel_channels
        self.conv = nn.Conv1d(c.n_hidden, 2 * c.n_mel_channels, 1)
        # Zero-initialised: every flow starts as the identity (log_s = 0, b = 0).
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.lstm = nn.LSTM(c.n_hidden + c.n_attn_channels, c.n_hidden, c.n_lstm_layers, batch_first=True)
        self.attention_lstm = nn.LSTM(c.n_mel_channels, c.n_hidden, batch_first=True)
        self.attention_layer = Attention(c.n_hidden, n_memory, c.n_attn_channels)
        self.dense_layer = DenseLayer(c.n_hidden, [c.n_hidden, c.n_hidden])
        if c.use_cumm_attention:
            self.attn_cond_layer = AttentionConditioningLayer(n_memory)
        if add_gate:
            self.gate_layer = LinearNorm(c.n_hidden + c.n_attn_channels, 1, w_init_gain="sigmoid")

    @property
    def has_gate(self) -> bool:
        return hasattr(self, "gate_layer")

    @property
    def uses_cumm_attention(self) -> bool:
        return hasattr(self, "attn_cond_layer")

    def attend(
        self,
        queries: torch.Tensor,
        memory: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        text_mask: torch.Tensor,
        attn_prior: torch.Tensor | None = None,
        temperature: float = 1.0,
        location: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Context and weights for ``queries`` ``[b, frames, n_hidden]``. With cumulative attention
        the frames go one at a time, each seeing ``location``: the accumulated and the previous
        weights ``[b, t_text]`` (zeros before the first frame), returned updated for the next call."""
        if not self.uses_cumm_attention:
            context, attn = self.attention_layer(queries, keys, values, text_mask, attn_prior, temperature)
            return context, attn, None
        if location is None:
            zeros = memory.new_zeros(memory.shape[:2])
            location = (zeros, zeros)
        contexts, attns = [], []
        for t in range(queries.size(1)):
            cumulative, previous = location
            condition = self.attn_cond_layer(torch.stack([cumulative, previous], dim=1), text_mask).transpose(1, 2)
            prior = None if attn_prior is None else attn_prior[:, t : t + 1]
            context, attn = self.attention_layer(queries[:, t : t + 1], self.attention_layer.key(memory * condition),
                                                 values, text_mask, prior, temperature)
            location = (cumulative + attn[:, 0], attn[:, 0])
            contexts.append(context)
            attns.append(attn)
        return torch.cat(contexts, dim=1), torch.cat(attns, dim=1), location

    def _affine(self, lstm_hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(self.dense_layer(lstm_hidden).transpose(1, 2)).transpose(1, 2)
        return out[..., : self.n_mel_channels], out[..., self.n_mel_channels :]

    def forward(
        self, x: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor, attn_prior: torch.Tensor | None = None
    ) -> FlowOutput:
        """``x`` ``[b, t, c]`` in processing order; frame ``t`` is conditioned on frames ``< t``."""
        previous = F.pad(x[:, :-1], (0, 0, 1, 0))  # frame t sees x[t-1]; the first sees zeros
        attention_hidden, _ = self.attention_lstm(previous)
        keys, values = self.attention_layer.memory(text)
        context, attn, _ = self.attend(attention_hidden, text, keys, values, text_mask, attn_prior)
        decoder_input = torch.cat([attention_hidden, context], dim=-1)
        gate = self.gate_layer(decoder_input).squeeze(-1) if self.has_gate else None
        lstm_hidden, _ = self.lstm(decoder_input)
        log_s, b = self._affine(lstm_hidden)
        return FlowOutput(torch.exp(log_s) * x + b, log_s, gate, attn)

    @torch.no_grad()
    def infer(
        self,
        z: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        use_gate: bool,
        gate_threshold: float,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Invert frame by frame: ``z`` ``[b, n, c]`` → ``x`` ``[b, n, c]``, attention
        ``[b, n, t_text]`` and the frames per row (the gate's stop, or ``n``: rows whose gate
        never fired keep ``n``). Frames after a row's stop are computed but meaningless."""
        bsz, n, _ = z.shape
        keys, values = self.attention_layer.memory(text)
        frame = z.new_zeros(bsz, 1, z.size(2))
        state_attn = state_lstm = location = None
        outputs, attns = [], []
        lengths = torch.full((bsz,), n, dtype=torch.long, device=z.device)
        stopped = torch.zeros(bsz, dtype=torch.bool, device=z.device)
        for i in range(n):
            attention_hidden, state_attn = self.attention_lstm(frame, state_attn)
            context, attn, location = self.attend(attention_hidden, text, keys, values, text_mask,
                                                  temperature=temperature, location=location)
            decoder_input = torch.cat([attention_hidden, context], dim=-1)
            lstm_hidden, state_lstm = self.lstm(decoder_input, state_lstm)
            log_s, b = self._affine(lstm_hidden)
            frame = (z[:, i : i + 1] - b) * torch.exp(-log_s)
            outputs.append(frame)
            attns.append(attn)
            if use_gate and self.has_gate:
                fired = (torch.sigmoid(self.gate_layer(decoder_input)).view(-1) > gate_threshold) & ~stopped
                lengths = torch.where(fired, torch.full_like(lengths, i + 1), lengths)
                stopped = stopped | fired
                if bool(stopped.all()):
                    break
        return torch.cat(outputs, dim=1), torch.cat(attns, dim=1), lengths


class AR_Back_Step(nn.Module):  # noqa: N801 - NVIDIA's class name
    """An :class:`AR_Step` (under ``ar_step``) over the time-reversed frames."""

    def __init__(self, config: FlowtronConfig, add_gate: bool) -> None:
        super().__init__()
        self.ar_step = AR_Step(config, add_gate)

    @property
    def has_gate(self) -> bool:
        return self.ar_step.has_gate

    def forward(
        self,
        x: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        lengths: torch.Tensor,
        attn_prior: torch.Tensor | None = None,
    ) -> FlowOutput:
        """Output ``z`` in time order; ``log_s`` and ``gate`` in processing (reversed) order,
        whose valid frames also come first; ``attn`` back in time order."""
        prior = None if attn_prior is None else reverse_frames(attn_prior, lengths)
        out = self.ar_step(reverse_frames(x, lengths), text, text_mask, prior)
        return FlowOutput(reverse_frames(out.z, lengths), out.log_s, out.gate, reverse_frames(out.attn, lengths))

    def infer(
        self,
        z: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        lengths: torch.Tensor,
        use_gate: bool,
        gate_threshold: float,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inverse of :meth:`forward` for rows of ``lengths`` frames. With the gate, the rows
        stop early: row ``r`` then holds the inverse of the last ``lengths_out[r]`` frames of
        its ``lengths[r]`` (those this flow consumed first)."""
        x, attn, out_lengths = self.ar_step.infer(
            reverse_frames(z, lengths), text, text_mask, use_gate, gate_threshold, temperature
        )
        if not (use_gate and self.has_gate):
            out_lengths = lengths
        return reverse_frames(x, out_lengths), reverse_frames(attn, out_lengths), out_lengths


# --- the mixture prior ------------------------------------------------------------------------------


class MelEncoder(nn.Module):
    """Convolutions (masked instance norm) + BiLSTM, averaged over time: one vector per mel,
    from which :class:`GaussianMixture` predicts the component weights."""

    def __init__(self, n_mel_channels: int, n_hidden: int, kernel_size: int = 3, n_convolutions: int = 2) -> None:
        super().__init__()
        self.convolutions = nn.ModuleList(
            nn.Sequential(ConvNorm(n_mel_channels if i == 0 else n_hidden, n_hidden, kernel_size, w_init_gain="relu"),
                          MaskedInstanceNorm1d(n_hidden))
            for i in range(n_convolutions)
        )
        self.lstm = nn.LSTM(n_hidden, n_hidden // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """``lengths`` None: one unpadded mel (the ONNX reference encoder)."""
        if lengths is None:
            return self.lstm(self._convolve(mel, None).transpose(1, 2))[0].mean(dim=1)
        mask = sequence_mask(lengths, mel.size(2)).unsqueeze(1)
        x = self._convolve(mel, mask)
        packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=mel.size(2))
        # The reference averages over all padded frames; the valid frames' mean is what it means.
        return (out * mask.transpose(1, 2)).sum(dim=1) / lengths.unsqueeze(1).to(out.dtype)

    def _convolve(self, mel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = mel
        for conv, norm in self.convolutions:
            x = F.dropout(F.relu(norm(conv(x if mask is None else x * mask), mask)), 0.5, self.training)
        return x


class GaussianMixture(nn.Module):
    """Component weights from a mel embedding; means and log variances fixed (buffers
    ``mean``/``log_var`` ``[1, n_mel, k]``) or predicted (``mean_layer``/``log_var_layer``)."""

    def __init__(self, n_hidden: int, n_components: int, n_mel_channels: int, fixed_gaussian: bool,
                 mean_scale: float) -> None:
        super().__init__()
        self.n_mel_channels = n_mel_channels
        self.n_components = n_components
        self.fixed_gaussian = fixed_gaussian
        self.prob_layer = LinearNorm(n_hidden, n_components)
        if fixed_gaussian:
            # Means on distinct axes (scaled one-hot rows), as the reference; seeded, so a
            # model built twice from one config has the same prior.
            generator = torch.Generator().manual_seed(n_components * 7919 + n_mel_channels)
            axes = torch.randperm(n_mel_channels, generator=generator)[:n_components]
            mean = torch.eye(n_mel_channels)[axes].t().unsqueeze(0) * mean_scale
            self.register_buffer("mean", mean)
            self.register_buffer("log_var", torch.zeros(1, n_mel_channels, n_components))
        else:
            self.mean_layer = LinearNorm(n_hidden, n_mel_channels * n_components)
            self.log_var_layer = LinearNorm(n_hidden, n_mel_channels * n_components)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``embedding`` ``[b, n_hidden]`` → mean, log_var ``[b or 1, n_mel, k]``, prob ``[b, k]``."""
        prob = torch.softmax(self.prob_layer(embedding), dim=1)
        if self.fixed_gaussian:
            return self.mean, self.log_var, prob
        shape = (embedding.size(0), self.n_mel_channels, self.n_components)
        return self.mean_layer(embedding).view(shape), self.log_var_layer(embedding).view(shape), prob


# --- the text encoder -------------------------------------------------------------------------------


def _text_encoder(config: FlowtronConfig) -> nn.Module:
    """Tacotron2's encoder (``convolutions`` of conv + norm, bidirectional ``lstm``) with
    Flowtron's masked instance normalisation in place of batch normalisation."""
    encoder = Encoder(config.n_text_dim, config.encoder_n_convolutions, config.encoder_kernel_size)
    for block in encoder.convolutions:
        block[1] = MaskedInstanceNorm1d(config.n_text_dim)
    return encoder


def encode_text(encoder: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, p_dropout: float) -> torch.Tensor:
    """Run the encoder's layers on embedded text ``x`` ``[b, n_text_dim, t]`` with padding
    masked out of the convolutions and the normalisation statistics: ``[b, t, n_text_dim]``.
    ``lengths`` None: no padding (the ONNX encoder, one unpadded sentence)."""
    mask = None if lengths is None else sequence_mask(lengths, x.size(2)).unsqueeze(1)
    for block in encoder.convolutions:
        conv, norm = block[0], block[1]
        x = F.dropout(F.relu(norm(conv(x if mask is None else x * mask), mask)), p_dropout, encoder.training)
    if lengths is None:
        return encoder.lstm(x.transpose(1, 2))[0]
    packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True,
                                               enforce_sorted=False)
    out, _ = nn.utils.rnn.pad_packed_sequence(encoder.lstm(packed)[0], batch_first=True, total_length=x.size(2))
    return out


# --- the model -------------------------------------------------------------------------------------


class FlowtronOutput(NamedTuple):
    z: torch.Tensor  # [b, n_mel, t] time order, zero past each row's length
    log_s_list: list[torch.Tensor]  # per flow [b, t, n_mel]; valid frames first
    gate: torch.Tensor | None  # [b, t] logits of the last flow; target 1 on its last valid frame
    attns: list[torch.Tensor]  # per flow [b, t, t_text], time order
    mean: torch.Tensor | None  # mixture prior: [b or 1, n_mel, k]
    log_var: torch.Tensor | None
    prob: torch.Tensor | None  # [b, k]


class FlowtronInference(NamedTuple):
    mel: torch.Tensor  # [b, n_mel, frames], zero past each row's length
    lengths: torch.Tensor  # [b]
    attns: list[torch.Tensor]  # per flow in inference order (last flow first) [b, frames, t_text], time order
    hit_limit: torch.Tensor  # [b] bool: the gate never fired within the frames given


class Flowtron(nn.Module):
    def __init__(self, config: FlowtronConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.speaker_embedding = nn.Embedding(c.n_speakers, c.n_speaker_dim)
        self.embedding = nn.Embedding(c.n_text, c.n_text_dim)
        self.encoder = _text_encoder(c)
        if c.n_components > 1:
            self.mel_encoder = MelEncoder(c.n_mel_channels, c.mel_encoder_n_hidden)
            self.gaussian_mixture = GaussianMixture(c.mel_encoder_n_hidden, c.n_components, c.n_mel_channels,
                                                    c.fixed_gaussian, c.mean_scale)
        self.flows = nn.ModuleList()
        for i in range(c.n_flows):
            add_gate = c.use_gate_layer and i == c.n_flows - 1
            self.flows.append(AR_Step(c, add_gate) if i % 2 == 0 else AR_Back_Step(c, add_gate))

    @property
    def n_speakers(self) -> int:
        return self.config.n_speakers

    @property
    def n_mel_channels(self) -> int:
        return self.config.n_mel_channels

    def memory(
        self, text: torch.Tensor, text_lengths: torch.Tensor | None, speaker: torch.Tensor | None
    ) -> torch.Tensor:
        """Encoded text with the speaker vector appended to every token: ``[b, t_text, n_text+n_spk]``
        (``text_lengths`` None: unpadded)."""
        if speaker is None or self.config.dummy_speaker_embedding:
            speaker = torch.zeros(text.size(0), dtype=torch.long, device=text.device)
        if int(speaker.max()) >= self.config.n_speakers or int(speaker.min()) < 0:
            raise ValueError(f"speaker id out of range: this model has {self.config.n_speakers} speaker(s)")
        encoded = encode_text(self.encoder, self.embedding(text).transpose(1, 2), text_lengths, self.config.p_dropout)
        spk = self.speaker_embedding(speaker).unsqueeze(1).expand(-1, encoded.size(1), -1)
        return torch.cat([encoded, spk], dim=2)

    def mixture(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mixture prior's mean, log_var ``[b or 1, n_mel, k]`` and weights ``[b, k]`` for ``mel``."""
        if not hasattr(self, "gaussian_mixture"):
            raise ValueError("this Flowtron has a plain Gaussian prior (n_components = 0): no mixture components")
        return self.gaussian_mixture(self.mel_encoder(mel, lengths))

    def forward(
        self,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        speaker: torch.Tensor | None = None,
        attn_prior: torch.Tensor | None = None,
        n_flows: int | None = None,
    ) -> FlowtronOutput:
        """mel ``[b, n_mel, t]`` → z. ``attn_prior`` ``[b, t, t_text]`` (e.g. :func:`beta_binomial_prior`).
        ``n_flows`` runs only the first flows (the training curriculum; no gate unless the last runs)."""
        memory = self.memory(text, text_lengths, speaker)
        text_mask = sequence_mask(text_lengths, text.size(1))
        mean = log_var = prob = None
        if hasattr(self, "gaussian_mixture"):
            mean, log_var, prob = self.mixture(mel, mel_lengths)
        frame_mask = sequence_mask(mel_lengths, mel.size(2)).unsqueeze(2).to(mel.dtype)
        x = mel.transpose(1, 2) * frame_mask
        log_s_list, attns, gate = [], [], None
        for flow in self.flows[: len(self.flows) if n_flows is None else n_flows]:
            if isinstance(flow, AR_Back_Step):
                out = flow(x, memory, text_mask, mel_lengths, attn_prior)
            else:
                out = flow(x, memory, text_mask, attn_prior)
            x = out.z * frame_mask
            log_s_list.append(out.log_s)
            attns.append(out.attn)
            gate = out.gate
        return FlowtronOutput(x.transpose(1, 2), log_s_list, gate, attns, mean, log_var, prob)

    @torch.no_grad()
    def infer(
        self,
        z: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        speaker: torch.Tensor | None = None,
        *,
        lengths: torch.Tensor | None = None,
        gate_threshold: float | None = None,
        temperature: float = 1.0,
    ) -> FlowtronInference:
        """z ``[b, n_mel, n]`` → mel. Without ``lengths`` the last flow's gate decides each row's
        length (at most ``n`` frames; ``hit_limit`` marks rows that reached ``n``). With
        ``lengths`` every row is exactly that long and no gate is used: then
        ``infer(forward(mel).z, lengths=mel_lengths)`` gives back ``mel``.

        With the gate and an even number of flows, the last flow runs backwards in time, so a
        row that stops after ``L`` frames inverts the *last* ``L`` frames of its z."""
        memory = self.memory(text, text_lengths, speaker)
        text_mask = sequence_mask(text_lengths, text.size(1))
        threshold = self.config.gate_threshold if gate_threshold is None else gate_threshold
        use_gate = lengths is None and self.config.use_gate_layer
        n = z.size(2)
        current = torch.full((z.size(0),), n, dtype=torch.long, device=z.device) if lengths is None else lengths
        x = z.transpose(1, 2)
        attns = []
        hit_limit = torch.zeros(z.size(0), dtype=torch.bool, device=z.device)
        for i, flow in enumerate(reversed(self.flows)):
            gated = use_gate and i == 0
            if isinstance(flow, AR_Back_Step):
                x, attn, out_lengths = flow.infer(x, memory, text_mask, current, gated, threshold, temperature)
            else:
                x, attn, out_lengths = flow.infer(x, memory, text_mask, gated, threshold, temperature)
            if gated:
                hit_limit = out_lengths >= n
                current = out_lengths
                width = int(current.max())
                x, attn = x[:, :width], attn[:, :width]
            x = x * sequence_mask(current, x.size(1)).unsqueeze(2).to(x.dtype)
            attns.append(attn)
        return FlowtronInference(x.transpose(1, 2), current, attns, hit_limit)


# --- losses and the attention prior -------------------------------------------------------------------


def gate_target(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """1 from each row's last valid frame on, 0 before (the reference's target) ``[b, frames]``."""
    positions = torch.arange(frames, device=lengths.device).unsqueeze(0)
    return (positions >= (lengths - 1).unsqueeze(1)).float()


def _log_beta(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)


def beta_binomial_prior(text_lengths: torch.Tensor, mel_lengths: torch.Tensor, scaling: float = 1.0,
                        t_text: int | None = None, t_mel: int | None = None) -> torch.Tensor:
    """The diagonal attention prior of the reference's data loader: for mel frame ``i`` of ``M``
    (1-based), a beta-binomial over the ``P`` tokens with ``a = scaling*i``, ``b = scaling*(M+1-i)``.
    ``[b, t_mel, t_text]``, zero outside each row's lengths."""
    t_text = int(text_lengths.max()) if t_text is None else t_text
    t_mel = int(mel_lengths.max()) if t_mel is None else t_mel
    prior = torch.zeros(text_lengths.size(0), t_mel, t_text)
    for row, (p, m) in enumerate(zip(text_lengths.tolist(), mel_lengths.tolist())):
        k = torch.arange(p, dtype=torch.float64).unsqueeze(0)  # tokens 0..p-1 = successes of p-1 trials
        i = torch.arange(1, m + 1, dtype=torch.float64).unsqueeze(1)
        a, b = scaling * i, scaling * (m + 1 - i)
        n = p - 1
        log_choose = math.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
        log_pmf = log_choose + _log_beta(k + a, n - k + b) - _log_beta(a, b)
        prior[row, :m, :p] = torch.exp(log_pmf).float()
    return prior.to(text_lengths.device)


def flowtron_loss(
    output: FlowtronOutput, mel_lengths: torch.Tensor, sigma: float = 1.0, use_gate: bool = True,
    gate_pos_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Negative log-likelihood per mel element (the constant ``log(2 pi)/2`` left out, as the
    reference) minus the flows' log-determinants, plus the stop-gate cross-entropy per frame.
    ``gate_pos_weight`` weighs the one positive (last) frame per row against the many negatives, as
    Tacotron2's gate loss does (1: the reference's unweighted loss).
    Returns ``total``, ``nll``, ``log_det`` and ``gate`` (0 without a gate)."""
    z = output.z.float()
    frames = z.size(2)
    mask = sequence_mask(mel_lengths, frames).float()  # [b, t]
    n_elements = mask.sum() * z.size(1)
    log_det = sum((log_s.float() * mask.unsqueeze(2)).sum() for log_s in output.log_s_list)
    if output.mean is not None:
        mean, log_var, prob = output.mean.float(), output.log_var.float(), output.prob.float()
        diff = z.unsqueeze(3) - mean.unsqueeze(2)  # [b, n_mel, t, k]
        log_n = -0.5 * diff**2 / torch.exp(log_var.unsqueeze(2)) - 0.5 * log_var.unsqueeze(2)
        log_p = torch.logsumexp(log_n + torch.log(prob)[:, None, None, :], dim=3)  # [b, n_mel, t]
        nll = -(log_p * mask.unsqueeze(1)).sum()
    else:
        nll = ((z * mask.unsqueeze(1)) ** 2).sum() / (2 * sigma * sigma) + n_elements * math.log(sigma)
    nll = (nll - log_det) / n_elements
    gate = torch.zeros((), device=z.device)
    if use_gate and output.gate is not None:
        target = gate_target(mel_lengths, frames)
        pos_weight = torch.tensor(gate_pos_weight, device=z.device)
        bce = F.binary_cross_entropy_with_logits(output.gate.float(), target, reduction="none", pos_weight=pos_weight)
        gate = (bce * mask).sum() / mask.sum()
    return {"total": nll + gate, "nll": nll, "log_det": log_det / n_elements, "gate": gate}


class FlowtronLoss(nn.Module):
    """:func:`flowtron_loss` as a module (the reference's ``FlowtronLoss(sigma, gm_loss, gate_loss)``;
    the mixture branch is taken when the output carries a mixture prior)."""

    def __init__(self, sigma: float = 1.0, gate_loss: bool = True) -> None:
        super().__init__()
        self.sigma = sigma
        self.gate_loss = gate_loss

    def forward(self, output: FlowtronOutput, mel_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        return flowtron_loss(output, mel_lengths, self.sigma, self.gate_loss)


# --- inference adapter (the acoustic interface) ----------------------------------------------------

# The style controls (FlowtronStyle), the styled prior (flowtron_prior, segment_means, spread_segments) and
# the ONNX loop (FlowtronOnnx) are NumPy (moksori.models.onnx_runners), so an exported voice runs without torch.


class FlowtronAcoustic(FlowtronOnnx, AcousticModel):
    """Text ids → mel for an eval-mode Flowtron. ``noise_scale`` is Flowtron's sigma (the
    standard deviation of the sampled z); ``style`` is read as :class:`FlowtronStyle`. The
    last flow's gate ends each sentence, at most ``max_decoder_steps`` frames; every row's
    alignment (the first flow's attention, in time order) is checked and reported.

    ONNX: ``acoustic.onnx`` encodes the text into every flow's attention keys and values, and
    ``acoustic.flow<i>.onnx`` is one frame of flow ``i``'s inverse; the frame loop is
    :class:`~moksori.models.onnx_runners.FlowtronOnnx`'s, torch-free; ``acoustic.encode.onnx`` runs
    the flows forward on a style reference (``ref_mel``, ``ref_mel_b``), so every style control
    works through ONNX Runtime too.

    Streaming within a sentence: none (``stream`` is the interface's default, one piece): the
    flows alternate the frame order, so the first output frame comes from the last flow's last
    step and depends on every frame; the synthesizer streams Flowtron sentence by sentence, with a
    failed alignment retried as in ``synthesize``."""

    def __init__(self, model: Flowtron):
        super().__init__(model)
        self.config: FlowtronConfig = model.config

    @property
    def max_symbols(self) -> int:
        return attention_max_symbols(self.config.max_decoder_steps)

    def _speaker(self, controls: Controls, rows: int) -> torch.Tensor | None:
        if self.model.n_speakers <= 1:
            return None
        return torch.full((rows,), int(controls.speaker_id or 0), dtype=torch.long)

    @torch.no_grad()
    def reference_z(
        self, mel: torch.Tensor, ids: torch.Tensor, speaker: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z ``[n_mel, frames]`` of a reference mel ``[n_mel, frames]`` read with text ``ids``
        ``[tokens]``, and its mixture weights ``[k]`` (None for a Gaussian prior)."""
        out = self.model(mel.unsqueeze(0), torch.tensor([mel.size(1)]), ids.unsqueeze(0),
                         torch.tensor([ids.numel()]), None if speaker is None else speaker[:1])
        return out.z[0], None if out.prob is None else out.prob[0]

    def _prior(
        self, style: FlowtronStyle, row_ids: torch.Tensor, speaker: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per row: the prior's own mean and std ``[n_mel, 1]`` and the style mean ``[n_mel, k]``
        (k segments; equal to the prior's mean when no style is given): :func:`flowtron_prior`
        of the references' z."""
        ref_mel = _tensor(style.ref_mel)
        z_ref = prob = mixture = z_ref_b = None
        if ref_mel is not None:
            ref_ids = row_ids if style.ref_ids is None else _tensor(style.ref_ids)
            z, weights = self.reference_z(ref_mel, ref_ids, speaker)
            z_ref, prob = z.float().numpy(), None if weights is None else weights.float().numpy()
        if self.config.n_components > 1:
            if self.config.fixed_gaussian:
                mean, log_var = self.model.gaussian_mixture.mean[0], self.model.gaussian_mixture.log_var[0]
            elif ref_mel is not None:
                embedding = self.model.mel_encoder(ref_mel.unsqueeze(0), torch.tensor([ref_mel.size(1)]))
                mean, log_var, _ = self.model.gaussian_mixture(embedding)
                mean, log_var = mean[0], log_var[0]
            else:
                raise ValueError("this Flowtron predicts its mixture from a reference mel: give style ref_mel")
            mixture = {"mean": mean.detach().float().cpu().numpy(), "log_var": log_var.detach().float().cpu().numpy()}
        if style.ref_mel_b is not None:
            ids_b = row_ids if style.ref_ids_b is None else _tensor(style.ref_ids_b)
            z_ref_b = self.reference_z(_tensor(style.ref_mel_b), ids_b, speaker)[0].float().numpy()
        prior = flowtron_prior(style, self.config.n_mel_channels, mixture, z_ref, prob, z_ref_b)
        return tuple(torch.from_numpy(part) for part in prior)

    def infer(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource
    ) -> AcousticOutput:
        c = self.config
        style = FlowtronStyle.from_controls(controls.style, c.n_mel_channels, c.n_components)
        sigma = float(controls.noise_scale)
        speaker = self._speaker(controls, ids.size(0))
        n = c.max_decoder_steps
        # The prior depends on a row's text only when a reference is read against the row's own text.
        per_row = (style.ref_mel is not None and style.ref_ids is None) or (
            style.ref_mel_b is not None and style.ref_ids_b is None)
        priors: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        rows = []
        for row in range(ids.size(0)):
            row_ids = ids[row, : lengths[row]]
            key = tuple(row_ids.tolist()) if per_row else ()
            if key not in priors:
                priors[key] = self._prior(style, row_ids, speaker)
            _, std0, styled = priors[key]
            eps = torch.from_numpy(noise(row, n, c.n_mel_channels))
            rows.append((std0, styled, eps))
        # Segment means need the sentence's length: a first pass with the segments' average finds it.
        z = torch.stack([styled.mean(dim=1, keepdim=True) + sigma * std0 * eps for std0, styled, eps in rows])
        out = self.model.infer(z, ids, lengths, speaker)
        if style.segments > 1 and style.ref_mel is not None:
            frames = out.lengths
            z = torch.zeros(ids.size(0), c.n_mel_channels, int(frames.max()))
            for row, (std0, styled, eps) in enumerate(rows):
                m = int(frames[row])
                z[row, :, :m] = torch.from_numpy(spread_segments(styled.numpy(), m)) + sigma * std0 * eps[:, :m]
            out = self.model.infer(z, ids, lengths, speaker, lengths=frames)
            out = out._replace(hit_limit=torch.as_tensor(frames >= n))
        alignment = out.attns[-1].transpose(1, 2)  # the first flow's, [b, tokens, frames]
        reports = tuple(
            check_alignment(alignment[row], int(lengths[row]), bool(out.hit_limit[row]),
                            n_frames=max(int(out.lengths[row]), 1))
            for row in range(ids.size(0))
        )
        return AcousticOutput(out.mel, out.lengths, alignment, reports)

    # --- ONNX: the text encoder with every flow's keys/values, one frame of each flow ----------
    def forward(self, ids: torch.Tensor, sid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        memory = self.model.memory(ids, None, sid)
        steps = [_ar_step(flow) for flow in self.model.flows]
        pairs = [step.attention_layer.memory(memory) for step in steps]
        if self.config.use_cumm_attention:  # the keys change every frame: the frame graphs take the memory
            return torch.stack([memory] * len(steps)), torch.stack([v for _, v in pairs])
        return torch.stack([k for k, _ in pairs]), torch.stack([v for _, v in pairs])

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        """``input`` int64 [1, T] (and ``sid`` int64 [1] with several speakers) → ``keys``,
        ``values`` [n_flows, 1, T, n_attn_channels] (with cumulative attention ``keys`` holds the
        memory, [n_flows, 1, T, n_text_dim + n_speaker_dim], from which each frame computes them)."""
        args: tuple[torch.Tensor, ...] = (torch.ones(1, 12, dtype=torch.long),)
        names = ["input"]
        if self.model.n_speakers > 1:
            args += (torch.zeros(1, dtype=torch.long),)
            names.append("sid")
        axes = {"input": {1: "tokens"}, "keys": {2: "tokens"}, "values": {2: "tokens"}}
        return OnnxGraph(args, names, ["keys", "values"], axes)

    def onnx_graphs(self, n_mels: int) -> dict[str, tuple[nn.Module, OnnxGraph]]:
        """The text encoder (``""``), one frame of each flow (``flow<i>``) and the reference
        encoder (``encode``: ``input`` [1, T] (+ ``sid``) and ``mel`` [1, c, frames] → ``z``
        [1, c, frames], with a mixture prior also ``mean``, ``log_var`` [1, c, k] and ``prob`` [1, k])."""
        c, tokens = self.config, 12
        graphs: dict[str, tuple[nn.Module, OnnxGraph]] = {"": (self, self.onnx_graph(n_mels))}
        for i, flow in enumerate(self.model.flows):
            frame = _OnnxFlowFrame(_ar_step(flow))
            key_width = c.n_text_dim + c.n_speaker_dim if c.use_cumm_attention else c.n_attn_channels
            args = (torch.zeros(1, 1, c.n_mel_channels), torch.zeros(1, 1, c.n_mel_channels),
                    torch.zeros(1, 1, c.n_hidden), torch.zeros(1, 1, c.n_hidden),
                    torch.zeros(c.n_lstm_layers, 1, c.n_hidden), torch.zeros(c.n_lstm_layers, 1, c.n_hidden),
                    torch.zeros(1, tokens, key_width), torch.zeros(1, tokens, c.n_attn_channels))
            state = FLOWTRON_FRAME_STATE
            axes = {"keys": {1: "tokens"}, "values": {1: "tokens"}, "attn": {2: "tokens"}}
            location: tuple[str, ...] = ()
            if c.use_cumm_attention:
                location = FLOWTRON_LOCATION_STATE
                args += (torch.zeros(1, tokens), torch.zeros(1, tokens))
                axes.update({name: {1: "tokens"} for name in location})
                axes.update({f"out_{name}": {1: "tokens"} for name in location})
            outputs = ["x", "attn", *(["gate"] if frame.step.has_gate else []), *(f"out_{n}" for n in state + location)]
            inputs = ["frame", "z", *state, "keys", "values", *location]
            graphs[f"flow{i}"] = (frame, OnnxGraph(args, inputs, outputs, axes))
        if not c.use_cumm_attention:
            # With cumulative attention the forward pass is a frame loop, which a traced graph would
            # fix at the example's length: such exports have no reference encoder.
            graphs["encode"] = (_OnnxReferenceEncoder(self.model), self._encode_graph(tokens))
        return graphs

    def _encode_graph(self, tokens: int) -> OnnxGraph:
        c = self.config
        args: tuple[torch.Tensor, ...] = (torch.ones(1, tokens, dtype=torch.long), torch.zeros(1, c.n_mel_channels, 20))
        names = ["input", "mel"]
        if self.model.n_speakers > 1:
            args += (torch.zeros(1, dtype=torch.long),)
            names.append("sid")
        mixture = ["mean", "log_var", "prob"] if hasattr(self.model, "gaussian_mixture") else []
        axes = {"input": {1: "tokens"}, "mel": {2: "frames"}, "z": {2: "frames"}}
        return OnnxGraph(args, names, ["z", *mixture], axes)

    def onnx_metadata(self) -> dict[str, str]:
        c = self.config
        facts: dict[str, Any] = {
            "n_flows": c.n_flows, "n_speakers": c.n_speakers, "n_mel_channels": c.n_mel_channels, "n_hidden": c.n_hidden,
            "n_lstm_layers": c.n_lstm_layers, "max_decoder_steps": c.max_decoder_steps,
            "gate_threshold": c.gate_threshold, "use_gate_layer": int(c.use_gate_layer), "n_components": 0,
            "reference_encoder": int(not c.use_cumm_attention),
        }
        if c.n_components > 1 and c.fixed_gaussian:
            mixture = self.model.gaussian_mixture
            facts.update(n_components=c.n_components, mixture_mean=mixture.mean[0].tolist(),
                         mixture_log_var=mixture.log_var[0].tolist())
        return flowtron_metadata(facts)

    def teacher_forced_mel(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(
            "Flowtron maps a real mel to z and back exactly, so it has no teacher-forced mel of its own: "
            "fine-tune the vocoder on the real mels (leave vocoder_finetune_from out)"
        )


def _tensor(array: np.ndarray | None) -> torch.Tensor | None:
    """A style array (NumPy, as :class:`FlowtronStyle` holds it) as a tensor sharing its memory."""
    return None if array is None else torch.from_numpy(array)


def _ar_step(flow: nn.Module) -> AR_Step:
    return flow.ar_step if isinstance(flow, AR_Back_Step) else flow


class _OnnxFlowFrame(nn.Module):
    """One frame of :meth:`AR_Step.infer` for export: the previous output frame and this
    frame's z → this frame's x, its attention (the gate logit on the gated flow), new LSTM states
    (and with cumulative attention, whose ``keys`` input is the memory, the new location state)."""

    def __init__(self, step: AR_Step):
        super().__init__()
        self.step = step

    def forward(self, frame: torch.Tensor, z: torch.Tensor, attention_h: torch.Tensor, attention_c: torch.Tensor,
                lstm_h: torch.Tensor, lstm_c: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                attn_cumulative: torch.Tensor | None = None,
                attn_previous: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        step = self.step
        attention_hidden, (attention_h, attention_c) = step.attention_lstm(frame, (attention_h, attention_c))
        text_mask = torch.ones_like(values[..., 0], dtype=torch.bool)
        location = None if attn_cumulative is None else (attn_cumulative, attn_previous)
        context, attn, location = step.attend(attention_hidden, keys, keys, values, text_mask, location=location)
        decoder_input = torch.cat([attention_hidden, context], dim=-1)
        lstm_hidden, (lstm_h, lstm_c) = step.lstm(decoder_input, (lstm_h, lstm_c))
        log_s, b = step._affine(lstm_hidden)
        x = (z - b) * torch.exp(-log_s)
        gate = (step.gate_layer(decoder_input).reshape(1),) if step.has_gate else ()
        return (x, attn, *gate, attention_h, attention_c, lstm_h, lstm_c, *(location or ()))


class _OnnxReferenceEncoder(nn.Module):
    """:meth:`Flowtron.forward` for export, one unpadded reference: text ``input`` (+ ``sid``) and
    ``mel`` → z by the flows run forward (and the mixture prior's components and weights of the mel)."""

    def __init__(self, model: Flowtron):
        super().__init__()
        self.model = model

    def forward(
        self, ids: torch.Tensor, mel: torch.Tensor, sid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        memory = self.model.memory(ids, None, sid)
        text_mask = torch.ones_like(ids, dtype=torch.bool)
        x = mel.transpose(1, 2)
        for flow in self.model.flows:
            backward = isinstance(flow, AR_Back_Step)  # over all frames, reverse_frames is a flip
            z = _ar_step(flow)(x.flip(1) if backward else x, memory, text_mask).z
            x = z.flip(1) if backward else z
        if not hasattr(self.model, "gaussian_mixture"):
            return (x.transpose(1, 2),)
        mean, log_var, prob = self.model.gaussian_mixture(self.model.mel_encoder(mel, None))
        return x.transpose(1, 2), mean, log_var, prob


# --- NVIDIA checkpoints ------------------------------------------------------------------------------

# The classes NVIDIA's training script pickles inside ``{"model": <flowtron.Flowtron>}``.
NVIDIA_CLASSES = tuple(
    f"flowtron.{name}" for name in (
        "Flowtron", "AR_Step", "AR_Back_Step", "Attention", "LinearNorm", "ConvNorm", "DenseLayer", "Encoder",
        "MelEncoder", "GaussianMixture", "MaskedInstanceNorm1d", "AttentionConditioningLayer",
    )
)


def config_from_reference_state_dict(state: Mapping[str, torch.Tensor], **overrides: Any) -> FlowtronConfig:
    """The :class:`FlowtronConfig` whose shapes fit an NVIDIA Flowtron state dict (the sizes come
    from the tensors; ``dummy_speaker_embedding`` and ``mean_scale`` are not in the weights)."""
    for key in ("embedding.weight", "speaker_embedding.weight", "flows.0.conv.weight"):
        if key not in state:
            raise ValueError(f"not a Flowtron state dict: no {key}")
    n_flows = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("flows."))
    first = "flows.0."
    n_text, n_text_dim = state["embedding.weight"].shape
    n_speakers, n_speaker_dim = state["speaker_embedding.weight"].shape
    two_mel, n_hidden, _ = state[first + "conv.weight"].shape
    n_attn = state[first + "attention_layer.key.linear_layer.weight"].shape[0]
    n_lstm = sum(1 for key in state if key.startswith(first + "lstm.weight_ih_l"))
    last = f"flows.{n_flows - 1}." + ("ar_step." if n_flows % 2 == 0 else "")
    n_convs = sum(1 for key in state if key.startswith("encoder.convolutions.") and key.endswith(".0.conv.weight"))
    values: dict[str, Any] = dict(
        n_speakers=n_speakers, n_speaker_dim=n_speaker_dim, n_text=n_text, n_text_dim=n_text_dim, n_flows=n_flows,
        n_mel_channels=two_mel // 2, n_hidden=n_hidden, n_attn_channels=n_attn, n_lstm_layers=n_lstm,
        use_gate_layer=last + "gate_layer.linear_layer.weight" in state,
        use_cumm_attention=any(".attn_cond_layer." in key for key in state),
        encoder_n_convolutions=n_convs, encoder_kernel_size=state["encoder.convolutions.0.0.conv.weight"].shape[2],
    )
    if "gaussian_mixture.prob_layer.linear_layer.weight" in state:
        n_components, hidden = state["gaussian_mixture.prob_layer.linear_layer.weight"].shape
        values.update(n_components=n_components, mel_encoder_n_hidden=hidden,
                      fixed_gaussian="gaussian_mixture.mean" in state)
    values.update(overrides)
    return FlowtronConfig(**values)


def load_reference_state_dict(model: Flowtron, state: Mapping[str, torch.Tensor]) -> None:
    """Load an NVIDIA Flowtron state dict (``module.`` prefixes removed) into ``model``; names and
    shapes must match exactly (BatchNorm-free: Flowtron's norms have no running statistics)."""
    target = model.state_dict()
    problems = [f"missing: {key}" for key in sorted(set(target) - set(state))]
    problems += [f"unexpected: {key}" for key in sorted(set(state) - set(target))]
    problems += [f"{key}: {tuple(state[key].shape)} in the checkpoint, {tuple(value.shape)} here"
                 for key, value in target.items() if key in state and state[key].shape != value.shape]
    if problems:
        raise ValueError("the checkpoint does not fit this Flowtron:\n  " + "\n  ".join(problems[:20]))
    model.load_state_dict({key: state[key].to(value.dtype) for key, value in target.items()})


def import_reference(path: str | Path) -> tuple[FlowtronConfig, dict[str, torch.Tensor]]:
    """Config and state dict (float32) of an NVIDIA Flowtron checkpoint: a published
    ``{"state_dict": ...}`` file, or a training checkpoint that pickles the whole model
    (``{"model": <flowtron.Flowtron>, "iteration": ...}``), read without running its code."""
    from moksori.checkpoint import CheckpointError, read_pickled_module, strip_module_prefix, torch_load

    try:
        raw = torch_load(path)
    except Exception as plain_error:  # not loadable as plain tensors: a pickled model object?
        try:
            state = read_pickled_module(path, NVIDIA_CLASSES)
        except CheckpointError as pickled_error:
            raise CheckpointError(f"{path}: not an NVIDIA Flowtron checkpoint ({pickled_error}; as a state dict: "
                                  f"{plain_error})") from None
    else:
        if not isinstance(raw, Mapping):
            raise CheckpointError(f"{path}: expected a dict with a 'state_dict', got a {type(raw).__name__}")
        inner = raw.get("state_dict", raw.get("model", raw))
        if not isinstance(inner, Mapping):
            raise CheckpointError(f"{path}: expected a state dict under 'state_dict' or 'model'")
        state = strip_module_prefix(inner)
    state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()}
    try:
        config = config_from_reference_state_dict(state)
        model = Flowtron(config)
        load_reference_state_dict(model, state)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from error
    return config, model.state_dict()


__all__ = [
    "AR_Back_Step",
    "AR_Step",
    "Attention",
    "DenseLayer",
    "Flowtron",
    "FlowtronAcoustic",
    "FlowtronConfig",
    "FlowtronInference",
    "FlowtronLoss",
    "FlowtronOutput",
    "FlowtronStyle",
    "GaussianMixture",
    "LinearNorm",
    "MaskedInstanceNorm1d",
    "MelEncoder",
    "NVIDIA_CLASSES",
    "config_from_reference_state_dict",
    "import_reference",
    "load_reference_state_dict",
    "PRESETS",
    "beta_binomial_prior",
    "encode_text",
    "flowtron_loss",
    "gate_target",
    "reverse_frames",
    "segment_means",
    "spread_segments",
]

"""Mel-conditioned WaveNet vocoder (van den Oord et al., 2016; as the vocoder of Tacotron 2,
Shen et al., 2018), with fast incremental generation (Paine et al., 2016, "Fast Wavenet").

* An upsampling network (``upsample_net``: a convolution over frames, ``conv_in``, then for each
  scale a nearest-neighbour stretch and a smoothing convolution, ``up_layers``) turns mel frames
  into one conditioning vector per sample; the product of ``upsample_scales`` is the hop.
* ``layers`` residual blocks (``conv_layers``) in ``stacks`` dilation cycles (dilation
  ``2 ** (layer % layers_per_stack)``): a dilated causal convolution, local conditioning by a
  1×1 convolution of the upsampled mel (``conv1x1c``), the gated activation tanh·sigmoid, and
  1×1 convolutions to the residual path (``conv1x1_out``) and to the skip path (``conv1x1_skip``).
* The summed skips go through ReLU → 1×1 → ReLU → 1×1 (``last_conv_layers``) to the output
  distribution of the next sample: a discretised mixture of logistics over 16-bit audio
  (``output_distribution: "mol"``, PixelCNN++'s likelihood) or an 8-bit μ-law softmax
  (``"mulaw"``, the input then one-hot μ-law classes).

Module and config names follow r9y9/wavenet_vocoder, the implementation most Tacotron2-WaveNet
projects use (``num_mels`` is its ``cin_channels``); the code is written here.

Time convention: the network's input at sample ``t`` is sample ``t - 1`` (zero before the
start) and its output at ``t`` is the distribution of sample ``t``, conditioned on the upsampled
mel at ``t``. Training is teacher-forced on audio segments (:meth:`WaveNet.loss`).

Generation (:class:`IncrementalState`): each layer keeps a queue of its last
``(kernel_size - 1) * dilation + 1`` inputs, so a new sample costs one step of each layer
instead of a pass over the receptive field. Its outputs equal the full (teacher-forced)
convolution's for the same inputs (tests/models/test_wavenet.py checks this in float64). On a
CPU the step runs in NumPy (:class:`NumpyIncrementalState`: same arithmetic, less overhead per
call); on a GPU in PyTorch. :func:`naive_generate` recomputes the receptive field for every
sample: the benchmark's baseline (benchmarks/wavenet_incremental.py).

ONNX: :class:`WaveNetStep` is one incremental step as a graph (the queues are inputs and
outputs, shifted by one sample per step); the loop and the sampling stay in Python. The whole
vocoder (``mel → wave``) has no single graph: the adapter is PyTorch-only in a voice bundle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moksori.checkpoint import CheckpointError
from moksori.models.interfaces import Controls, OnnxGraph, Vocoder

MOL = "mol"
MULAW = "mulaw"
# r9y9/wavenet_vocoder's hparams: scales below e^-32 add nothing at 16 bits.
LOG_SCALE_MIN = float(math.log(1e-14))


@dataclass
class WaveNetConfig:
    num_mels: int = 80  # r9y9: cin_channels
    layers: int = 30
    stacks: int = 3
    residual_channels: int = 128
    gate_channels: int = 256
    skip_out_channels: int = 128
    kernel_size: int = 3
    dropout: float = 0.0
    output_distribution: str = MOL  # "mol" (r9y9 input_type "raw") or "mulaw" ("mulaw-quantize")
    num_mixtures: int = 10
    # MoL: the bins of the discretised likelihood (65,536: 16-bit audio); μ-law: the classes.
    quantize_channels: int = 65536
    log_scale_min: float = LOG_SCALE_MIN
    upsample_scales: list[int] = field(default_factory=lambda: [16, 16])
    cin_pad: int = 2  # frames either side seen by upsample_net.conv_in
    # Audio framing (HiFi-GAN's names, so one bundle check serves every vocoder).
    sampling_rate: int = 22050
    hop_size: int = 256
    # Training.
    segment_size: int = 8192
    learning_rate: float = 1e-3
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    lr_decay_steps: int = 200000
    lr_decay_gamma: float = 0.5

    def __post_init__(self) -> None:
        self.upsample_scales = [int(s) for s in self.upsample_scales]
        self.validate()

    def validate(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"WaveNetConfig.{name}: {why}")

        for name in ("num_mels", "layers", "stacks", "residual_channels", "skip_out_channels", "kernel_size"):
            if int(getattr(self, name)) < 1:
                fail(name, f"must be positive, got {getattr(self, name)}")
        if self.layers % self.stacks:
            fail("layers", f"{self.layers} must be a multiple of stacks {self.stacks}")
        if self.gate_channels < 2 or self.gate_channels % 2:
            fail("gate_channels", f"must be even (split into tanh and sigmoid halves), got {self.gate_channels}")
        if self.output_distribution not in (MOL, MULAW):
            fail("output_distribution", f"must be {MOL!r} or {MULAW!r}, got {self.output_distribution!r}")
        if self.output_distribution == MOL and self.num_mixtures < 1:
            fail("num_mixtures", f"must be positive, got {self.num_mixtures}")
        if self.quantize_channels < 2:
            fail("quantize_channels", f"must be at least 2, got {self.quantize_channels}")
        if not self.upsample_scales or any(s < 1 for s in self.upsample_scales):
            fail("upsample_scales", f"must be positive integers, got {self.upsample_scales}")
        if math.prod(self.upsample_scales) != self.hop_size:
            fail("upsample_scales", f"product {self.upsample_scales} = {math.prod(self.upsample_scales)} "
                 f"must equal hop_size {self.hop_size}")
        if self.cin_pad < 0:
            fail("cin_pad", f"must be >= 0, got {self.cin_pad}")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.segment_size % self.hop_size:
            fail("segment_size", f"{self.segment_size} must be a multiple of hop_size {self.hop_size}")

    @property
    def out_channels(self) -> int:
        return 3 * self.num_mixtures if self.output_distribution == MOL else self.quantize_channels

    @property
    def receptive_field(self) -> int:
        return receptive_field_size(self.layers, self.stacks, self.kernel_size)

    @classmethod
    def preset(cls, name: str) -> "WaveNetConfig":
        """"base": Tacotron 2's WaveNet (Shen et al. 2018, §2.3: 30 layers in 3 dilation cycles,
        10 logistic mixtures, 2 upsampling layers) with r9y9/wavenet_vocoder's channel widths
        (128 residual, 256 gate, 128 skip; the paper gives none); a GPU model (receptive field
        6,139 samples, 0.28 s). "small": 16 layers in 2 cycles, 64/128/64 channels, for CPUs.
        "tiny": tests."""
        presets: dict[str, dict[str, Any]] = {
            "base": {},
            "small": {"layers": 16, "stacks": 2, "residual_channels": 64, "gate_channels": 128,
                      "skip_out_channels": 64, "upsample_scales": [4, 4, 4, 4], "segment_size": 8192},
            "tiny": {"layers": 4, "stacks": 2, "residual_channels": 8, "gate_channels": 16,
                     "skip_out_channels": 8, "num_mixtures": 2, "upsample_scales": [4, 4, 4, 4],
                     "segment_size": 1024, "learning_rate": 3e-3},
        }
        if name not in presets:
            raise ValueError(f"unknown WaveNet preset {name!r}; choose from {sorted(presets)}")
        return cls(**presets[name])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WaveNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"WaveNetConfig: unknown keys {unknown}")
        return cls(**dict(data))


def receptive_field_size(layers: int, stacks: int, kernel_size: int) -> int:
    """Samples that one output sees: ``(kernel_size - 1) * Σ dilations + 1``."""
    per_stack = layers // stacks
    return (kernel_size - 1) * sum(2 ** (layer % per_stack) for layer in range(layers)) + 1


# --- μ-law ------------------------------------------------------------------------------------


def mulaw(x: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """μ-law companding of audio in [-1, 1]."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def inv_mulaw(y: torch.Tensor, mu: int = 255) -> torch.Tensor:
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def mulaw_quantize(x: torch.Tensor, quantize_channels: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] → μ-law class in ``[0, quantize_channels)`` (long)."""
    mu = quantize_channels - 1
    return torch.round((mulaw(x.clamp(-1.0, 1.0), mu) + 1) / 2 * mu).long()


def inv_mulaw_quantize(classes: torch.Tensor, quantize_channels: int = 256, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    mu = quantize_channels - 1
    return inv_mulaw(2 * classes.to(dtype) / mu - 1, mu)


# --- discretised mixture of logistics ---------------------------------------------------------


def discretized_mix_logistic_loss(
    y: torch.Tensor, target: torch.Tensor, num_classes: int = 65536, log_scale_min: float = LOG_SCALE_MIN,
) -> torch.Tensor:
    """Negative log-likelihood per sample ``[b, t]`` of ``target`` (audio in [-1, 1], ``[b, t]``)
    under the mixture ``y`` ``[b, 3 * n, t]`` (logit weights, means, log scales), discretised
    into ``num_classes`` bins whose edge bins take the tails (PixelCNN++)."""
    n = y.shape[1] // 3
    logit_probs, means, log_scales = y[:, :n], y[:, n : 2 * n], y[:, 2 * n : 3 * n].clamp(min=log_scale_min)
    x = target.unsqueeze(1)
    centered = x - means
    inv_scale = torch.exp(-log_scales)
    half_bin = 1.0 / (num_classes - 1)
    plus_in = inv_scale * (centered + half_bin)
    min_in = inv_scale * (centered - half_bin)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log P(X <= upper edge), for the lowest bin
    log_one_minus_cdf_min = -F.softplus(min_in)  # log P(X > lower edge), for the highest bin
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_scale * centered
    # Where the bin mass underflows, the density at the centre times the bin width.
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in) - math.log((num_classes - 1) / 2)
    inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
    edge = 1.0 - half_bin
    log_probs = torch.where(x < -edge, log_cdf_plus, torch.where(x > edge, log_one_minus_cdf_min, inner))
    return -torch.logsumexp(log_probs + F.log_softmax(logit_probs, dim=1), dim=1)


def sample_from_discretized_mix_logistic(
    y: torch.Tensor, gumbel: torch.Tensor, logistic: torch.Tensor, log_scale_min: float = LOG_SCALE_MIN,
) -> torch.Tensor:
    """One sample per row from the mixture ``y`` ``[b, 3 * n]``: the component by the Gumbel-max
    trick (``gumbel`` ``[b, n]``, standard Gumbel noise), then ``mean + scale · logistic``
    (``logistic`` ``[b]``, standard logistic noise); see :func:`draw_noise`."""
    b, n = y.shape[0], y.shape[1] // 3
    component = (y[:, :n] + gumbel).argmax(dim=1)
    params = y.view(b, 3, n).gather(2, component.view(b, 1, 1).expand(b, 3, 1))  # [b, 3, 1]
    scale = torch.exp(params[:, 2, 0].clamp(min=log_scale_min))
    return torch.addcmul(params[:, 1, 0], scale, logistic).clamp_(-1.0, 1.0)


def sample_from_softmax(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One class per row of ``logits`` ``[b, classes]`` by inverting the CDF at ``u`` ``[b]`` (uniform)."""
    cdf = torch.softmax(logits, dim=1).cumsum(dim=1)
    return (cdf < u.unsqueeze(1)).sum(dim=1).clamp(max=logits.shape[1] - 1)


def draw_noise(config: WaveNetConfig, samples: int, batch: int, generator: torch.Generator | None) -> torch.Tensor:
    """All the randomness of generating ``samples`` for ``batch`` rows, drawn up front (so it does
    not depend on how generation is chunked): ``[samples, batch, width]``. MoL: ``num_mixtures``
    Gumbel values and one logistic value per sample; μ-law: one uniform."""
    width = config.num_mixtures + 1 if config.output_distribution == MOL else 1
    u = torch.rand(samples, batch, width, generator=generator).clamp_(1e-5, 1.0 - 1e-5)
    if config.output_distribution != MOL:
        return u
    gumbel = -torch.log(-torch.log(u[..., :-1]))
    logistic = torch.log(u[..., -1:]) - torch.log1p(-u[..., -1:])
    return torch.cat([gumbel, logistic], dim=-1)


# --- modules ----------------------------------------------------------------------------------


class UpsampleNetwork(nn.Module):
    """Mel ``[b, num_mels, frames]`` → conditioning ``[b, num_mels, frames * hop]``: a convolution
    over frames (``conv_in``), then per scale a nearest-neighbour stretch and a smoothing
    convolution along time shared by all mel channels (``up_layers``, initialised to a box filter).
    r9y9's ConvInUpsampleNetwork, with "same" padding so no padded mel is needed."""

    def __init__(self, upsample_scales: list[int], num_mels: int, cin_pad: int) -> None:
        super().__init__()
        self.scales = list(upsample_scales)
        self.conv_in = nn.Conv1d(num_mels, num_mels, 2 * cin_pad + 1, padding=cin_pad,
                                 padding_mode="replicate", bias=False)
        self.up_layers = nn.ModuleList(
            nn.Conv2d(1, 1, (1, 2 * s + 1), padding=(0, s), bias=False) for s in self.scales
        )
        for s, conv in zip(self.scales, self.up_layers):
            nn.init.constant_(conv.weight, 1.0 / (2 * s + 1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        c = self.conv_in(mel).unsqueeze(1)  # [b, 1, mels, frames]
        for s, conv in zip(self.scales, self.up_layers):
            b, _, m, t = c.shape
            c = conv(c.unsqueeze(-1).expand(b, 1, m, t, s).reshape(b, 1, m, t * s))
        return c.squeeze(1)


class ResidualConv1dGLU(nn.Module):
    """Dilated causal convolution + local conditioning → tanh·sigmoid gate → residual and skip."""

    def __init__(self, residual_channels: int, gate_channels: int, kernel_size: int, skip_out_channels: int,
                 cin_channels: int, dilation: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dilation, self.kernel_size, self.dropout = dilation, kernel_size, dropout
        self.padding = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(residual_channels, gate_channels, kernel_size, dilation=dilation)
        self.conv1x1c = nn.Conv1d(cin_channels, gate_channels, 1, bias=False)
        self.conv1x1_out = nn.Conv1d(gate_channels // 2, residual_channels, 1)
        self.conv1x1_skip = nn.Conv1d(gate_channels // 2, skip_out_channels, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        residual = x
        x = F.dropout(x, self.dropout, self.training)
        x = self.conv(F.pad(x, (self.padding, 0))) + self.conv1x1c(c)
        a, b = x.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return (self.conv1x1_out(z) + residual) * math.sqrt(0.5), self.conv1x1_skip(z)


class WaveNet(nn.Module):
    """Teacher-forced: ``forward(x, mel)`` → output parameters ``[b, out_channels, samples]``."""

    config_class = WaveNetConfig

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        in_channels = 1 if config.output_distribution == MOL else config.quantize_channels
        self.first_conv = nn.Conv1d(in_channels, config.residual_channels, 1)
        per_stack = config.layers // config.stacks
        self.conv_layers = nn.ModuleList(
            ResidualConv1dGLU(config.residual_channels, config.gate_channels, config.kernel_size,
                              config.skip_out_channels, config.num_mels, 2 ** (layer % per_stack), config.dropout)
            for layer in range(config.layers)
        )
        self.last_conv_layers = nn.ModuleList([
            nn.ReLU(), nn.Conv1d(config.skip_out_channels, config.skip_out_channels, 1),
            nn.ReLU(), nn.Conv1d(config.skip_out_channels, config.out_channels, 1),
        ])
        self.upsample_net = UpsampleNetwork(config.upsample_scales, config.num_mels, config.cin_pad)
        self.receptive_field = config.receptive_field
        self._init_as_r9y9()

    def _init_as_r9y9(self) -> None:
        """He-normal weights and zero biases for the first, residual-stack and last convolutions, as
        r9y9/wavenet_vocoder (PyTorch's default is 2.4 times narrower; with it the sample set's loss
        stalled near 9.3 nats per sample where this init reached 8.9 by step 200). The upsampling
        network keeps its own init."""
        convs = [self.first_conv, *self.last_conv_layers[1::2]]
        for layer in self.conv_layers:
            convs += [layer.conv, layer.conv1x1c, layer.conv1x1_out, layer.conv1x1_skip]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    # --- inputs -----------------------------------------------------------------------------
    def encode_input(self, x: torch.Tensor) -> torch.Tensor:
        """Network input ``[b, in_channels, t]`` from samples ``[b, t]`` (floats; μ-law: classes)."""
        if self.config.output_distribution == MOL:
            return x.unsqueeze(1)
        return F.one_hot(x, self.config.quantize_channels).transpose(1, 2).to(self.first_conv.weight.dtype)

    def initial_input(self, batch: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """What the network is fed before the first sample: silence."""
        if self.config.output_distribution == MOL:
            return torch.zeros(batch, dtype=dtype)
        return mulaw_quantize(torch.zeros(batch), self.config.quantize_channels)

    def shift_right(self, target: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the input at ``t`` is the target at ``t - 1`` (silence at 0)."""
        start = self.initial_input(target.shape[0], target.dtype if target.is_floating_point() else torch.float32)
        return torch.cat([start.to(target.device, target.dtype).unsqueeze(1), target[:, :-1]], dim=1)

    def conditioning(self, mel: torch.Tensor) -> torch.Tensor:
        """Upsampled mel ``[b, num_mels, frames * hop]``."""
        if mel.dim() != 3 or mel.shape[1] != self.config.num_mels:
            raise ValueError(f"expected mel of shape (batch, {self.config.num_mels}, frames), got {tuple(mel.shape)}")
        return self.upsample_net(mel)

    # --- teacher-forced ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """``x`` ``[b, t]``: the input samples (already shifted: see :meth:`shift_right`);
        ``mel`` ``[b, num_mels, frames]`` with ``frames * hop >= t``."""
        return self.forward_upsampled(x, self.conditioning(mel))

    def forward_upsampled(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if c.shape[-1] < t:
            raise ValueError(f"conditioning covers {c.shape[-1]} samples, the input has {t}")
        c = c[..., :t]
        h = self.first_conv(self.encode_input(x))
        skips = 0
        for layer in self.conv_layers:
            h, skip = layer(h, c)
            skips = skips + skip
        out = skips * math.sqrt(1.0 / len(self.conv_layers))
        for f in self.last_conv_layers:
            out = f(out)
        return out

    def loss(self, wave: torch.Tensor, mel: torch.Tensor, lengths: torch.Tensor | None = None,
             forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Mean negative log-likelihood per sample of ``wave`` ``[b, t]`` given its mel, teacher-forced;
        ``lengths`` (samples per row) masks padding. ``forward``: the module to call instead of
        this one (a DDP wrapper of it)."""
        config = self.config
        net = self if forward is None else forward
        if config.output_distribution == MOL:
            target = wave.clamp(-1.0, 1.0)
            y = net(self.shift_right(target), mel).float()
            nll = discretized_mix_logistic_loss(y, target.float(), config.quantize_channels, config.log_scale_min)
        else:
            target = mulaw_quantize(wave, config.quantize_channels)
            y = net(self.shift_right(target), mel).float()
            nll = F.cross_entropy(y, target, reduction="none")
        if lengths is None:
            return nll.mean()
        mask = (torch.arange(nll.shape[1], device=nll.device)[None, :] < lengths[:, None]).to(nll.dtype)
        return (nll * mask).sum() / mask.sum().clamp(min=1.0)

    # --- generation -------------------------------------------------------------------------
    def sample(self, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The next sample of each row from output parameters ``y`` ``[b, out_channels]`` and its
        noise ``[b, width]`` (:func:`draw_noise`): floats for MoL, μ-law classes for the softmax."""
        if self.config.output_distribution == MOL:
            return sample_from_discretized_mix_logistic(y, noise[:, :-1], noise[:, -1], self.config.log_scale_min)
        return sample_from_softmax(y, noise[:, 0])

    def to_audio(self, samples: torch.Tensor) -> torch.Tensor:
        if self.config.output_distribution == MOL:
            return samples
        return inv_mulaw_quantize(samples, self.config.quantize_channels)

    @torch.no_grad()
    def generate_chunks(
        self, mel: torch.Tensor, generator: torch.Generator | None = None, chunk_samples: int = 4096,
        backend: str | None = None,
    ) -> Iterator[torch.Tensor]:
        """Audio ``[b, n]`` pieces of ``frames * hop`` samples in all, each as soon as it is made.
        The noise of the whole batch is drawn up front from ``generator``, so the output does not
        depend on ``chunk_samples``. ``backend``: "numpy" (the default on a CPU: the same
        arithmetic with less per-call overhead, see :class:`NumpyIncrementalState`) or "torch"."""
        c = self.conditioning(mel)
        b, total = c.shape[0], c.shape[-1]
        noise = draw_noise(self.config, total, b, generator).to(c.device, c.dtype)
        state = self.incremental_state(b, backend or ("numpy" if c.device.type == "cpu" else "torch"))
        x = self.initial_input(b, c.dtype).to(c.device)
        for start in range(0, total, chunk_samples):
            end = min(total, start + chunk_samples)
            samples, x = state.generate(x, state.condition(c[..., start:end]), noise[start:end])
            yield self.to_audio(samples)

    def incremental_state(self, batch: int, backend: str = "torch") -> "IncrementalState | NumpyIncrementalState":
        if backend not in ("torch", "numpy"):
            raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")
        return IncrementalState(self, batch) if backend == "torch" else NumpyIncrementalState(self, batch)

    def generate(self, mel: torch.Tensor, generator: torch.Generator | None = None,
                 backend: str | None = None) -> torch.Tensor:
        """Audio ``[b, frames * hop]`` for mel ``[b, num_mels, frames]``, sampled incrementally."""
        return torch.cat(list(self.generate_chunks(mel, generator, backend=backend)), dim=1)

    @torch.no_grad()
    def incremental_forward(self, x: torch.Tensor, mel: torch.Tensor, backend: str = "torch") -> torch.Tensor:
        """The incremental path fed given inputs ``x`` ``[b, t]`` (teacher forcing): output
        parameters ``[b, out_channels, t]``, equal to :meth:`forward`'s."""
        c = self.conditioning(mel)[..., : x.shape[1]]
        state = self.incremental_state(x.shape[0], backend)
        cond = state.condition(c)
        if backend == "numpy":
            x = x.cpu().numpy()
            return torch.from_numpy(np.stack([state.step(x[:, i], cond[i]) for i in range(x.shape[1])], axis=2))
        return torch.stack([state.step(x[:, i], cond[i]) for i in range(x.shape[1])], dim=2)


class IncrementalState:
    """Per-layer input queues and step-ready weights for generating a batch sample by sample.

    Layer ``l``'s queue holds its last ``(kernel_size - 1) * dilation + 1`` inputs in a ring
    ``[b, size, residual_channels]``; a step writes the new input and reads the kernel's taps
    with one ``index_select``, so a step costs the same at any dilation. The gated outputs of all
    layers are kept and go through every layer's skip convolution in one matrix product at the
    end of the step (the skips are summed anyway). Dropout is off (eval).
    """

    def __init__(self, model: WaveNet, batch: int) -> None:
        config = model.config
        weight = model.first_conv.weight
        dtype, device = weight.dtype, weight.device
        layers = model.conv_layers
        self.model, self.t = model, 0
        self.mol = config.output_distribution == MOL
        self.first_w = weight[:, :, 0].t().contiguous()  # [in, residual]
        self.first_b = model.first_conv.bias
        self.half = config.gate_channels // 2
        self.queues, self.tap_index, self.conv_w, self.out_w, self.out_b = [], [], [], [], []
        for layer in layers:
            size = layer.padding + 1
            self.queues.append(torch.zeros(batch, size, config.residual_channels, dtype=dtype, device=device))
            # Row p: the ring positions of the taps (oldest first) when the newest input is at p.
            taps = torch.arange(-layer.padding, 1, layer.dilation, device=device)
            self.tap_index.append([(p + taps) % size for p in range(size)])
            # conv weight [gate, residual, k] → [k * residual, gate] to match taps [b, k, residual].
            self.conv_w.append(layer.conv.weight.permute(2, 1, 0).reshape(-1, layer.conv.weight.shape[0]).contiguous())
            # (z W_out + b_out + h) · √½ = h · √½ + z (W_out · √½) + b_out · √½
            self.out_w.append((layer.conv1x1_out.weight[:, :, 0].t() * math.sqrt(0.5)).contiguous())
            self.out_b.append(layer.conv1x1_out.bias * math.sqrt(0.5))
        self.gated = torch.zeros(batch, len(layers), self.half, dtype=dtype, device=device)
        skip_scale = math.sqrt(1.0 / len(layers))
        self.skip_w = torch.cat([layer.conv1x1_skip.weight[:, :, 0].t() for layer in layers]) * skip_scale
        self.skip_b = sum(layer.conv1x1_skip.bias for layer in layers) * skip_scale
        self.cond_w = torch.cat([layer.conv1x1c.weight[:, :, 0] for layer in layers]).t().contiguous()
        self.cond_b = torch.cat([layer.conv.bias for layer in layers])
        self.gate = config.gate_channels
        last = model.last_conv_layers
        self.last = [(last[1].weight[:, :, 0].t().contiguous(), last[1].bias),
                     (last[3].weight[:, :, 0].t().contiguous(), last[3].bias)]

    def condition(self, c: torch.Tensor) -> torch.Tensor:
        """Every layer's conditioning (plus its convolution's bias) for a span of the upsampled
        mel ``[b, num_mels, n]``: ``[n, layers, b, gate]``, one matrix product for the span."""
        b, _, n = c.shape
        out = torch.addmm(self.cond_b, c.permute(2, 0, 1).reshape(n * b, -1), self.cond_w)
        return out.view(n, b, len(self.queues), self.gate).transpose(1, 2).contiguous()

    def generate(self, x: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``n`` steps from input ``x`` ``[b]``: the samples ``[b, n]`` and the last one."""
        out = []
        for i in range(cond.shape[0]):
            x = self.model.sample(self.step(x, cond[i]), noise[i])
            out.append(x)
        return torch.stack(out, dim=1), x

    def step(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Output parameters ``[b, out_channels]`` at the next sample, given its input ``x`` ``[b]``
        (float sample or μ-law class) and its conditioning ``cond`` ``[layers, b, gate]``."""
        if self.mol:
            h = torch.addmm(self.first_b, x.unsqueeze(1), self.first_w)
        else:
            h = self.first_w.index_select(0, x) + self.first_b
        b, last = h.shape[0], len(self.queues) - 1
        for i, queue in enumerate(self.queues):
            position = self.t % queue.shape[1]
            queue[:, position] = h
            taps = queue.index_select(1, self.tap_index[i][position]).view(b, -1)
            a, g = torch.addmm(cond[i], taps, self.conv_w[i]).chunk(2, dim=1)
            z = torch.mul(torch.tanh(a), torch.sigmoid(g), out=self.gated[:, i])
            if i < last:  # the last layer's residual output is not used
                h = torch.addmm(h, z, self.out_w[i], beta=math.sqrt(0.5)).add_(self.out_b[i])
        self.t += 1
        out = torch.addmm(self.skip_b, self.gated.view(b, -1), self.skip_w).relu_()
        out = torch.addmm(self.last[0][1], out, self.last[0][0]).relu_()
        return torch.addmm(self.last[1][1], out, self.last[1][0])


class NumpyIncrementalState:
    """:class:`IncrementalState` in NumPy, for CPUs: the same weights, queues and arithmetic, but a
    NumPy call on these small arrays costs about a third of a PyTorch operator's dispatch, and a
    step is dozens of them (benchmarks/wavenet_incremental.py: 3.7-6.5× faster for "small")."""

    def __init__(self, model: WaveNet, batch: int) -> None:
        ref = IncrementalState(model, batch)
        config = model.config

        def array(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().copy()

        self.t, self.mol, self._condition = 0, ref.mol, ref.condition
        self.first_w, self.first_b = array(ref.first_w), array(ref.first_b)
        self.queues = [array(q) for q in ref.queues]
        self.tap_index = [np.stack([array(row) for row in rows]) for rows in ref.tap_index]
        self.conv_w = [array(w) for w in ref.conv_w]
        self.out_w, self.out_b = [array(w) for w in ref.out_w], [array(b) for b in ref.out_b]
        self.gated, self.half = array(ref.gated), ref.half
        self.skip_w, self.skip_b = array(ref.skip_w), array(ref.skip_b)
        self.last = [(array(w), array(b)) for w, b in ref.last]
        self.n_mix, self.log_scale_min = config.num_mixtures, config.log_scale_min
        self.classes = config.quantize_channels
        self.sqrt_half = math.sqrt(0.5)

    def condition(self, c: torch.Tensor) -> np.ndarray:
        return self._condition(c).cpu().numpy()

    def generate(self, x: torch.Tensor, cond: np.ndarray, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``n`` steps from input ``x`` ``[b]``: the samples ``[b, n]`` and the last one."""
        x_np, noise_np = x.cpu().numpy(), noise.cpu().numpy()
        out = np.empty((cond.shape[0], x_np.shape[0]), dtype=x_np.dtype)
        # The gate's sigmoid 1 / (1 + exp(-y)) overflows exp for a large negative y and gives 0,
        # its true value: no warning for it (a barely trained model printed thousands).
        with np.errstate(over="ignore"):
            for i in range(cond.shape[0]):
                x_np = self.sample(self.step(x_np, cond[i]), noise_np[i])
                out[i] = x_np
        samples = torch.from_numpy(np.ascontiguousarray(out.T)).to(x.device)
        return samples, samples[:, -1]

    def sample(self, y: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """:meth:`WaveNet.sample` in NumPy."""
        rows = np.arange(y.shape[0])
        if not self.mol:
            e = np.exp(y - y.max(axis=1, keepdims=True))
            cdf = np.cumsum(e / e.sum(axis=1, keepdims=True), axis=1)
            return np.minimum((cdf < noise[:, :1]).sum(axis=1), self.classes - 1)
        n = self.n_mix
        k = (y[:, :n] + noise[:, :n]).argmax(axis=1)
        scale = np.exp(np.maximum(y[rows, 2 * n + k], self.log_scale_min))
        return np.clip(y[rows, n + k] + scale * noise[:, n], -1.0, 1.0)

    def step(self, x: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """:meth:`IncrementalState.step` in NumPy."""
        h = (x[:, None] * self.first_w if self.mol else self.first_w[x]) + self.first_b
        b, last = h.shape[0], len(self.queues) - 1
        for i, queue in enumerate(self.queues):
            position = self.t % queue.shape[1]
            queue[:, position] = h
            y = queue[:, self.tap_index[i][position]].reshape(b, -1) @ self.conv_w[i]
            y += cond[i]
            z = self.gated[:, i]
            np.tanh(y[:, : self.half], out=z)
            z *= 1.0 / (1.0 + np.exp(-y[:, self.half :]))
            if i < last:
                h = h * self.sqrt_half + z @ self.out_w[i] + self.out_b[i]
        self.t += 1
        out = np.maximum(self.gated.reshape(b, -1) @ self.skip_w + self.skip_b, 0.0)
        out = np.maximum(out @ self.last[0][0] + self.last[0][1], 0.0)
        return out @ self.last[1][0] + self.last[1][1]


@torch.no_grad()
def naive_generate(model: WaveNet, mel: torch.Tensor, generator: torch.Generator | None = None,
                   max_samples: int | None = None) -> torch.Tensor:
    """Generation without queues: every sample reruns the full convolution over the last
    receptive field of inputs. Same draws as :meth:`WaveNet.generate_chunks`, so the same output
    (up to rounding); the baseline of benchmarks/wavenet_incremental.py."""
    c = model.conditioning(mel)
    b, total = c.shape[0], c.shape[-1]
    noise = draw_noise(model.config, total, b, generator).to(c.device, c.dtype)
    n = total if max_samples is None else min(total, max_samples)
    inputs = [model.initial_input(b, c.dtype).to(c.device)]
    out = []
    for t in range(n):
        start = max(0, t + 1 - model.receptive_field)
        x = torch.stack(inputs[start : t + 1], dim=1)
        y = model.forward_upsampled(x, c[..., start : t + 1])[:, :, -1]
        inputs.append(model.sample(y, noise[t]))
        out.append(inputs[-1])
    return model.to_audio(torch.stack(out, dim=1))


# --- ONNX: one incremental step ---------------------------------------------------------------


class WaveNetStep(nn.Module):
    """One incremental step as a traceable graph: ``(x [b, in_channels], cond [layers, b, gate],
    queue_0 … queue_{L-1} [b, size_l, residual])`` → ``(output parameters [b, out_channels],
    new queues)``. The queues shift by one sample per step (oldest first, the newest last), so
    the graph needs no step counter. ``x`` is the sample for MoL (``[b, 1]``) or the μ-law class
    one-hot. ``cond`` is :meth:`IncrementalState.condition`'s row for the sample."""

    def __init__(self, model: WaveNet) -> None:
        super().__init__()
        self.model = model

    def initial_queues(self, batch: int) -> list[torch.Tensor]:
        return [torch.zeros(batch, layer.padding + 1, self.model.config.residual_channels)
                for layer in self.model.conv_layers]

    def forward(self, x: torch.Tensor, cond: torch.Tensor, *queues: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.model
        h = F.linear(x, model.first_conv.weight[:, :, 0], model.first_conv.bias)
        skips = 0
        new_queues = []
        for i, (layer, queue) in enumerate(zip(model.conv_layers, queues)):
            queue = torch.cat([queue[:, 1:], h.unsqueeze(1)], dim=1)
            new_queues.append(queue)
            taps = queue[:, :: layer.dilation].transpose(1, 2)  # [b, residual, k]
            x_conv = (taps.unsqueeze(1) * layer.conv.weight.unsqueeze(0)).sum(dim=(2, 3)) + cond[i]
            a, g = x_conv.chunk(2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(g)
            h = (F.linear(z, layer.conv1x1_out.weight[:, :, 0], layer.conv1x1_out.bias) + h) * math.sqrt(0.5)
            skips = skips + F.linear(z, layer.conv1x1_skip.weight[:, :, 0], layer.conv1x1_skip.bias)
        out = torch.relu(skips * math.sqrt(1.0 / len(model.conv_layers)))
        last = model.last_conv_layers
        out = torch.relu(F.linear(out, last[1].weight[:, :, 0], last[1].bias))
        return (F.linear(out, last[3].weight[:, :, 0], last[3].bias), *new_queues)

    def onnx_graph(self, batch: int = 1) -> OnnxGraph:
        config = self.model.config
        in_channels = 1 if config.output_distribution == MOL else config.quantize_channels
        queues = self.initial_queues(batch)
        names = [f"queue_{i}" for i in range(len(queues))]
        args = (torch.zeros(batch, in_channels), torch.zeros(config.layers, batch, config.gate_channels), *queues)
        axes = {name: {0: "batch"} for name in ["x", *names, "y", *(f"new_{n}" for n in names)]}
        axes["cond"] = {1: "batch"}
        return OnnxGraph(args, ["x", "cond", *names], ["y", *(f"new_{n}" for n in names)], axes)


def export_step_onnx(model: WaveNet, path: str, opset: int = 17) -> list[str]:
    """Write :class:`WaveNetStep` to ``path``; returns the input names."""
    import warnings

    step = WaveNetStep(model).eval()
    graph = step.onnx_graph()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, graph.args, str(path), input_names=graph.input_names,
                          output_names=graph.output_names, dynamic_axes=graph.dynamic_axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    return graph.input_names


# --- the vocoder interface --------------------------------------------------------------------


class WaveNetVocoder(Vocoder):
    """WaveNet behind the vocoder interface: sampled incrementally, seeded by ``controls.seed``
    (None: fresh randomness). Autoregressive, so no span is independent of the audio before it
    (``context_frames`` None); it streams natively instead: :meth:`stream` yields audio as it is
    sampled, and :meth:`infer` is the concatenation of the same pieces. PyTorch-only as a whole
    vocoder (see :class:`WaveNetStep` for the step graph)."""

    context_frames = None
    has_onnx_graph = False
    # Samples per streamed piece (4 frames, 46 ms at 22,050 Hz): the first audio leaves after
    # this many samples of generation.
    chunk_samples = 1024

    def __init__(self, model: WaveNet) -> None:
        super().__init__()
        self.model = model

    def stream(self, mel: torch.Tensor, controls: Controls | None = None) -> Iterator[torch.Tensor]:
        """Audio pieces (1-D for a 2-D mel, else ``[b, n]``) in order; their concatenation is :meth:`infer`."""
        unbatched = mel.dim() == 2
        batch = mel.unsqueeze(0) if unbatched else mel
        self.model.conditioning(batch)  # shape check before any work
        seed = getattr(controls, "seed", None)
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        for chunk in self.model.generate_chunks(batch.to(self.model.first_conv.weight.dtype), generator, self.chunk_samples):
            yield chunk[0] if unbatched else chunk

    def infer(self, mel: torch.Tensor, controls: Controls | None = None) -> torch.Tensor:
        return torch.cat(list(self.stream(mel, controls)), dim=-1)

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        raise NotImplementedError("WaveNet is autoregressive: it has no single mel → wave graph "
                                  "(moksori.models.wavenet.export_step_onnx exports one step)")


# --- r9y9/wavenet_vocoder checkpoints ------------------------------------------------------------

# r9y9's hparams that decide shapes the weights do not show (or that moksori does not implement).
_R9Y9_INPUT_TYPES = {"raw": MOL, "mulaw-quantize": MULAW}


def _r9y9_hparams(path: Path) -> dict[str, Any]:
    """The hparams JSON r9y9 publishes beside a checkpoint (``<name>.json``) or keeps in the run
    folder (``hparams.json``): the number of dilation cycles is not in the weights."""
    import json

    for candidate in (path.with_suffix(".json"), path.parent / "hparams.json"):
        if candidate.is_file():
            try:
                values = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise CheckpointError(f"{candidate}: not a readable hparams JSON ({error})") from None
            if not isinstance(values, dict):
                raise CheckpointError(f"{candidate}: expected a JSON object of hparams")
            return values
    raise CheckpointError(f"{path}: r9y9's hparams JSON is missing: put it beside the checkpoint as "
                          f"{path.with_suffix('.json').name} (the dilation cycles, 'stacks', are not in the weights)")


def _r9y9_config(state: Mapping[str, torch.Tensor], hparams: Mapping[str, Any]) -> WaveNetConfig:
    """The config of an r9y9 state dict already renamed to moksori's names (:func:`_r9y9_renamed`)."""
    def fail(why: str) -> None:
        raise CheckpointError(f"this r9y9 WaveNet cannot be imported: {why}")

    input_type = hparams.get("input_type", "raw")
    if input_type not in _R9Y9_INPUT_TYPES:
        fail(f"input_type {input_type!r} (moksori reads 'raw' = mixture of logistics, or 'mulaw-quantize')")
    if int(hparams.get("gin_channels", -1)) > 0 or "embed_speakers.weight" in state:
        fail("it is multi-speaker (global conditioning), which moksori's WaveNet does not have")
    params = dict(hparams.get("upsample_params") or {})
    if int(params.get("freq_axis_kernel_size", hparams.get("freq_axis_kernel_size", 1))) != 1:
        fail("its upsampling convolutions span the frequency axis (freq_axis_kernel_size > 1)")
    if params.get("upsample_activation", "none") != "none":
        fail(f"its upsampling network has an activation ({params['upsample_activation']})")
    if "upsample_net.conv_in.weight" not in state:
        fail("no upsample_net.conv_in: only the ConvInUpsampleNetwork layout (r9y9 v0.1.1 and later) is read")
    if "stacks" not in hparams:
        fail("its hparams JSON has no 'stacks'")
    layers = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("conv_layers."))
    conv = _r9y9_weight(state, "conv_layers.0.conv.")
    out = _r9y9_weight(state, "last_conv_layers.3.")
    mol = _R9Y9_INPUT_TYPES[input_type] == MOL
    if mol and out.shape[0] % 3:
        fail(f"a mixture-of-logistics output needs 3 x mixtures channels, got {out.shape[0]}")
    scales = [(_r9y9_weight(state, f"upsample_net.up_layers.{i}.").shape[-1] - 1) // 2
              for i in range(sum(1 for key in state if key.startswith("upsample_net.up_layers.") and
                                 key.endswith((".weight", ".weight_v"))))]
    values: dict[str, Any] = dict(
        num_mels=state["upsample_net.conv_in.weight"].shape[0], layers=layers, stacks=int(hparams["stacks"]),
        residual_channels=conv.shape[1], gate_channels=conv.shape[0], kernel_size=conv.shape[2],
        skip_out_channels=_r9y9_weight(state, "conv_layers.0.conv1x1_skip.").shape[0],
        output_distribution=MOL if mol else MULAW, cin_pad=(state["upsample_net.conv_in.weight"].shape[2] - 1) // 2,
        upsample_scales=scales, hop_size=math.prod(scales) if scales else 0,
        sampling_rate=int(hparams.get("sample_rate", 22050)),
    )
    if mol:
        values.update(num_mixtures=out.shape[0] // 3, quantize_channels=int(hparams.get("quantize_channels", 65536)),
                      log_scale_min=float(hparams.get("log_scale_min", LOG_SCALE_MIN)))
    else:
        values.update(quantize_channels=out.shape[0])
    try:
        return WaveNetConfig(**values)
    except ValueError as error:
        raise CheckpointError(f"this r9y9 WaveNet cannot be imported: {error}") from None


def _r9y9_weight(state: Mapping[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """A convolution's weight (its ``weight_v`` under weight norm: the same shape)."""
    for key in (prefix + "weight", prefix + "weight_v"):
        if key in state:
            return state[key]
    raise CheckpointError(f"not an r9y9 WaveNet state dict: no {prefix}weight")


def _r9y9_renamed(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """r9y9's names → moksori's: its upsampling convolutions sit between stretch layers
    (``upsample_net.upsample.up_layers.{1,3,…}``); moksori keeps only the convolutions."""
    up_prefix = "upsample_net.upsample.up_layers."
    conv_indices = sorted({int(key[len(up_prefix):].split(".")[0]) for key in state if key.startswith(up_prefix)})
    renamed = {}
    for key, value in state.items():
        if key.startswith(up_prefix):
            index, rest = key[len(up_prefix):].split(".", 1)
            key = f"upsample_net.up_layers.{conv_indices.index(int(index))}.{rest}"
        renamed[key] = value
    return renamed


def import_reference(path: str | Path) -> tuple[WaveNetConfig, dict[str, torch.Tensor]]:
    """Config and state dict (float32, weight norm folded) of an r9y9/wavenet_vocoder checkpoint
    (``{"state_dict": …, "optimizer": …, "global_step": …}``, its EMA file too) and the hparams
    JSON beside it. Its mels are r9y9's (normalised to [0, 1]): fine-tune on moksori's mels of
    your data before use (``init_from``)."""
    from moksori.checkpoint import match_weight_norm, strip_module_prefix, torch_load

    path = Path(path)
    try:
        raw = torch_load(path)
    except Exception as error:
        raise CheckpointError(f"{path}: not a loadable r9y9 WaveNet checkpoint ({error})") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("state_dict"), Mapping):
        raise CheckpointError(f"{path}: expected r9y9's {{'state_dict': ...}} checkpoint")
    state = {key: value.float() if value.is_floating_point() else value
             for key, value in strip_module_prefix(raw["state_dict"]).items() if isinstance(value, torch.Tensor)}
    state = _r9y9_renamed(state)
    config = _r9y9_config(state, _r9y9_hparams(path))
    target = WaveNet(config).state_dict()
    converted = match_weight_norm(state, target.keys())
    problems = [f"missing {key}" for key in target if key not in converted]
    problems += [f"{key}: {tuple(converted[key].shape)} in the checkpoint, {tuple(value.shape)} here"
                 for key, value in target.items() if key in converted and converted[key].shape != value.shape]
    if problems:
        raise CheckpointError(f"{path}: the weights do not fit an r9y9 WaveNet: {'; '.join(problems[:8])}")
    return config, {key: converted[key] for key in target}


__all__ = [
    "IncrementalState",
    "NumpyIncrementalState",
    "ResidualConv1dGLU",
    "UpsampleNetwork",
    "WaveNet",
    "WaveNetConfig",
    "WaveNetStep",
    "WaveNetVocoder",
    "discretized_mix_logistic_loss",
    "draw_noise",
    "export_step_onnx",
    "import_reference",
    "inv_mulaw",
    "inv_mulaw_quantize",
    "mulaw",
    "mulaw_quantize",
    "naive_generate",
    "receptive_field_size",
    "sample_from_discretized_mix_logistic",
    "sample_from_softmax",
]

"""Glow-TTS: a flow-based acoustic model with monotonic alignment search (Kim et al., 2020).

Text tokens -> TextEncoder -> per-token Gaussian prior (x_m, x_logs) and log-durations (logw).
Mel frames -> FlowSpecDecoder (invertible) -> latent z. Training finds the most likely monotonic
alignment of z to the token priors (MAS) and maximises the exact likelihood; inference expands the
priors by predicted durations, samples z and runs the decoder backwards.

Module and parameter names follow jaywalnut310/glow-tts (``models.py``) so that its published
``G_*.pth`` checkpoints load through :func:`load_reference_state_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, Mapping, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from moksori.checkpoint import match_weight_norm, strip_module_prefix, to_legacy_weight_norm_names
from moksori.models.interfaces import AcousticModel, AcousticOutput, Controls, MelPiece, NoiseSource, OnnxGraph
from moksori.models.onnx_runners import ONNX_NOISE_FRAMES_PER_TOKEN, GlowTTSOnnx
from moksori.models.layers.attention import Encoder
from moksori.models.layers.common import (
    ConvReluNorm,
    LayerNorm,
    generate_path,
    maximum_path,
    sequence_mask,
    squeeze,
    unsqueeze,
)
from moksori.models.layers.flows import ActNorm, CouplingBlock, InvConvNear


@dataclass
class GlowTTSConfig:
    """Hyper-parameters, named as in the reference ``configs/base.json`` ``model`` section."""

    n_vocab: int
    out_channels: int = 80
    hidden_channels: int = 192
    filter_channels: int = 768
    filter_channels_dp: int = 256
    kernel_size: int = 3
    p_dropout: float = 0.1
    n_blocks_dec: int = 12
    kernel_size_dec: int = 5
    dilation_rate: int = 1
    n_block_layers: int = 4
    p_dropout_dec: float = 0.05
    n_speakers: int = 0
    gin_channels: int = 0
    n_split: int = 4
    n_sqz: int = 2
    sigmoid_scale: bool = False
    window_size: int | None = 4
    block_length: int | None = None
    mean_only: bool = True
    hidden_channels_enc: int | None = None
    hidden_channels_dec: int | None = None
    prenet: bool = True
    n_heads: int = 2
    n_layers_enc: int = 6

    def __post_init__(self) -> None:
        if self.n_vocab < 1:
            raise ValueError(f"GlowTTSConfig.n_vocab must be >= 1, got {self.n_vocab}")
        if self.n_speakers > 1 and self.gin_channels <= 0:
            raise ValueError("GlowTTSConfig: n_speakers > 1 needs gin_channels > 0")
        if (self.out_channels * self.n_sqz) % self.n_split != 0:
            raise ValueError(
                f"GlowTTSConfig: out_channels*n_sqz ({self.out_channels * self.n_sqz}) "
                f"must be divisible by n_split ({self.n_split})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GlowTTSConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"GlowTTSConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(data))

    @classmethod
    def base(cls, n_vocab: int, **overrides: Any) -> "GlowTTSConfig":
        """The paper's base model (reference ``configs/base.json``)."""
        return cls(n_vocab=n_vocab, **overrides)

    @classmethod
    def small(cls, n_vocab: int, **overrides: Any) -> "GlowTTSConfig":
        """A CPU-sized model (about a quarter of base's compute): hidden 128, four encoder
        layers, eight flow blocks of three WaveNet layers. The shipped default voice uses it."""
        params: dict[str, Any] = dict(
            hidden_channels=128,
            filter_channels=512,
            filter_channels_dp=192,
            n_layers_enc=4,
            n_blocks_dec=8,
            n_block_layers=3,
        )
        params.update(overrides)
        return cls(n_vocab=n_vocab, **params)

    @classmethod
    def tiny(cls, n_vocab: int, **overrides: Any) -> "GlowTTSConfig":
        """A ~0.1M-parameter model for tests (hidden 32, one encoder layer, two flow blocks)."""
        params: dict[str, Any] = dict(
            hidden_channels=32,
            filter_channels=64,
            filter_channels_dp=32,
            n_blocks_dec=2,
            n_block_layers=2,
            n_layers_enc=1,
            p_dropout=0.0,
            p_dropout_dec=0.0,
        )
        params.update(overrides)
        return cls(n_vocab=n_vocab, **params)


class DurationPredictor(nn.Module):
    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, p_dropout: float):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = LayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = LayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.norm_1(torch.relu(self.conv_1(x * x_mask))))
        x = self.drop(self.norm_2(torch.relu(self.conv_2(x * x_mask))))
        return self.proj(x * x_mask) * x_mask


class TextEncoder(nn.Module):
    def __init__(
        self,
        n_vocab: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        filter_channels_dp: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        window_size: int | None = None,
        block_length: int | None = None,
        mean_only: bool = False,
        prenet: bool = False,
        gin_channels: int = 0,
    ):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.mean_only = mean_only
        self.prenet = prenet
        self.emb = nn.Embedding(n_vocab, hidden_channels)
        nn.init.normal_(self.emb.weight, 0.0, hidden_channels**-0.5)
        if prenet:
            self.pre = ConvReluNorm(hidden_channels, hidden_channels, hidden_channels, 5, 3, 0.5)
        self.encoder = Encoder(
            hidden_channels,
            filter_channels,
            n_heads,
            n_layers,
            kernel_size,
            p_dropout,
            window_size=window_size,
            block_length=block_length,
        )
        self.proj_m = nn.Conv1d(hidden_channels, out_channels, 1)
        if not mean_only:
            self.proj_s = nn.Conv1d(hidden_channels, out_channels, 1)
        self.proj_w = DurationPredictor(hidden_channels + gin_channels, filter_channels_dp, kernel_size, p_dropout)

    def forward(
        self, x: torch.Tensor, x_lengths: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: token ids ``[b, t_x]``; g: speaker vector ``[b, gin, 1]``.
        Returns x_m, x_logs ``[b, out, t_x]``, logw ``[b, 1, t_x]``, x_mask ``[b, 1, t_x]``."""
        x = self.emb(x) * math.sqrt(self.hidden_channels)
        x = x.transpose(1, 2)  # [b, h, t_x]
        x_mask = sequence_mask(x_lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        if self.prenet:
            x = self.pre(x, x_mask)
        x = self.encoder(x, x_mask)

        # The duration predictor must not push gradients into the encoder (paper, section 3.2).
        x_dp = x.detach()
        if g is not None:
            x_dp = torch.cat([x_dp, g.expand(-1, -1, x.size(-1))], dim=1)

        x_m = self.proj_m(x) * x_mask
        x_logs = torch.zeros_like(x_m) if self.mean_only else self.proj_s(x) * x_mask
        logw = self.proj_w(x_dp, x_mask)
        return x_m, x_logs, logw, x_mask


class FlowSpecDecoder(nn.Module):
    """``n_blocks`` x [ActNorm, InvConvNear, CouplingBlock] on ``n_sqz``-squeezed mel frames."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_blocks: int,
        n_layers: int,
        p_dropout: float = 0.0,
        n_split: int = 4,
        n_sqz: int = 2,
        sigmoid_scale: bool = False,
        gin_channels: int = 0,
    ):
        super().__init__()
        self.n_sqz = n_sqz
        channels = in_channels * n_sqz
        self.flows = nn.ModuleList()
        for _ in range(n_blocks):
            self.flows.append(ActNorm(channels))
            self.flows.append(InvConvNear(channels, n_split=n_split))
            self.flows.append(
                CouplingBlock(
                    channels,
                    hidden_channels,
                    kernel_size=kernel_size,
                    dilation_rate=dilation_rate,
                    n_layers=n_layers,
                    gin_channels=gin_channels,
                    p_dropout=p_dropout,
                    sigmoid_scale=sigmoid_scale,
                )
            )

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        g: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[b, c, t]`` with ``t`` a multiple of ``n_sqz``. Returns (z, logdet ``[b]``) forward,
        (x, None) in reverse."""
        if self.n_sqz > 1:
            x, x_mask = squeeze(x, x_mask, self.n_sqz)
        logdet_tot: torch.Tensor | None = None
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x, logdet = flow(x, x_mask, g=g, reverse=reverse)
            if not reverse:
                logdet_tot = logdet if logdet_tot is None else logdet_tot + logdet
        if self.n_sqz > 1:
            x, x_mask = unsqueeze(x, x_mask, self.n_sqz)
        return x, logdet_tot

    def store_inverse(self) -> None:
        for flow in self.flows:
            flow.store_inverse()


class GlowTTSOutput(NamedTuple):
    """Training-path outputs. Alignment ``attn`` is ``[b, t_x, t_y]``."""

    z: torch.Tensor  # [b, out, t_y] latent of the mel frames
    z_m: torch.Tensor  # [b, out, t_y] prior mean expanded along attn
    z_logs: torch.Tensor  # [b, out, t_y]
    logdet: torch.Tensor  # [b]
    z_mask: torch.Tensor  # [b, 1, t_y]
    x_m: torch.Tensor  # [b, out, t_x]
    x_logs: torch.Tensor  # [b, out, t_x]
    x_mask: torch.Tensor  # [b, 1, t_x]
    attn: torch.Tensor  # [b, t_x, t_y]
    logw: torch.Tensor  # [b, 1, t_x] predicted log-durations
    logw_: torch.Tensor  # [b, 1, t_x] log-durations from the alignment
    y_lengths: torch.Tensor  # [b] frame counts after trimming to a multiple of n_sqz


def prior_log_likelihood(z: torch.Tensor, x_m: torch.Tensor, x_logs: torch.Tensor) -> torch.Tensor:
    """``logp[b, i, j] = log N(z[:, :, j]; x_m[:, :, i], exp(x_logs[:, :, i]))`` summed over channels.

    Expanded into matrix products so no ``[b, c, t_x, t_y]`` tensor is built.
    """
    x_s_sq_r = torch.exp(-2 * x_logs)  # [b, c, t_x]
    logp1 = torch.sum(-0.5 * math.log(2 * math.pi) - x_logs, dim=1).unsqueeze(-1)  # [b, t_x, 1]
    logp2 = torch.matmul(x_s_sq_r.transpose(1, 2), -0.5 * z**2)  # [b, t_x, t_y]
    logp3 = torch.matmul((x_m * x_s_sq_r).transpose(1, 2), z)  # [b, t_x, t_y]
    logp4 = torch.sum(-0.5 * x_m**2 * x_s_sq_r, dim=1).unsqueeze(-1)  # [b, t_x, 1]
    return logp1 + logp2 + logp3 + logp4


class GlowTTS(nn.Module):
    """The reference ``FlowGenerator``: ``encoder``, ``decoder`` and (multi-speaker) ``emb_g``."""

    config_class = GlowTTSConfig

    def __init__(self, config: GlowTTSConfig):
        super().__init__()
        self.config = config
        c = config
        self.n_sqz = c.n_sqz
        self.out_channels = c.out_channels
        self.n_speakers = c.n_speakers
        self.encoder = TextEncoder(
            c.n_vocab,
            c.out_channels,
            c.hidden_channels_enc or c.hidden_channels,
            c.filter_channels,
            c.filter_channels_dp,
            c.n_heads,
            c.n_layers_enc,
            c.kernel_size,
            c.p_dropout,
            window_size=c.window_size,
            block_length=c.block_length,
            mean_only=c.mean_only,
            prenet=c.prenet,
            gin_channels=c.gin_channels,
        )
        self.decoder = FlowSpecDecoder(
            c.out_channels,
            c.hidden_channels_dec or c.hidden_channels,
            c.kernel_size_dec,
            c.dilation_rate,
            c.n_blocks_dec,
            c.n_block_layers,
            p_dropout=c.p_dropout_dec,
            n_split=c.n_split,
            n_sqz=c.n_sqz,
            sigmoid_scale=c.sigmoid_scale,
            gin_channels=c.gin_channels,
        )
        if c.n_speakers > 1:
            self.emb_g = nn.Embedding(c.n_speakers, c.gin_channels)
            nn.init.uniform_(self.emb_g.weight, -0.1, 0.1)

    @classmethod
    def from_config(cls, config: GlowTTSConfig | Mapping[str, Any]) -> "GlowTTS":
        if not isinstance(config, GlowTTSConfig):
            config = GlowTTSConfig.from_dict(config)
        return cls(config)

    def _speaker(self, g: torch.Tensor | None) -> torch.Tensor | None:
        if self.n_speakers > 1:
            if g is None:
                raise ValueError(f"this GlowTTS has {self.n_speakers} speakers: pass speaker ids as g")
            return F.normalize(self.emb_g(g)).unsqueeze(-1)  # [b, gin, 1]
        if g is not None:
            raise ValueError("this GlowTTS is single-speaker (n_speakers <= 1) but got speaker ids g")
        return None

    def trim_lengths(self, y_lengths: torch.Tensor) -> torch.Tensor:
        """Frame counts rounded down to a multiple of ``n_sqz`` (the squeeze drops a tail)."""
        return torch.div(y_lengths, self.n_sqz, rounding_mode="floor") * self.n_sqz

    def forward(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        g: torch.Tensor | None = None,
    ) -> GlowTTSOutput:
        """Training path. x ``[b, t_x]`` ids; y ``[b, out_channels, t_y]`` mels; g ``[b]`` speaker ids."""
        g = self._speaker(g)
        x_m, x_logs, logw, x_mask = self.encoder(x, x_lengths, g=g)

        y_max_length = (y.size(2) // self.n_sqz) * self.n_sqz
        y = y[:, :, :y_max_length]
        y_lengths = self.trim_lengths(y_lengths)
        z_mask = sequence_mask(y_lengths, y_max_length).unsqueeze(1).to(x_mask.dtype)
        attn_mask = x_mask.unsqueeze(-1) * z_mask.unsqueeze(2)  # [b, 1, t_x, t_y]

        z, logdet = self.decoder(y, z_mask, g=g, reverse=False)
        with torch.no_grad():
            logp = prior_log_likelihood(z, x_m, x_logs)
            attn = maximum_path(logp, attn_mask.squeeze(1)).detach()  # [b, t_x, t_y]

        z_m = torch.matmul(x_m, attn)  # [b, c, t_x] x [b, t_x, t_y]
        z_logs = torch.matmul(x_logs, attn)
        logw_ = torch.log(1e-8 + attn.sum(-1)).unsqueeze(1) * x_mask
        return GlowTTSOutput(z, z_m, z_logs, logdet, z_mask, x_m, x_logs, x_mask, attn, logw, logw_, y_lengths)

    @torch.no_grad()
    def infer(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        g: torch.Tensor | None = None,
        noise_scale: float = 0.667,
        length_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Text to mel. Returns mel ``[b, out_channels, t_y]``, mel_lengths ``[b]``, attn ``[b, t_x, t_y]``.

        ``length_scale`` > 1 speaks slower; ``noise_scale`` is the prior temperature.
        """
        g = self._speaker(g)
        x_m, x_logs, logw, x_mask = self.encoder(x, x_lengths, g=g)
        w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)
        y_lengths = torch.clamp_min(w_ceil.sum(dim=(1, 2)), 1).long()
        y_lengths = torch.clamp_min(self.trim_lengths(y_lengths), self.n_sqz)
        y_max_length = int(y_lengths.max())
        z_mask = sequence_mask(y_lengths, y_max_length).unsqueeze(1).to(x_mask.dtype)
        attn_mask = x_mask.unsqueeze(-1) * z_mask.unsqueeze(2)
        attn = generate_path(w_ceil.squeeze(1), attn_mask.squeeze(1))  # [b, t_x, t_y]

        z_m = torch.matmul(x_m, attn)
        z_logs = torch.matmul(x_logs, attn)
        noise_device = generator.device if generator is not None else z_m.device
        eps = torch.randn(z_m.shape, generator=generator, device=noise_device, dtype=z_m.dtype).to(z_m.device)
        z = (z_m + torch.exp(z_logs) * eps * noise_scale) * z_mask
        y, _ = self.decoder(z, z_mask, g=g, reverse=True)
        return y * z_mask, y_lengths, attn

    def compute_loss(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        g: torch.Tensor | None = None,
    ) -> tuple[dict[str, torch.Tensor], GlowTTSOutput]:
        outputs = self(x, x_lengths, y, y_lengths, g=g)
        return glow_tts_loss(outputs, x_lengths), outputs

    @torch.no_grad()
    def aligned_mel(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        g: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced mel for vocoder fine-tuning: align the real mel ``y`` to the text (MAS),
        expand the prior means along that alignment and decode them in reverse, with no noise.

        Returns mel ``[b, out_channels, t_y']`` and lengths ``[b]``, both trimmed to a multiple
        of ``n_sqz`` (the caller pads the few dropped frames if it needs the full length).
        """
        outputs = self(x, x_lengths, y, y_lengths, g=g)
        mel, _ = self.decoder(outputs.z_m * outputs.z_mask, outputs.z_mask, g=self._speaker(g), reverse=True)
        return mel * outputs.z_mask, outputs.y_lengths

    @torch.no_grad()
    def initialize_actnorm(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        g: torch.Tensor | None = None,
    ) -> None:
        """Data-dependent ActNorm init (the reference ``init.py``): one forward pass on a batch."""
        self.set_ddi(True)
        self(x, x_lengths, y, y_lengths, g=g)
        self.set_ddi(False)

    def set_ddi(self, ddi: bool) -> None:
        for module in self.modules():
            if isinstance(module, ActNorm):
                module.set_ddi(ddi)

    def remove_weight_norm(self) -> None:
        for module in self.modules():
            if isinstance(module, CouplingBlock):
                module.remove_weight_norm()

    def store_inverse(self) -> None:
        """Prepare for inference: bake weight norm and precompute the InvConvNear inverses."""
        self.decoder.store_inverse()


FlowGenerator = GlowTTS


def mle_loss(
    z: torch.Tensor, z_m: torch.Tensor, z_logs: torch.Tensor, logdet: torch.Tensor, z_mask: torch.Tensor
) -> torch.Tensor:
    """Negative log-likelihood per mel element (averaged over batch, channels and valid frames)."""
    nll = torch.sum(z_logs) + 0.5 * torch.sum(torch.exp(-2 * z_logs) * (z - z_m) ** 2)
    nll = nll - torch.sum(logdet)
    return nll / (torch.sum(z_mask) * z.size(1)) + 0.5 * math.log(2 * math.pi)


def duration_loss(logw: torch.Tensor, logw_: torch.Tensor, x_lengths: torch.Tensor) -> torch.Tensor:
    """Squared error of log-durations, averaged over valid tokens."""
    return torch.sum((logw - logw_) ** 2) / torch.sum(x_lengths)


def glow_tts_loss(outputs: GlowTTSOutput, x_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"mle", "duration", "total"}``; total is their sum, as in the reference training."""
    mle = mle_loss(outputs.z, outputs.z_m, outputs.z_logs, outputs.logdet, outputs.z_mask)
    duration = duration_loss(outputs.logw, outputs.logw_, x_lengths)
    return {"mle": mle, "duration": duration, "total": mle + duration}


# --- reference checkpoints -------------------------------------------------------------------

def _unwrap_checkpoint(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    if "model" in state_dict and isinstance(state_dict["model"], Mapping):
        state_dict = state_dict["model"]
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
    return strip_module_prefix(state_dict)


def to_reference_state_dict(model: GlowTTS) -> dict[str, torch.Tensor]:
    """The model's weights under the reference names (legacy ``weight_g``/``weight_v``)."""
    return to_legacy_weight_norm_names(model.state_dict())


def load_reference_state_dict(
    model: GlowTTS, state_dict: Mapping[str, Any], strict: bool = True
) -> list[str]:
    """Load a jaywalnut310/glow-tts checkpoint (``{"model": ...}`` or a bare state dict, ``module.``
    prefixes allowed) into ``model``.

    Returns a list of problems (missing/unexpected keys), empty on a perfect match. With
    ``strict`` any problem raises ``ValueError`` and nothing is loaded; shape mismatches always raise.
    """
    target = model.state_dict()
    source = match_weight_norm(_unwrap_checkpoint(state_dict), list(target))
    missing = sorted(k for k in target if k not in source)
    unexpected = sorted(k for k in source if k not in target)
    mismatched = [
        f"{k}: checkpoint {tuple(source[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in source and source[k].shape != target[k].shape
    ]
    if mismatched:
        raise ValueError(
            "checkpoint does not fit this GlowTTS config (shape mismatch):\n  " + "\n  ".join(mismatched)
        )
    problems = [f"missing from checkpoint: {k}" for k in missing]
    problems += [f"unexpected in checkpoint: {k}" for k in unexpected]
    if strict and problems:
        raise ValueError(
            f"checkpoint keys do not match the model ({len(missing)} missing, "
            f"{len(unexpected)} unexpected):\n  " + "\n  ".join(problems)
        )
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in source.items() if k in target}, strict=False)
    # ActNorm parameters now come from the checkpoint: no data-dependent re-init.
    model.set_ddi(False)
    return problems



def set_constant_durations(model: GlowTTS, frames_per_token: float) -> None:
    """Make the duration predictor say ``frames_per_token`` for every token (benchmarks of
    untrained models: speed depends on the number of frames, not on the weights)."""
    with torch.no_grad():
        model.encoder.proj_w.proj.weight.zero_()
        model.encoder.proj_w.proj.bias.fill_(math.log(frames_per_token))


# --- inference adapter (the acoustic interface) -------------------------------------------------

# The ONNX Runtime inputs (onnx_feeds, ONNX_NOISE_FRAMES_PER_TOKEN) are GlowTTSOnnx's, torch-free
# (moksori.models.onnx_runners), so an exported voice runs without torch too.


class GlowTTSAcoustic(GlowTTSOnnx, AcousticModel):
    """Text ids → mel for an eval-mode GlowTTS, with the noise passed in (see
    :mod:`moksori.models.interfaces`). With ``noise_scale=0`` the output equals ``GlowTTS.infer``.

    :meth:`forward` is the ONNX graph: everything in it is traceable with dynamic lengths (no
    Python ints taken from tensors)."""

    # The flow decoder only: the encoder (priors and the duration predictor) stays float32 so the
    # rounded durations, and with them the timing, are those of fp32.
    precision_modules = ("model.decoder",)

    def __init__(self, model: GlowTTS):
        super().__init__(model)
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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Expand the priors by the durations, add ``noise`` ``[b, c, frames]`` and run the flows
        backwards. Returns the mel and the alignment ``[b, t_x, frames]``."""
        z, z_mask, attn = self.sample_prior(x_m, x_logs, x_mask, w_ceil, y_lengths, noise, noise_scale)
        y, _ = self.model.decoder(z, z_mask, g=g, reverse=True)
        return y * z_mask, attn

    def sample_prior(
        self, x_m: torch.Tensor, x_logs: torch.Tensor, x_mask: torch.Tensor, w_ceil: torch.Tensor,
        y_lengths: torch.Tensor, noise: torch.Tensor, noise_scale: torch.Tensor | float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The priors expanded by the durations plus ``noise``: the flows' input ``z``, its frame
        mask and the alignment ``[b, t_x, frames]``."""
        z_mask = sequence_mask(y_lengths, y_lengths.max()).unsqueeze(1).to(x_mask.dtype)
        attn = generate_path(w_ceil, (x_mask.unsqueeze(-1) * z_mask.unsqueeze(2)).squeeze(1))
        z_m = torch.matmul(x_m, attn)
        z_logs = torch.matmul(x_logs, attn)
        return (z_m + torch.exp(z_logs) * noise * noise_scale) * z_mask, z_mask, attn

    def decoder_context(self) -> int:
        """Mel frames either side that change one decoded frame. Only the coupling blocks' WaveNet
        convolutions see neighbours (ActNorm and the 1x1 convolutions are per frame): each block
        reaches ``sum of (kernel - 1) / 2 x dilation`` over its layers, in squeezed frames (96 mel
        frames for the small preset, 192 for base)."""
        c = self.model.config
        block = sum((c.kernel_size_dec - 1) // 2 * c.dilation_rate**layer for layer in range(c.n_block_layers))
        return c.n_blocks_dec * block * c.n_sqz

    def stream(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource,
        first_frames: int | None = None,
    ) -> Iterator[MelPiece]:
        """With ``first_frames`` (the start of a stream): a head of about that many frames first,
        its flows run on the head and :meth:`decoder_context` frames after it only, then the rest
        from the head's end less that context; the flows being local, the two join into
        :meth:`infer`'s mel. Without it, or where the head would save nothing, one piece."""
        if ids.size(0) != 1:
            raise ValueError(f"stream takes one sentence (batch 1), got a batch of {ids.size(0)}")
        g = self.speaker_vector(None if controls.speaker_id is None else torch.full((1,), controls.speaker_id))
        x_m, x_logs, x_mask, w_ceil, y_lengths = self.durations(ids, lengths, controls.length_scale, g)
        frames, n_sqz, context = int(y_lengths[0]), self.model.n_sqz, self.decoder_context()
        z_noise = torch.from_numpy(noise(0, frames, x_m.size(1)))[None]
        z, _, _ = self.sample_prior(x_m, x_logs, x_mask, w_ceil, y_lengths, z_noise, controls.noise_scale)
        head = -(-max(first_frames or 0, 1) // n_sqz) * n_sqz
        if first_frames is None or head + context >= frames:
            yield MelPiece(self._flows(z, g)[0], True)
            return
        yield MelPiece(self._flows(z[:, :, : head + context], g)[0, :, :head])
        start = max(0, head - context)
        yield MelPiece(self._flows(z[:, :, start:], g)[0, :, head - start :], True)

    def _flows(self, z: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """The flows backwards over ``z`` ``[b, c, frames]`` (frames a multiple of n_sqz, all valid)."""
        y, _ = self.model.decoder(z, torch.ones_like(z[:, :1]), g=g, reverse=True)
        return y

    def infer(
        self, ids: torch.Tensor, lengths: torch.Tensor, controls: Controls, noise: NoiseSource
    ) -> AcousticOutput:
        sid = None if controls.speaker_id is None else torch.full((ids.size(0),), controls.speaker_id)
        g = self.speaker_vector(sid)
        x_m, x_logs, x_mask, w_ceil, y_lengths = self.durations(ids, lengths, controls.length_scale, g)
        frames = y_lengths.tolist()
        z_noise = torch.zeros(ids.size(0), x_m.size(1), max(frames))
        for row, n_frames in enumerate(frames):
            z_noise[row, :, :n_frames] = torch.from_numpy(noise(row, n_frames, x_m.size(1)))
        mel, attn = self.decode(x_m, x_logs, x_mask, w_ceil, y_lengths, z_noise, controls.noise_scale, g)
        return AcousticOutput(mel, y_lengths, attn)

    def teacher_forced_mel(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The Glow-TTS mel aligned to the real one (MAS), decoded from the prior means without
        noise; up to ``n_sqz - 1`` tail frames are dropped."""
        g = batch["speaker"] if self.model.n_speakers > 1 else None
        return self.model.aligned_mel(batch["ids"], batch["ids_lengths"], batch["mel"], batch["mel_lengths"], g=g)

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
        mel, _ = self.decode(x_m, x_logs, x_mask, w_ceil, y_lengths, noise.index_select(2, frames), scales[0], g)
        return mel

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        """Inputs ``input`` int64 [1, T]; ``input_lengths`` int64 [1]; ``scales`` float32 [2] =
        [noise_scale, length_scale]; ``noise`` float32 [1, n_mels, N] (frame j uses column j mod N);
        ``sid`` int64 [1] (multi-speaker only). Output ``mel`` float32 [1, n_mels, frames]."""
        n_tokens = 16
        args: tuple[torch.Tensor, ...] = (
            torch.ones(1, n_tokens, dtype=torch.long),
            torch.tensor([n_tokens], dtype=torch.long),
            torch.tensor([0.667, 1.0], dtype=torch.float32),
            torch.zeros(1, n_mels, 64),
        )
        names = ["input", "input_lengths", "scales", "noise"]
        if self.multi_speaker:
            args += (torch.zeros(1, dtype=torch.long),)
            names.append("sid")
        dynamic_axes = {"input": {1: "phonemes"}, "noise": {2: "noise_frames"}, "mel": {2: "frames"}}
        return OnnxGraph(args, names, ["mel"], dynamic_axes)


__all__ = [
    "GlowTTSAcoustic",
    "DurationPredictor",
    "FlowGenerator",
    "FlowSpecDecoder",
    "GlowTTS",
    "GlowTTSConfig",
    "GlowTTSOutput",
    "TextEncoder",
    "duration_loss",
    "glow_tts_loss",
    "load_reference_state_dict",
    "mle_loss",
    "prior_log_likelihood",
    "to_reference_state_dict",
]

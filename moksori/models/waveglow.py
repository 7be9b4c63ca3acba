"""WaveGlow (Prenger, Valle & Catanzaro, 2019): a flow vocoder trained by maximum likelihood,
its loss, its denoiser and its inference adapter.

Module and parameter names follow NVIDIA/waveglow (``upsample``, ``WN.N.start/in_layers/
res_skip_layers/cond_layer/end``, ``convinv.N.conv``) and the config its ``config.json`` names
(``n_mel_channels``, ``n_flows``, ``n_group``, ``n_early_every``, ``n_early_size``,
``WN_config``), so NVIDIA's published checkpoints import (:func:`load_reference_waveglow`; the
pickled model objects are read without running them by :func:`moksori.checkpoint.read_pickled_module`).

Layout of the flow's variables: audio ``[b, samples]`` is cut into groups of ``n_group``
consecutive samples, ``[b, n_group, samples / n_group]`` (channel k of group j = sample
``j·n_group + k``); the upsampled mel is grouped the same way, ``[b, n_mels·n_group, groups]``
(channel ``m·n_group + k``). ``z`` is ``[b, n_group, groups]``: the ``n_early_size`` channels
output early after every ``n_early_every`` flows first, then the remaining ones.

Streaming: a mel frame changes audio far away (every flow's WN sees ±(kernel_size-1)/2·(2^n_layers - 1)
groups, ≈ ±16 frames in the published config, and twelve flows stack), and the noise is drawn per
sentence, so the adapter declares ``context_frames = None``: streaming vocodes whole sentences.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moksori.checkpoint import CheckpointError, fold_weight_norm, match_weight_norm, read_pickled_module, torch_load
from moksori.models.interfaces import Controls, OnnxGraph, Vocoder
from moksori.models.layers.common import (
    apply_weight_norm,
    fused_add_tanh_sigmoid_multiply,
    remove_weight_norm,
)
from moksori.models.onnx_runners import (
    WAVEGLOW_BIAS_FRAMES,
    WAVEGLOW_DENOISE,
    WAVEGLOW_SIGMA,
    SpectralDenoiser,
    WaveGlowOnnx,
)

# NVIDIA's sampling temperature and denoiser strength, and the denoiser's bias frames (onnx_runners').
DEFAULT_SIGMA = WAVEGLOW_SIGMA
DEFAULT_DENOISE = WAVEGLOW_DENOISE
BIAS_FRAMES = WAVEGLOW_BIAS_FRAMES

_WN_KEYS = ("n_layers", "n_channels", "kernel_size")


@dataclass
class WaveGlowConfig:
    """NVIDIA's ``waveglow_config`` plus the framing (``sampling_rate``, ``hop_size`` = the
    upsampler's stride, ``win_size`` = its kernel) and training settings (``segment_size``
    samples, ``learning_rate``, ``sigma`` of the loss)."""

    n_mel_channels: int = 80
    n_flows: int = 12
    n_group: int = 8
    n_early_every: int = 4
    n_early_size: int = 2
    WN_config: dict[str, int] = field(default_factory=lambda: {"n_layers": 8, "n_channels": 256, "kernel_size": 3})
    sampling_rate: int = 22050
    hop_size: int = 256
    win_size: int = 1024
    segment_size: int = 16384
    learning_rate: float = 1e-4
    sigma: float = 1.0

    def __post_init__(self) -> None:
        self.WN_config = {key: int(value) for key, value in dict(self.WN_config).items()}
        self.validate()

    @property
    def num_mels(self) -> int:  # the name the bundle's framing check reads
        return self.n_mel_channels

    @property
    def n_remaining_channels(self) -> int:
        return self.n_group - self.n_early_size * self.n_early_outputs

    @property
    def n_early_outputs(self) -> int:
        return (self.n_flows - 1) // self.n_early_every if self.n_early_every > 0 else 0

    def validate(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"WaveGlowConfig.{name}: {why}")

        for name in ("n_mel_channels", "n_flows", "n_group", "n_early_every", "hop_size", "win_size"):
            if int(getattr(self, name)) < 1:
                fail(name, f"must be positive, got {getattr(self, name)}")
        if self.n_group % 2:
            fail("n_group", f"must be even, got {self.n_group}")
        if self.n_early_size < 0 or self.n_early_size % 2:
            fail("n_early_size", f"must be even and >= 0, got {self.n_early_size}")
        if self.n_remaining_channels < 2:
            fail("n_early_size", f"outputs {self.n_early_size * self.n_early_outputs} of {self.n_group} channels "
                 f"early over {self.n_flows} flows; at least 2 must remain")
        if set(self.WN_config) != set(_WN_KEYS):
            fail("WN_config", f"needs exactly the keys {', '.join(_WN_KEYS)}, got {sorted(self.WN_config)}")
        if self.WN_config["kernel_size"] % 2 != 1:
            fail("WN_config", f"kernel_size must be odd, got {self.WN_config['kernel_size']}")
        if self.WN_config["n_channels"] < 2 or self.WN_config["n_channels"] % 2:
            fail("WN_config", f"n_channels must be even and >= 2, got {self.WN_config['n_channels']}")
        if self.WN_config["n_layers"] < 1:
            fail("WN_config", f"n_layers must be positive, got {self.WN_config['n_layers']}")
        if self.hop_size % self.n_group:
            fail("hop_size", f"{self.hop_size} must be a multiple of n_group {self.n_group}")
        if self.win_size < self.hop_size:
            fail("win_size", f"{self.win_size} must be >= hop_size {self.hop_size}")
        if self.segment_size < self.hop_size or self.segment_size % self.hop_size:
            fail("segment_size", f"{self.segment_size} must be a positive multiple of hop_size {self.hop_size}")
        if not self.sigma > 0:
            fail("sigma", f"must be positive, got {self.sigma}")

    @classmethod
    def preset(cls, name: str) -> "WaveGlowConfig":
        """``base``: NVIDIA's published config (12 flows, WN 8 layers × 256 channels, ≈88M
        parameters); ``small``: 8 flows of 8 layers × 128 channels for CPUs; ``tiny``: tests."""
        presets: dict[str, dict[str, Any]] = {
            "base": {},
            "small": {"n_flows": 8, "WN_config": {"n_layers": 8, "n_channels": 128, "kernel_size": 3}},
            "tiny": {
                "n_flows": 4, "n_early_every": 2,
                "WN_config": {"n_layers": 2, "n_channels": 16, "kernel_size": 3}, "win_size": 512,
                "segment_size": 2048,
            },
        }
        if name not in presets:
            raise ValueError(f"unknown WaveGlow preset {name!r}; choose from {sorted(presets)}")
        return cls(**presets[name])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "WaveGlowConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"WaveGlowConfig: unknown key(s) {', '.join(unknown)}")
        return cls(**dict(data))


class Invertible1x1Conv(nn.Module):
    """Channel mixing by an orthogonal-initialised matrix ``W`` (``conv.weight`` ``[c, c, 1]``);
    forward also returns ``log|det W|`` × the number of columns it mixes."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c, c, kernel_size=1, bias=False)
        w = torch.linalg.qr(torch.randn(c, c))[0]
        if torch.det(w) < 0:
            w[:, 0] = -w[:, 0]
        with torch.no_grad():
            self.conv.weight.copy_(w.unsqueeze(-1))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.conv.weight.squeeze(-1)
        # slogdet in float32 at least (no half-precision kernel; double stays double for tests)
        log_det_w = z.size(0) * z.size(2) * torch.linalg.slogdet(w if w.dtype == torch.float64 else w.float())[1]
        return self.conv(z), log_det_w

    def inverse_weight(self) -> torch.Tensor:
        stored = getattr(self, "W_inverse", None)
        if stored is not None:
            return stored
        return torch.linalg.inv(self.conv.weight.squeeze(-1).double()).to(self.conv.weight.dtype).unsqueeze(-1)

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        return F.conv1d(z, self.inverse_weight().to(z.dtype))

    def store_inverse(self) -> None:
        # Non-persistent: follows .to(device/dtype) but stays out of the state dict.
        self.register_buffer("W_inverse", self.inverse_weight().detach().clone(), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if getattr(self, "W_inverse", None) is not None:  # new weights: recompute a stored inverse
            self.W_inverse = None
            self.store_inverse()


class WN(nn.Module):
    """The coupling network: ``start`` (1×1 into ``n_channels``), gated dilated convolutions
    (dilation 2^i) conditioned on the grouped mel through one ``cond_layer`` for all layers,
    residual and skip outputs (``res_skip_layers``), and a zero-initialised ``end`` giving
    ``(b, log_s)`` for the other half of the channels."""

    def __init__(self, n_in_channels: int, n_mel_channels: int, n_layers: int, n_channels: int, kernel_size: int):
        super().__init__()
        self.n_layers = n_layers
        self.n_channels = n_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.start = apply_weight_norm(nn.Conv1d(n_in_channels, n_channels, 1))
        # A zero end makes every coupling the identity at first, which keeps early training stable.
        self.end = nn.Conv1d(n_channels, 2 * n_in_channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)
        self.cond_layer = apply_weight_norm(nn.Conv1d(n_mel_channels, 2 * n_channels * n_layers, 1))
        for i in range(n_layers):
            dilation = 2**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(apply_weight_norm(
                nn.Conv1d(n_channels, 2 * n_channels, kernel_size, dilation=dilation, padding=padding)))
            # The last layer has only a skip output.
            res_skip_channels = 2 * n_channels if i < n_layers - 1 else n_channels
            self.res_skip_layers.append(apply_weight_norm(nn.Conv1d(n_channels, res_skip_channels, 1)))

    def forward(self, audio: torch.Tensor, spect: torch.Tensor) -> torch.Tensor:
        c = self.n_channels
        audio = self.start(audio)
        output = torch.zeros_like(audio)
        spect = self.cond_layer(spect)
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            acts = fused_add_tanh_sigmoid_multiply(in_layer(audio), spect[:, 2 * c * i : 2 * c * (i + 1)], c)
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                audio = audio + res_skip[:, :c]
                output = output + res_skip[:, c:]
            else:
                output = output + res_skip
        return self.end(output)

    def remove_weight_norm(self) -> None:
        for layer in [self.start, self.cond_layer, *self.in_layers, *self.res_skip_layers]:
            remove_weight_norm(layer)


class WaveGlow(nn.Module):
    """Mel-conditioned flow from grouped audio to ``z``: ``forward(mel, audio)`` for training,
    :meth:`reverse` (``z → audio``) and :meth:`infer` (``sigma`` · noise → audio) for synthesis."""

    def __init__(self, config: WaveGlowConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.n_flows, self.n_group = c.n_flows, c.n_group
        self.n_early_every, self.n_early_size = c.n_early_every, c.n_early_size
        self.upsample = nn.ConvTranspose1d(c.n_mel_channels, c.n_mel_channels, c.win_size, stride=c.hop_size)
        self.WN = nn.ModuleList()
        self.convinv = nn.ModuleList()
        n_half, n_remaining = c.n_group // 2, c.n_group
        for k in range(c.n_flows):
            if self._early_at(k):
                n_half -= c.n_early_size // 2
                n_remaining -= c.n_early_size
            self.convinv.append(Invertible1x1Conv(n_remaining))
            self.WN.append(WN(n_half, c.n_mel_channels * c.n_group, **c.WN_config))
        self.n_remaining_channels = n_remaining

    @property
    def hop_length(self) -> int:
        return self.config.hop_size

    def _early_at(self, k: int) -> bool:
        return k > 0 and k % self.n_early_every == 0

    def grouped_mel(self, mel: torch.Tensor, samples: int) -> torch.Tensor:
        """``[b, n_mels, frames]`` → upsampled and grouped ``[b, n_mels·n_group, samples/n_group]``
        (the first ``samples`` of the transposed convolution's output)."""
        spect = self.upsample(mel)[:, :, :samples]
        b, m = spect.shape[:2]
        return spect.reshape(b, m, -1, self.n_group).permute(0, 1, 3, 2).reshape(b, m * self.n_group, -1)

    def forward(
        self, mel: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``mel`` ``[b, n_mels, frames]``, ``audio`` ``[b, samples]`` (samples a multiple of
        ``n_group``, at most ``(frames - 1)·hop + win``) → ``(z, log_s list, log_det_W list)``."""
        samples = audio.size(1)
        if samples % self.n_group:
            raise ValueError(f"audio length {samples} must be a multiple of n_group {self.n_group}")
        if self.upsample_length(mel.size(2)) < samples:
            raise ValueError(f"{mel.size(2)} mel frames cover at most {self.upsample_length(mel.size(2))} samples, "
                             f"got {samples}")
        spect = self.grouped_mel(mel, samples)
        audio = audio.reshape(audio.size(0), -1, self.n_group).transpose(1, 2)
        early: list[torch.Tensor] = []
        log_s_list: list[torch.Tensor] = []
        log_det_w_list: list[torch.Tensor] = []
        for k in range(self.n_flows):
            if self._early_at(k):
                early.append(audio[:, : self.n_early_size])
                audio = audio[:, self.n_early_size :]
            audio, log_det_w = self.convinv[k](audio)
            log_det_w_list.append(log_det_w)
            n_half = audio.size(1) // 2
            audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
            output = self.WN[k](audio_0, spect)
            b, log_s = output[:, :n_half], output[:, n_half:]
            audio = torch.cat([audio_0, torch.exp(log_s) * audio_1 + b], 1)
            log_s_list.append(log_s)
        return torch.cat([*early, audio], 1), log_s_list, log_det_w_list

    def upsample_length(self, frames: int) -> int:
        return (frames - 1) * self.config.hop_size + self.config.win_size

    def reverse(self, mel: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`forward`: ``z`` ``[b, n_group, groups]`` → audio ``[b, groups·n_group]``."""
        spect = self.grouped_mel(mel, z.size(2) * self.n_group)
        n_early = sum(1 for k in range(self.n_flows) if self._early_at(k))
        audio = z[:, self.n_early_size * n_early :]
        for k in reversed(range(self.n_flows)):
            n_half = audio.size(1) // 2
            audio_0, audio_1 = audio[:, :n_half], audio[:, n_half:]
            output = self.WN[k](audio_0, spect)
            b, log_s = output[:, :n_half], output[:, n_half:]
            audio = torch.cat([audio_0, (audio_1 - b) * torch.exp(-log_s)], 1)
            audio = self.convinv[k].reverse(audio)
            if self._early_at(k):
                j = k // self.n_early_every - 1  # the j-th early output (in forward order)
                audio = torch.cat([z[:, j * self.n_early_size : (j + 1) * self.n_early_size], audio], 1)
        return audio.transpose(1, 2).reshape(audio.size(0), -1)

    def groups(self, frames: int) -> int:
        """Groups of ``n_group`` samples that ``frames`` mel frames give at inference (frames·hop samples)."""
        return frames * self.config.hop_size // self.n_group

    def infer(self, mel: torch.Tensor, sigma: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[b, n_mels, frames]`` → ``[b, frames·hop]`` from ``sigma``-scaled Gaussian noise."""
        z = torch.randn(mel.size(0), self.n_group, self.groups(mel.size(2)), generator=generator)
        return self.reverse(mel, (sigma * z).to(device=mel.device, dtype=mel.dtype))

    def remove_weight_norm(self) -> None:
        for wn in self.WN:
            wn.remove_weight_norm()

    def store_inverse(self) -> None:
        for conv in self.convinv:
            conv.store_inverse()

    def receptive_field_frames(self) -> int:
        """Mel frames either side that can change a frame's audio through the WN stacks (the
        transposed convolution adds ⌈win/hop⌉): an upper bound, measured in the tests."""
        k, layers = self.config.WN_config["kernel_size"], self.config.WN_config["n_layers"]
        groups = self.n_flows * (k - 1) // 2 * (2**layers - 1)
        hop = self.config.hop_size
        return math.ceil(groups * self.n_group / hop) + math.ceil(self.config.win_size / hop)


class WaveGlowLoss(nn.Module):
    """Negative log-likelihood per audio sample: ``Σz²/(2σ²) − Σlog s − Σlog|det W|``, divided
    by the number of samples (NVIDIA's loss; the constant of the Gaussian is left out)."""

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, model_output: tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]) -> torch.Tensor:
        z, log_s_list, log_det_w_list = model_output
        log_s_total = sum(torch.sum(log_s) for log_s in log_s_list)
        log_det_w_total = sum(log_det_w_list)
        loss = torch.sum(z * z) / (2 * self.sigma * self.sigma) - log_s_total - log_det_w_total
        return loss / z.numel()


# --- denoiser ------------------------------------------------------------------------------


def model_bias_audio(model: WaveGlow, frames: int = BIAS_FRAMES) -> np.ndarray:
    """``model``'s output ``[samples]`` (float32) for ``frames`` of zero mel with zero noise."""
    parameter = next(model.parameters())
    mel = torch.zeros(1, model.config.n_mel_channels, frames, device=parameter.device, dtype=parameter.dtype)
    with torch.no_grad():
        z = torch.zeros(1, model.n_group, model.groups(frames), device=mel.device, dtype=mel.dtype)
        return model.reverse(mel, z)[0].float().cpu().numpy()


class Denoiser(SpectralDenoiser):
    """:class:`~moksori.models.onnx_runners.SpectralDenoiser` (the NumPy maths the ONNX path runs)
    for tensors: called on audio ``[samples]`` or ``[b, samples]`` of any dtype and device, it
    returns the denoised audio with the same shape, dtype and device."""

    def __init__(self, bias_audio: torch.Tensor | np.ndarray, n_fft: int = 1024, hop: int = 256,
                 win: int = 1024) -> None:
        if isinstance(bias_audio, torch.Tensor):
            bias_audio = bias_audio.detach().float().cpu().numpy()
        super().__init__(bias_audio, n_fft=n_fft, hop=hop, win=win)

    @classmethod
    def for_vocoder(cls, model: WaveGlow, frames: int = BIAS_FRAMES) -> "Denoiser":
        """The denoiser of ``model``: its bias is :func:`model_bias_audio`."""
        c = model.config
        return cls(model_bias_audio(model, frames), n_fft=c.win_size, hop=c.hop_size, win=c.win_size)

    def __call__(self, audio: torch.Tensor, strength: float = DEFAULT_DENOISE) -> torch.Tensor:
        out = self.denoise(audio.detach().float().cpu().numpy(), strength)
        return torch.from_numpy(out).to(device=audio.device, dtype=audio.dtype)


# --- inference adapter ---------------------------------------------------------------------


class WaveGlowVocoder(WaveGlowOnnx, Vocoder):
    """WaveGlow behind the vocoder interface. The controls, the noise (``sigma`` · a draw seeded by
    ``controls.seed`` or else the adapter's ``seed``) and the denoiser (``controls.denoise``) are
    :class:`~moksori.models.onnx_runners.WaveGlowOnnx`'s, shared with the ONNX path; the bias is
    measured on the PyTorch model (on the ONNX path: on the graph, as without torch). On a GPU,
    ``half()`` runs the flows in float16; noise and the denoiser stay float32 (the denoiser on
    the CPU)."""

    context_frames = None  # whole sentences: see the module docstring
    denoiser_class = Denoiser

    def __init__(self, model: WaveGlow, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.seed = seed

    @property
    def n_group(self) -> int:  # type: ignore[override]
        return self.model.n_group

    @property
    def hop_size(self) -> int:  # type: ignore[override]
        return self.model.config.hop_size

    @property
    def win_size(self) -> int:  # type: ignore[override]
        return self.model.config.win_size

    @property
    def n_mel_channels(self) -> int:  # type: ignore[override]
        return self.model.config.n_mel_channels

    def bias_audio(self, graph: Any = None) -> np.ndarray:
        return model_bias_audio(self.model) if graph is None else super().bias_audio(graph)

    def noise(self, rows: int, groups: int, sigma: float, seed: int | None = None) -> torch.Tensor:
        """:meth:`z_noise` as a tensor ``[rows, n_group, groups]`` (float32, CPU), every row the
        same draw (a row's noise does not depend on the batch); ``seed`` None: the adapter's."""
        z = self.z_noise(groups, sigma, self.seed if seed is None else seed)
        return torch.from_numpy(z).unsqueeze(0).expand(rows, -1, -1)

    def infer(self, mel: torch.Tensor, controls: Controls | None = None) -> torch.Tensor:
        if mel.dim() not in (2, 3) or mel.shape[-2] != self.model.config.n_mel_channels:
            raise ValueError(f"expected mel of shape (batch, {self.model.config.n_mel_channels}, frames), "
                             f"got {tuple(mel.shape)}")
        sigma, denoise, seed = self.settings(controls)
        batch = mel.unsqueeze(0) if mel.dim() == 2 else mel
        parameter = next(self.model.parameters())
        z = self.noise(batch.size(0), self.model.groups(batch.size(2)), sigma, seed)
        wave = self.model.reverse(batch.to(parameter.device, parameter.dtype), z.to(parameter.device, parameter.dtype))
        wave = self.finish(wave.float(), denoise)
        return (wave[0] if mel.dim() == 2 else wave).to(mel.device)

    def finish(self, wave: torch.Tensor, denoise: float) -> torch.Tensor:
        return self.denoiser()(wave, denoise) if denoise > 0 else wave

    # --- ONNX: the flow with z as an input; onnx_feeds and onnx_finish are WaveGlowOnnx's -------
    def forward(self, mel: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model.reverse(mel, z)

    def onnx_graph(self, n_mels: int) -> OnnxGraph:
        frames = 12
        args = (torch.zeros(1, n_mels, frames), torch.zeros(1, self.n_group, self.model.groups(frames)))
        return OnnxGraph(args, ["mel", "z"], ["wave"],
                         {"mel": {2: "frames"}, "z": {2: "groups"}, "wave": {1: "samples"}})


# --- NVIDIA checkpoints --------------------------------------------------------------------


def _wn_group(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def _weight(state: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """A layer's plain weight from ``weight`` or weight-norm ``weight_g``/``weight_v``."""
    if f"{prefix}weight" in state:
        return state.pop(f"{prefix}weight")
    if f"{prefix}weight_g" in state and f"{prefix}weight_v" in state:
        return fold_weight_norm(state.pop(f"{prefix}weight_g"), state.pop(f"{prefix}weight_v"))
    raise ValueError(f"no weight for {prefix.rstrip('.')}")


def reference_config(state: Mapping[str, torch.Tensor]) -> WaveGlowConfig:
    """The config that NVIDIA WaveGlow weights were trained with, read off their shapes."""
    flows = sorted({int(key.split(".")[1]) for key in state if key.startswith("convinv.")})
    if not flows or "upsample.weight" not in state:
        raise ValueError("not WaveGlow weights: no upsample.weight / convinv.N.conv.weight")
    n_mels, _, win = state["upsample.weight"].shape
    sizes = [state[f"convinv.{k}.conv.weight"].shape[0] for k in flows]
    early_at = [k for k in range(1, len(sizes)) if sizes[k] < sizes[k - 1]]
    n_early_every = early_at[0] if early_at else len(sizes)
    n_early_size = sizes[0] - sizes[early_at[0]] if early_at else 0
    in_layers = {int(key.split(".")[3]) for key in state if key.startswith("WN.0.in_layers.")}
    v_or_w = state.get("WN.0.in_layers.0.weight_v", state.get("WN.0.in_layers.0.weight"))
    if v_or_w is None:
        raise ValueError("not WaveGlow weights: no WN.0.in_layers.0 weight")
    return WaveGlowConfig(
        n_mel_channels=int(n_mels), n_flows=len(sizes), n_group=int(sizes[0]), n_early_every=n_early_every,
        n_early_size=int(n_early_size), win_size=int(win), hop_size=256,
        WN_config={"n_layers": len(in_layers), "n_channels": int(v_or_w.shape[1]), "kernel_size": int(v_or_w.shape[2])},
    )


def reference_state_dict(state: Mapping[str, torch.Tensor], config: WaveGlowConfig) -> dict[str, torch.Tensor]:
    """NVIDIA weights (weight norm as ``weight_g``/``weight_v`` or removed; ``cond_layer`` or the
    older per-layer ``cond_layers``) → plain weights under moksori's names (weight norm folded),
    for a :class:`WaveGlow` whose weight norm is removed — or load with :func:`load_reference_waveglow`."""
    state = {key.removeprefix("module."): value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if any(".res_layers." in key or ".skip_layers." in key for key in state):
        raise ValueError("this is NVIDIA's pre-release layout (separate res_layers/skip_layers, glow_old.py); "
                         "convert it with NVIDIA's convert_model.py first")
    out = {"upsample.weight": state.pop("upsample.weight"), "upsample.bias": state.pop("upsample.bias")}
    layers = config.WN_config["n_layers"]
    for k in range(config.n_flows):
        out[f"convinv.{k}.conv.weight"] = state.pop(f"convinv.{k}.conv.weight")
        wn = f"WN.{k}."
        convs = ["start", *(f"in_layers.{i}" for i in range(layers)), *(f"res_skip_layers.{i}" for i in range(layers))]
        for name in convs:
            out[f"{wn}{name}.weight"] = _weight(state, f"{wn}{name}.")
            out[f"{wn}{name}.bias"] = state.pop(f"{wn}{name}.bias")
        out[f"{wn}end.weight"], out[f"{wn}end.bias"] = state.pop(f"{wn}end.weight"), state.pop(f"{wn}end.bias")
        if f"{wn}cond_layers.0.bias" in state:  # older: one conditioning conv per layer, stacked in order
            out[f"{wn}cond_layer.weight"] = torch.cat([_weight(state, f"{wn}cond_layers.{i}.") for i in range(layers)])
            out[f"{wn}cond_layer.bias"] = torch.cat([state.pop(f"{wn}cond_layers.{i}.bias") for i in range(layers)])
        else:
            out[f"{wn}cond_layer.weight"] = _weight(state, f"{wn}cond_layer.")
            out[f"{wn}cond_layer.bias"] = state.pop(f"{wn}cond_layer.bias")
    if state:
        raise ValueError(f"unexpected WaveGlow tensors: {', '.join(sorted(state)[:10])}")
    return out


def load_reference_waveglow(state: Mapping[str, torch.Tensor]) -> WaveGlow:
    """A ready-to-run :class:`WaveGlow` (weight norm removed, inverses stored, eval mode) from
    NVIDIA weights as a flat state dict (e.g. from :func:`moksori.checkpoint.read_pickled_module`)."""
    config = reference_config(state)
    model = WaveGlow(config)
    model.remove_weight_norm()
    try:
        model.load_state_dict(reference_state_dict(state, config))
    except (KeyError, RuntimeError) as error:
        raise ValueError(f"the WaveGlow weights do not fit the config read off their shapes ({error})") from error
    model.eval()
    model.store_inverse()
    return model


# The classes NVIDIA's checkpoints pickle (glow.py; glow_old.py for the oldest files).
NVIDIA_CLASSES = (
    "glow.WaveGlow", "glow.WN", "glow.Invertible1x1Conv", "glow_old.WaveGlow", "glow_old.WN",
    "__main__.WaveGlow", "__main__.WN", "__main__.Invertible1x1Conv",
)


def import_reference(path: str | Path) -> tuple[WaveGlowConfig, dict[str, torch.Tensor]]:
    """Config and state dict (moksori's names, weight norm as parametrizations, float32) of an
    NVIDIA WaveGlow checkpoint: the pickled ``{"model": <glow.WaveGlow>}`` files NVIDIA
    publishes (read without running their code) or a plain state dict. NVIDIA's mels are
    centred (Tacotron2's STFT) where moksori's use HiFi-GAN's padding: same parameters, frames
    shifted by half a hop; fine-tune briefly on your data for the best match."""
    try:
        state = read_pickled_module(path, NVIDIA_CLASSES)
    except CheckpointError as pickled_error:
        try:
            plain = torch_load(path)
        except Exception:
            raise pickled_error from None
        plain = plain.get("model", plain) if isinstance(plain, Mapping) else plain
        if not isinstance(plain, Mapping):
            raise pickled_error from None
        state = dict(plain)
    state = {key: value.float() if value.is_floating_point() else value for key, value in state.items()
             if isinstance(value, torch.Tensor)}
    config = reference_config(state)
    target = WaveGlow(config).state_dict()
    converted = match_weight_norm(reference_state_dict(state, config), target.keys())
    missing = sorted(set(target) - set(converted))
    if missing:
        raise CheckpointError(f"{path}: WaveGlow weights lack {', '.join(missing[:10])}")
    return config, {key: converted[key] for key in target}


__all__ = [
    "DEFAULT_DENOISE",
    "NVIDIA_CLASSES",
    "DEFAULT_SIGMA",
    "Denoiser",
    "Invertible1x1Conv",
    "WN",
    "WaveGlow",
    "WaveGlowConfig",
    "WaveGlowLoss",
    "WaveGlowVocoder",
    "import_reference",
    "load_reference_waveglow",
    "model_bias_audio",
    "reference_config",
    "reference_state_dict",
]

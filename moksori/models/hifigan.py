"""HiFi-GAN vocoder (Kong, Kim & Bae, 2020): generator, MPD/MSD discriminators, losses.

Module and parameter names follow the reference implementation (jik876/hifi-gan) so that
its published checkpoints load: ``g_*`` through :func:`load_reference_generator` and ``do_*``
(discriminators, for fine-tuning) through :func:`load_reference_discriminators`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from moksori.checkpoint import fold_weight_norm
from moksori.models.layers.common import vocode

LRELU_SLOPE = 0.1
MEL_LOSS_WEIGHT = 45.0
FEATURE_LOSS_WEIGHT = 2.0
MPD_PERIODS = (2, 3, 5, 7, 11)

# Keys of the reference config files that describe the run, not the model; accepted and dropped.
# Keys of the reference config_v*.json (and of older moksori configs: batch_size) that the model
# does not use; read and dropped. The batch size is the recipe's data.batch_size.
_REFERENCE_RUNTIME_KEYS = frozenset({"num_gpus", "seed", "num_workers", "dist_config", "num_freq", "batch_size"})


@dataclass
class HiFiGANConfig:
    resblock: str = "1"
    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )
    num_mels: int = 80
    # Audio framing: the generator's total upsampling must equal hop_size.
    sampling_rate: int = 22050
    n_fft: int = 1024
    hop_size: int = 256
    win_size: int = 1024
    fmin: float = 0.0
    fmax: float | None = 8000.0
    fmax_for_loss: float | None = None
    # Training.
    segment_size: int = 8192
    learning_rate: float = 2e-4
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    lr_decay: float = 0.999

    def __post_init__(self) -> None:
        self.upsample_rates = [int(u) for u in self.upsample_rates]
        self.upsample_kernel_sizes = [int(k) for k in self.upsample_kernel_sizes]
        self.resblock_kernel_sizes = [int(k) for k in self.resblock_kernel_sizes]
        self.resblock_dilation_sizes = [[int(d) for d in ds] for ds in self.resblock_dilation_sizes]
        self.resblock = str(self.resblock)
        self.validate()

    def validate(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"HiFiGANConfig.{name}: {why}")

        if self.resblock not in ("1", "2"):
            fail("resblock", f"must be '1' or '2', got {self.resblock!r}")
        if not self.upsample_rates:
            fail("upsample_rates", "must not be empty")
        if len(self.upsample_kernel_sizes) != len(self.upsample_rates):
            fail(
                "upsample_kernel_sizes",
                f"has {len(self.upsample_kernel_sizes)} entries but upsample_rates has "
                f"{len(self.upsample_rates)}",
            )
        product = math.prod(self.upsample_rates)
        if product != self.hop_size:
            fail(
                "upsample_rates",
                f"product {self.upsample_rates} = {product} must equal hop_size {self.hop_size}",
            )
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            # Padding (k - u) // 2 gives exactly u samples per input frame only when k - u is even.
            if u < 1 or k < u or (k - u) % 2:
                fail(
                    "upsample_kernel_sizes",
                    f"kernel {k} for rate {u} must be >= the rate and differ from it by an even number",
                )
        if not self.resblock_kernel_sizes:
            fail("resblock_kernel_sizes", "must not be empty")
        if len(self.resblock_dilation_sizes) != len(self.resblock_kernel_sizes):
            fail(
                "resblock_dilation_sizes",
                f"has {len(self.resblock_dilation_sizes)} entries but resblock_kernel_sizes has "
                f"{len(self.resblock_kernel_sizes)}",
            )
        if any(not ds for ds in self.resblock_dilation_sizes):
            fail("resblock_dilation_sizes", "every entry needs at least one dilation")
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            fail(
                "upsample_initial_channel",
                f"{self.upsample_initial_channel} must be divisible by 2**{len(self.upsample_rates)} "
                "(channels halve at every upsampling layer)",
            )
        if self.num_mels < 1:
            fail("num_mels", f"must be positive, got {self.num_mels}")
        if self.segment_size % self.hop_size:
            fail("segment_size", f"{self.segment_size} must be a multiple of hop_size {self.hop_size}")

    @classmethod
    def preset(cls, name: str) -> "HiFiGANConfig":
        """Published configs "v1", "v2", "v3", plus a "tiny" one for tests."""
        presets: dict[str, dict[str, Any]] = {
            "v1": {},
            "v2": {"upsample_initial_channel": 128},
            "v3": {
                "resblock": "2",
                "upsample_rates": [8, 8, 4],
                "upsample_kernel_sizes": [16, 16, 8],
                "upsample_initial_channel": 256,
                "resblock_kernel_sizes": [3, 5, 7],
                "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]],
            },
            "tiny": {
                "upsample_rates": [8, 8, 4],
                "upsample_kernel_sizes": [16, 16, 8],
                "upsample_initial_channel": 32,
                "resblock_kernel_sizes": [3, 5],
                "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
                "segment_size": 2048,
            },
        }
        if name not in presets:
            raise ValueError(f"unknown HiFi-GAN preset {name!r}; choose from {sorted(presets)}")
        return cls(**presets[name])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HiFiGANConfig":
        """Build from our own ``to_dict`` output or a reference ``config_v*.json`` dict."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - _REFERENCE_RUNTIME_KEYS)
        if unknown:
            raise ValueError(f"HiFiGANConfig: unknown keys {unknown}")
        return cls(**{k: v for k, v in data.items() if k in known})


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def init_weights(module: nn.Module, std: float = 0.01) -> None:
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        module.weight.data.normal_(0.0, std)


def _remove_norms(module: nn.Module) -> None:
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight")


class ResBlock1(nn.Module):
    """Residual block with pairs of (dilated conv, plain conv); 'resblock 1' in the paper."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=get_padding(kernel_size, d)))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1,
                                  padding=get_padding(kernel_size, 1)))
            for _ in dilation
        )
        self.convs1.apply(init_weights)
        self.convs2.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = x + xt
        return x

    def remove_weight_norm(self) -> None:
        _remove_norms(self)


class ResBlock2(nn.Module):
    """Lighter residual block with one dilated conv per step; 'resblock 2' (used by V3)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=get_padding(kernel_size, d)))
            for d in dilation
        )
        self.convs.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = x + c(F.leaky_relu(x, LRELU_SLOPE))
        return x

    def remove_weight_norm(self) -> None:
        _remove_norms(self)


class Generator(nn.Module):
    """Mel spectrogram ``(batch, num_mels, frames)`` → waveform ``(batch, 1, frames * hop)``."""

    config_class = HiFiGANConfig

    def __init__(self, config: HiFiGANConfig):
        super().__init__()
        self.config = config
        self.num_kernels = len(config.resblock_kernel_sizes)
        self.num_upsamples = len(config.upsample_rates)
        ch = config.upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(config.num_mels, ch, 7, 1, padding=3))
        block = ResBlock1 if config.resblock == "1" else ResBlock2

        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2)))
            for rk, rd in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
                self.resblocks.append(block(c_out, rk, rd))
        self.conv_post = weight_norm(nn.Conv1d(ch // 2**self.num_upsamples, 1, 7, 1, padding=3))
        self.ups.apply(init_weights)
        self.conv_post.apply(init_weights)

    @property
    def hop_length(self) -> int:
        return math.prod(self.config.upsample_rates)

    @property
    def context_frames(self) -> int:
        """Mel frames either side that change a frame's audio: 11 measured for V1, V2 and V3; 16
        leaves a margin (long mels are vocoded in spans with this much context, see ``vocode``)."""
        return 16

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            # Multi-receptive-field fusion: average of the parallel residual blocks.
            x = sum(block(x) for block in blocks) / self.num_kernels
        # The reference uses PyTorch's default slope (0.01) here; kept so its checkpoints match.
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)

    @torch.no_grad()
    def infer(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, num_mels, frames)`` → ``(batch, frames * hop)``; a 2-D mel gives a 1-D wave."""
        return vocode(self, mel, self.config.num_mels)

    def remove_weight_norm(self) -> None:
        """Fold weight norm into plain weights for inference (same output, fewer ops)."""
        _remove_norms(self)


class DiscriminatorP(nn.Module):
    """Looks at every ``period``-th sample: the 1-D wave is reshaped to 2-D ``(T/p, p)``."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3,
                 use_spectral_norm: bool = False):
        super().__init__()
        self.period = period
        norm_f = spectral_norm if use_spectral_norm else weight_norm
        chans = [1, 32, 128, 512, 1024]
        pad = (get_padding(kernel_size, 1), 0)
        self.convs = nn.ModuleList(
            norm_f(nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride, 1), padding=pad))
            for c_in, c_out in zip(chans[:-1], chans[1:])
        )
        self.convs.append(norm_f(nn.Conv2d(1024, 1024, (kernel_size, 1), 1, padding=pad)))
        self.conv_post = norm_f(nn.Conv2d(1024, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        x = x.view(b, c, t // self.period, self.period)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


DiscriminatorOutput = tuple[
    list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]
]


def _run_discriminators(discriminators: Sequence[nn.Module], y: torch.Tensor, y_hat: torch.Tensor,
                        pools: Sequence[nn.Module] = ()) -> DiscriminatorOutput:
    y_d_rs, y_d_gs, fmap_rs, fmap_gs = [], [], [], []
    for i, d in enumerate(discriminators):
        if i > 0 and pools:
            y, y_hat = pools[i - 1](y), pools[i - 1](y_hat)
        y_d_r, fmap_r = d(y)
        y_d_g, fmap_g = d(y_hat)
        y_d_rs.append(y_d_r)
        fmap_rs.append(fmap_r)
        y_d_gs.append(y_d_g)
        fmap_gs.append(fmap_g)
    return y_d_rs, y_d_gs, fmap_rs, fmap_gs


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: Sequence[int] = MPD_PERIODS):
        super().__init__()
        self.discriminators = nn.ModuleList(DiscriminatorP(p) for p in periods)

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> DiscriminatorOutput:
        """Real ``y`` and generated ``y_hat`` ``(batch, 1, T)`` → (real scores, fake scores,
        real feature maps, fake feature maps), one entry per sub-discriminator."""
        return _run_discriminators(self.discriminators, y, y_hat)


class DiscriminatorS(nn.Module):
    """Strided, grouped 1-D convolutions over the raw (or average-pooled) waveform."""

    def __init__(self, use_spectral_norm: bool = False):
        super().__init__()
        norm_f = spectral_norm if use_spectral_norm else weight_norm
        # (in, out, kernel, stride, groups)
        layers = [
            (1, 128, 15, 1, 1),
            (128, 128, 41, 2, 4),
            (128, 256, 41, 2, 16),
            (256, 512, 41, 4, 16),
            (512, 1024, 41, 4, 16),
            (1024, 1024, 41, 1, 16),
            (1024, 1024, 5, 1, 1),
        ]
        self.convs = nn.ModuleList(
            norm_f(nn.Conv1d(c_in, c_out, k, s, groups=g, padding=get_padding(k, 1)))
            for c_in, c_out, k, s, g in layers
        )
        self.conv_post = norm_f(nn.Conv1d(1024, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiScaleDiscriminator(nn.Module):
    """Three DiscriminatorS on raw audio, ×2 and ×4 average-pooled audio."""

    def __init__(self):
        super().__init__()
        # Spectral norm on the raw-audio scale only, as in the paper, for stability.
        self.discriminators = nn.ModuleList(
            [DiscriminatorS(use_spectral_norm=True), DiscriminatorS(), DiscriminatorS()]
        )
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2), nn.AvgPool1d(4, 2, padding=2)])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> DiscriminatorOutput:
        return _run_discriminators(self.discriminators, y, y_hat, self.meanpools)


def feature_loss(fmap_r: list[list[torch.Tensor]], fmap_g: list[list[torch.Tensor]],
                 weight: float = FEATURE_LOSS_WEIGHT) -> torch.Tensor:
    """Feature-matching L1 between real and generated discriminator feature maps."""
    loss = sum(
        torch.mean(torch.abs(r.detach() - g))
        for dr, dg in zip(fmap_r, fmap_g)
        for r, g in zip(dr, dg)
    )
    return loss * weight


def discriminator_loss(disc_real_outputs: list[torch.Tensor], disc_generated_outputs: list[torch.Tensor]
                       ) -> tuple[torch.Tensor, list[float], list[float]]:
    """LSGAN: push real scores to 1 and generated scores to 0."""
    r_losses = [torch.mean((1 - dr) ** 2) for dr in disc_real_outputs]
    g_losses = [torch.mean(dg ** 2) for dg in disc_generated_outputs]
    loss = sum(r_losses) + sum(g_losses)
    r_losses, g_losses = [r.item() for r in r_losses], [g.item() for g in g_losses]
    return loss, r_losses, g_losses


def generator_loss(disc_outputs: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """LSGAN: the generator wants its scores at 1."""
    gen_losses = [torch.mean((1 - dg) ** 2) for dg in disc_outputs]
    return sum(gen_losses), gen_losses


def mel_loss(mel_fn: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, y_hat: torch.Tensor,
             weight: float = MEL_LOSS_WEIGHT) -> torch.Tensor:
    """Weighted L1 between log-mels of real and generated waves (``(batch, 1, T)`` or ``(batch, T)``)."""
    return F.l1_loss(mel_fn(y_hat.squeeze(1)), mel_fn(y.squeeze(1))) * weight


# (n_fft, hop, win) of the multi-resolution STFT loss (Parallel WaveGAN, Yamamoto et al. 2020).
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def multi_resolution_stft_loss(y: torch.Tensor, y_hat: torch.Tensor,
                               resolutions: Sequence[tuple[int, int, int]] = STFT_RESOLUTIONS
                               ) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions.

    ``y``, ``y_hat``: ``(batch, 1, T)`` or ``(batch, T)``. An optional auxiliary generator loss
    (not in the HiFi-GAN paper) that helps a mel-only warm-up phase before the discriminators join.
    """
    y, y_hat = y.reshape(y.shape[0], -1), y_hat.reshape(y_hat.shape[0], -1)
    total = y.new_zeros(())
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win, device=y.device, dtype=y.dtype)
        mags = [
            torch.stft(w, n_fft, hop, win, window, return_complex=True).abs().clamp_min(1e-7)
            for w in (y, y_hat)
        ]
        spectral_convergence = torch.linalg.norm(mags[0] - mags[1]) / torch.linalg.norm(mags[0])
        log_magnitude = F.l1_loss(torch.log(mags[1]), torch.log(mags[0]))
        total = total + spectral_convergence + log_magnitude
    return total / len(resolutions)


def generator_total_loss(mpd: MultiPeriodDiscriminator, msd: MultiScaleDiscriminator,
                         y: torch.Tensor, y_hat: torch.Tensor,
                         mel_fn: Callable[[torch.Tensor], torch.Tensor]
                         ) -> tuple[torch.Tensor, dict[str, float]]:
    """Full generator objective: adversarial (MPD + MSD) + 2 × feature matching + 45 × mel L1."""
    _, f_outs, f_fmap_r, f_fmap_g = mpd(y, y_hat)
    _, s_outs, s_fmap_r, s_fmap_g = msd(y, y_hat)
    loss_fm = feature_loss(f_fmap_r, f_fmap_g) + feature_loss(s_fmap_r, s_fmap_g)
    loss_adv = generator_loss(f_outs)[0] + generator_loss(s_outs)[0]
    loss_mel = mel_loss(mel_fn, y, y_hat)
    total = loss_adv + loss_fm + loss_mel
    parts = {"gen_adv": loss_adv.item(), "feature": loss_fm.item(), "mel": loss_mel.item()}
    return total, parts


def discriminator_total_loss(mpd: MultiPeriodDiscriminator, msd: MultiScaleDiscriminator,
                             y: torch.Tensor, y_hat: torch.Tensor
                             ) -> tuple[torch.Tensor, dict[str, float]]:
    """MPD + MSD LSGAN loss; ``y_hat`` is detached so only the discriminators get gradients."""
    y_hat = y_hat.detach()
    loss_f = discriminator_loss(*mpd(y, y_hat)[:2])[0]
    loss_s = discriminator_loss(*msd(y, y_hat)[:2])[0]
    return loss_f + loss_s, {"disc_mpd": loss_f.item(), "disc_msd": loss_s.item()}


# Legacy (torch.nn.utils.weight_norm / spectral_norm) suffix → part, and where each part lives
# on a parametrized module. Legacy spectral norm also calls its power-iteration buffer weight_v,
# so which norm a layer uses is read from the target model, not from the checkpoint.
_LEGACY_SUFFIXES = (".weight_g", ".weight_v", ".weight_orig", ".weight_u")
_WEIGHT_NORM_TARGETS = {"weight_g": "parametrizations.weight.original0",
                        "weight_v": "parametrizations.weight.original1"}
_SPECTRAL_NORM_TARGETS = {"weight_orig": "parametrizations.weight.original",
                          "weight_u": "parametrizations.weight.0._u",
                          "weight_v": "parametrizations.weight.0._v"}


def _names(keys: Sequence[str], limit: int = 10) -> str:
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _map_legacy_layer(base: str, parts: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor]
                      ) -> dict[str, torch.Tensor] | None:
    """Rename one layer's legacy norm tensors to the target's names; None if they do not fit."""
    if f"{base}.{_SPECTRAL_NORM_TARGETS['weight_orig']}" in target:
        names = _SPECTRAL_NORM_TARGETS
    elif f"{base}.{_WEIGHT_NORM_TARGETS['weight_g']}" in target:
        names = _WEIGHT_NORM_TARGETS
    elif f"{base}.weight" in target and set(parts) == {"weight_g", "weight_v"}:
        return {f"{base}.weight": fold_weight_norm(parts["weight_g"], parts["weight_v"])}
    else:
        return None
    if set(parts) != set(names):
        return None
    return {f"{base}.{names[part]}": value for part, value in parts.items()}


def _map_reference_state(module: nn.Module, state: Mapping[str, torch.Tensor], what: str
                         ) -> dict[str, torch.Tensor]:
    """Translate a reference state dict to ``module``'s names, or raise listing what does not fit."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    target = module.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    legacy: dict[str, dict[str, torch.Tensor]] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        suffix = next((s for s in _LEGACY_SUFFIXES if key.endswith(s)), None)
        if key in target:
            mapped[key] = value
        elif suffix is not None:
            legacy.setdefault(key[: -len(suffix)], {})[suffix[1:]] = value
        else:
            unexpected.append(key)
    for base, parts in legacy.items():
        layer = _map_legacy_layer(base, parts, target)
        if layer is None:
            unexpected.extend(f"{base}.{part}" for part in parts)
        else:
            mapped.update(layer)

    missing = sorted(set(target) - set(mapped))
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}"
        for k, v in mapped.items() if tuple(v.shape) != tuple(target[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_names(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_names(mismatched)}")
    if problems:
        raise ValueError(f"HiFi-GAN {what} checkpoint does not fit this model (wrong preset/config?); "
                         + "; ".join(problems))
    return mapped


def _state_from(checkpoint: Any, key: str) -> Mapping[str, torch.Tensor]:
    if not isinstance(checkpoint, Mapping):
        raise TypeError(
            f"expected a checkpoint dict, got {type(checkpoint).__name__}; "
            "load the file first, e.g. torch.load(path, map_location='cpu')"
        )
    state = checkpoint.get(key, checkpoint)
    if not isinstance(state, Mapping):
        raise TypeError(f"checkpoint[{key!r}] is not a state dict")
    return state


def load_reference_generator(generator: Generator, checkpoint: Mapping[str, Any]) -> None:
    """Load a jik876/hifi-gan ``g_*`` checkpoint dict (``{"generator": state_dict}``) or a bare
    state dict into ``generator``, whether or not its weight norm has been removed.

    Legacy ``weight_g``/``weight_v`` names map to ``parametrizations.weight.original0/1``, or are
    folded into ``weight`` when the target has plain weights.
    """
    state = _state_from(checkpoint, "generator")
    generator.load_state_dict(_map_reference_state(generator, state, "generator"), strict=True)


def load_reference_discriminators(mpd: MultiPeriodDiscriminator, msd: MultiScaleDiscriminator,
                                  checkpoint: Mapping[str, Any]) -> None:
    """Load the discriminators from a jik876/hifi-gan ``do_*`` checkpoint dict (keys ``mpd``,
    ``msd``), e.g. to fine-tune a published model on a new voice. Optimizer state is ignored."""
    if not isinstance(checkpoint, Mapping) or not {"mpd", "msd"} <= set(checkpoint):
        raise ValueError("expected a do_* checkpoint dict with 'mpd' and 'msd' state dicts")
    for module, key in ((mpd, "mpd"), (msd, "msd")):
        state = _state_from(checkpoint[key], key)
        module.load_state_dict(_map_reference_state(module, state, key), strict=True)

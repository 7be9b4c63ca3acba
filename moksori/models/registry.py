"""The one registry of model families. Every list of model names in moksori derives from it.

A :class:`Family` names, for one model family: its role (acoustic or vocoder), model class and
config dataclass, its presets, the inference adapter that implements the acoustic or vocoder
interface (:mod:`moksori.models.interfaces`), and its training task. The task is named by a
``"module:attribute"`` string (or given as a class) and imported only when training asks for it,
so that inference never imports training code.

Adding a family: its model file, its task file, and one :func:`register` call below (or in the
caller's own module, as the toy families of the tests do).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

ACOUSTIC = "acoustic"
VOCODER = "vocoder"
ROLES = (ACOUSTIC, VOCODER)


@dataclass(frozen=True)
class Family:
    """One model family.

    ``preset(name, n_vocab=…, n_mels=…)`` returns a config (the data's facts the family needs
    are passed by keyword; a family takes what it uses). ``adapter(model)`` wraps a loaded model
    in the role's interface (a family without weights: ``adapter(mel_config)``). ``task`` is the training task class or its ``"module:Class"`` path;
    None for a family that is not trained (Griffin-Lim). ``model_class`` None: no weights.
    """

    name: str
    role: str
    description: str
    model_class: type[nn.Module] | None
    config_class: type | None
    presets: tuple[str, ...]
    default_preset: str
    preset_config: Callable[..., Any] | None
    adapter: Callable[[nn.Module], nn.Module] | None
    task: str | type | None = None
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"family {self.name!r}: role must be one of {ROLES}, got {self.role!r}")
        if self.presets and self.default_preset not in self.presets:
            raise ValueError(f"family {self.name!r}: default preset {self.default_preset!r} is not in {self.presets}")

    @property
    def trainable(self) -> bool:
        return self.task is not None

    @property
    def has_weights(self) -> bool:
        return self.model_class is not None

    def config(self, preset: str | None = None, **data: Any) -> Any:
        """The config of ``preset`` (default: the family's default) for data with ``data`` facts."""
        if self.preset_config is None:
            raise ValueError(f"{self.name} has no configurable model")
        preset = self.default_preset if preset is None else str(preset)
        if preset not in self.presets:
            raise ValueError(f"unknown {self.name} preset {preset!r}; choose from {', '.join(self.presets)}")
        return self.preset_config(preset, **data)

    def build(self, config: Any) -> nn.Module:
        """A model from a config object or dict (a checkpoint's or bundle's ``model_config``)."""
        if self.model_class is None or self.config_class is None:
            raise ValueError(f"{self.name} has no model to build")
        if not isinstance(config, self.config_class):
            config = self.config_class.from_dict(config)
        return self.model_class(config)

    def inference(self, model: nn.Module | None, mel_config: Any) -> nn.Module:
        """The role's interface for a loaded model (a family without weights gets the mel config)."""
        if self.adapter is None:
            raise ValueError(f"{self.name} has no inference adapter")
        return self.adapter(model if self.has_weights else mel_config)

    def task_class(self) -> type:
        """The training task (imported on first use)."""
        if self.task is None:
            raise ValueError(f"{self.name} is not trained; trainable families: {', '.join(names(trainable=True))}")
        if isinstance(self.task, str):
            module, _, attribute = self.task.partition(":")
            return getattr(importlib.import_module(module), attribute)
        return self.task


FAMILIES: dict[str, Family] = {}


def register(family: Family, *, replace: bool = False) -> Family:
    """Add a family to the registry (``replace`` to redefine one, e.g. in a test)."""
    if family.name in FAMILIES and not replace:
        raise ValueError(f"model family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    FAMILIES.pop(name, None)


def get(name: str, role: str | None = None) -> Family:
    """The family ``name``; with ``role``, it must have that role. Errors list what exists."""
    family = FAMILIES.get(str(name))
    if family is None or (role is not None and family.role != role):
        what = f"{role} model" if role else "model"
        raise ValueError(f"unknown {what} {name!r}; registered: {', '.join(names(role))}")
    return family


def names(role: str | None = None, *, trainable: bool | None = None, weights: bool | None = None) -> list[str]:
    """Registered family names, optionally of one role, trainable or not, with weights or not."""
    return [
        f.name
        for f in FAMILIES.values()
        if (role is None or f.role == role)
        and (trainable is None or f.trainable == trainable)
        and (weights is None or f.has_weights == weights)
    ]


def families(role: str | None = None) -> Iterable[Family]:
    return [f for f in FAMILIES.values() if role is None or f.role == role]


def describe_families(language: str = "ko") -> str:
    """A table of the families: role, presets with parameter counts, training, reference."""
    from moksori.text import TextFrontend

    n_vocab = len(TextFrontend(language).symbols)
    lines = [f"{'family':<12} {'role':<9} {'trained':<8} presets (parameters; * default)"]
    for family in FAMILIES.values():
        presets = []
        for preset in family.presets:
            model = family.build(family.config(preset, n_vocab=n_vocab))
            count = sum(p.numel() for p in model.parameters()) / 1e6
            presets.append(f"{preset}{'*' if preset == family.default_preset else ''} {count:.2f}M")
        lines.append(f"{family.name:<12} {family.role:<9} {'yes' if family.trainable else 'no':<8} "
                     f"{', '.join(presets) or '(no weights)'}")
        lines.append(f"{'':<31}{family.description}" + (f" [{family.reference}]" if family.reference else ""))
    return "\n".join(lines)


# --- the families moksori ships --------------------------------------------------------------


def _register_builtin() -> None:
    from moksori.models.glow_tts import GlowTTS, GlowTTSAcoustic, GlowTTSConfig, set_constant_durations
    from moksori.models.griffin_lim import GriffinLim
    from moksori.models.hifigan import Generator, HiFiGANConfig
    from moksori.models.interfaces import ConvVocoder
    from moksori.models.tacotron2 import PRESETS as TACOTRON2_PRESETS
    from moksori.models.tacotron2 import Tacotron2, Tacotron2Acoustic, Tacotron2Config
    from moksori.models.tacotron2 import import_reference as import_tacotron2
    from moksori.models.tacotron2 import reference_text_frontend as tacotron2_text_frontend
    from moksori.models.tacotron2 import set_constant_durations as tacotron2_constant_durations
    from moksori.models.vocos import Vocos, VocosConfig

    glow_presets = {"base": GlowTTSConfig.base, "small": GlowTTSConfig.small, "tiny": GlowTTSConfig.tiny}

    def glow_config(preset: str, *, n_vocab: int, n_mels: int = 80, **_: Any) -> GlowTTSConfig:
        return glow_presets[preset](n_vocab, out_channels=n_mels)

    register(Family(
        "glow_tts", ACOUSTIC, "Glow-TTS: flow decoder, monotonic alignment search, duration predictor",
        GlowTTS, GlowTTSConfig, tuple(glow_presets), "base", glow_config, GlowTTSAcoustic,
        task="moksori.training.tasks.glow_tts:GlowTTSTask", reference="jaywalnut310/glow-tts",
        extra={"constant_durations": set_constant_durations},
    ))
    register(Family(
        "tacotron2", ACOUSTIC, "Tacotron2: location-sensitive attention, autoregressive decoder, stop gate",
        Tacotron2, Tacotron2Config, TACOTRON2_PRESETS, "base",
        lambda preset, *, n_vocab, n_mels=80, **_: Tacotron2Config.preset(preset, n_vocab, n_mel_channels=n_mels),
        Tacotron2Acoustic,
        task="moksori.training.tasks.tacotron2:Tacotron2Task", reference="NVIDIA/tacotron2",
        extra={"import_reference": import_tacotron2, "reference_text_frontend": tacotron2_text_frontend,
               "constant_durations": tacotron2_constant_durations},
    ))
    from moksori.models.flowtron import PRESETS as FLOWTRON_PRESETS
    from moksori.models.flowtron import Flowtron, FlowtronAcoustic, FlowtronConfig
    from moksori.models.flowtron import import_reference as import_flowtron

    register(Family(
        "flowtron", ACOUSTIC, "Flowtron: autoregressive flow with attention; style control through its latent z",
        Flowtron, FlowtronConfig, FLOWTRON_PRESETS, "base",
        lambda preset, *, n_vocab, n_mels=80, **_: FlowtronConfig.preset(preset, n_vocab, n_mel_channels=n_mels),
        FlowtronAcoustic,
        task="moksori.training.tasks.flowtron:FlowtronTask", reference="NVIDIA/flowtron",
        extra={"import_reference": import_flowtron},
    ))
    register(Family(
        "hifigan", VOCODER, "HiFi-GAN: transposed-convolution generator with MRF blocks, GAN-trained",
        Generator, HiFiGANConfig, ("v1", "v2", "v3", "tiny"), "v1",
        lambda preset, **_: HiFiGANConfig.preset(preset), ConvVocoder,
        task="moksori.training.tasks.gan_vocoder:HiFiGANTask", reference="jik876/hifi-gan",
    ))
    register(Family(
        "vocos", VOCODER, "Vocos: ConvNeXt at the frame rate with an inverse-STFT head",
        Vocos, VocosConfig, ("base", "small", "tiny"), "small",
        lambda preset, **_: VocosConfig.preset(preset), ConvVocoder,
        task="moksori.training.tasks.gan_vocoder:VocosTask", reference="gemelo-ai/vocos",
        extra={"train_defaults": {"adversarial": False, "stft_loss": True}},
    ))
    from moksori.models.waveglow import WaveGlow, WaveGlowConfig, WaveGlowVocoder, import_reference

    register(Family(
        "waveglow", VOCODER, "WaveGlow: a flow vocoder trained by maximum likelihood, with its denoiser",
        WaveGlow, WaveGlowConfig, ("base", "small", "tiny"), "base",
        lambda preset, **_: WaveGlowConfig.preset(preset), WaveGlowVocoder,
        task="moksori.training.tasks.waveglow:WaveGlowTask", reference="NVIDIA/waveglow",
        extra={"import_reference": import_reference},
    ))
    from moksori.models.wavenet import WaveNet, WaveNetConfig, WaveNetVocoder
    from moksori.models.wavenet import import_reference as import_wavenet

    register(Family(
        "wavenet", VOCODER, "WaveNet: autoregressive, mel-conditioned, mixture of logistics; streams as it samples",
        WaveNet, WaveNetConfig, ("base", "small", "tiny"), "base",
        lambda preset, **_: WaveNetConfig.preset(preset), WaveNetVocoder,
        task="moksori.training.tasks.wavenet:WaveNetTask", reference="r9y9/wavenet_vocoder",
        extra={"import_reference": import_wavenet},
    ))
    register(Family(
        GRIFFIN_LIM, VOCODER, "Griffin-Lim phase reconstruction: no weights, no training",
        None, None, (), "", None, GriffinLim,
    ))


GRIFFIN_LIM = "griffin_lim"
# What a command uses when the user names no family.
DEFAULT_ACOUSTIC = "glow_tts"
DEFAULT_VOCODER = "hifigan"

_register_builtin()

__all__ = [
    "ACOUSTIC",
    "DEFAULT_ACOUSTIC",
    "DEFAULT_VOCODER",
    "FAMILIES",
    "Family",
    "GRIFFIN_LIM",
    "ROLES",
    "VOCODER",
    "describe_families",
    "families",
    "get",
    "names",
    "register",
    "unregister",
]

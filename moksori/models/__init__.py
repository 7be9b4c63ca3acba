"""Model registry: name -> model class. One line in ``MODELS`` registers a model.

A model class takes its config dataclass as the single constructor argument; the config class is
found from ``cls.config_class`` or, failing that, the type hint of that argument. Config classes
provide ``from_dict``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Mapping

from torch import nn

from moksori.models.glow_tts import GlowTTS, GlowTTSConfig
from moksori.models.hifigan import Generator as HiFiGANGenerator
from moksori.models.vocos import Vocos, VocosConfig

MODELS: dict[str, type[nn.Module]] = {
    "glow_tts": GlowTTS,
    "hifigan": HiFiGANGenerator,
    "vocos": Vocos,
}


def config_class(name: str) -> type:
    """The config dataclass of the registered model ``name``."""
    cls = _model_class(name)
    found = getattr(cls, "config_class", None)
    if found is None:
        params = list(inspect.signature(cls.__init__).parameters)
        hints = typing.get_type_hints(cls.__init__)
        found = hints.get(params[1]) if len(params) > 1 else None
    if found is None or not dataclasses.is_dataclass(found):
        raise TypeError(f"model {name!r} ({cls.__name__}) does not declare a config dataclass")
    return found


def build_model(name: str, config_dict: Mapping[str, Any] | Any) -> nn.Module:
    """Instantiate the registered model ``name`` from a config dict (or a ready config object)."""
    cls = _model_class(name)
    config_cls = config_class(name)
    config = config_dict if isinstance(config_dict, config_cls) else config_cls.from_dict(config_dict)
    return cls(config)


def _model_class(name: str) -> type[nn.Module]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}") from None


__all__ = ["MODELS", "GlowTTS", "GlowTTSConfig", "Vocos", "VocosConfig", "build_model", "config_class"]

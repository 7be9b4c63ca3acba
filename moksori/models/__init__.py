"""Model families: one file per model (with its config, loss and inference adapter), the two
interfaces synthesis uses (:mod:`moksori.models.interfaces`) and the one registry of families
(:mod:`moksori.models.registry`)."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from moksori.models import registry
from moksori.models.interfaces import AcousticModel, AcousticOutput, Controls, Vocoder


def config_class(name: str) -> type:
    """The config dataclass of the registered model ``name``."""
    family = registry.get(name)
    if family.config_class is None:
        raise ValueError(f"model {name!r} has no config (it has no weights)")
    return family.config_class


def build_model(name: str, config_dict: Mapping[str, Any] | Any) -> nn.Module:
    """Instantiate the registered model ``name`` from a config dict (or a ready config object)."""
    return registry.get(name).build(config_dict)


__all__ = ["AcousticModel", "AcousticOutput", "Controls", "Vocoder", "build_model", "config_class", "registry"]

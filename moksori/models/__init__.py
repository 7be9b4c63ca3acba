"""Model families: one file per model (with its config, loss and inference adapter), the two
interfaces synthesis uses (:mod:`moksori.models.interfaces`) and the one registry of families
(:mod:`moksori.models.registry`).

Importing this package does not import torch: the torch-free modules under it
(:mod:`moksori.models.controls`, :mod:`moksori.models.onnx_runners`) serve the ONNX Runtime path;
the names below that need torch load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from torch import nn

    from moksori.models import registry
    from moksori.models.interfaces import AcousticModel, AcousticOutput, Controls, Vocoder

_LAZY = {"registry": "moksori.models.registry", "AcousticModel": "moksori.models.interfaces",
         "AcousticOutput": "moksori.models.interfaces", "Controls": "moksori.models.controls",
         "Vocoder": "moksori.models.interfaces"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if name == "registry" else getattr(module, name)


def config_class(name: str) -> type:
    """The config dataclass of the registered model ``name``."""
    from moksori.models import registry

    family = registry.get(name)
    if family.config_class is None:
        raise ValueError(f"model {name!r} has no config (it has no weights)")
    return family.config_class


def build_model(name: str, config_dict: Mapping[str, Any] | Any) -> nn.Module:
    """Instantiate the registered model ``name`` from a config dict (or a ready config object)."""
    from moksori.models import registry

    return registry.get(name).build(config_dict)


__all__ = ["AcousticModel", "AcousticOutput", "Controls", "Vocoder", "build_model", "config_class", "registry"]

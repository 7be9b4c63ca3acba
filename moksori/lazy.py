"""A module imported on first use of one of its attributes.

``torch = LazyModule("torch")`` at the top of a module whose ONNX Runtime path must not import
torch (it costs ~220 MB of resident memory): the PyTorch paths use ``torch.…`` as usual and load it
then.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for the module ``name`` until an attribute is read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.module(), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


__all__ = ["LazyModule"]

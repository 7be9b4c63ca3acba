"""bf16 autocast around a module, for :mod:`moksori.synthesis.precision` (which loads it only when
bf16 is asked for, so the fp32 and ONNX paths do not import torch through it)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Autocast(nn.Module):
    """Runs ``inner`` (its ``forward`` and, for vocoders, its ``infer``) under CPU autocast to
    ``dtype``; floating outputs come back as float32. Other attributes are the inner module's."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=self.dtype):
            out = self.inner(*args, **kwargs)
        return _to_float32(out)

    def infer(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=self.dtype):
            out = self.inner.infer(*args, **kwargs)
        return _to_float32(out)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["inner"], name)


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(_to_float32(item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(item) for item in value)
    return value


__all__ = ["Autocast"]

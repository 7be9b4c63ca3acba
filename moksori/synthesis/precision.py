"""Reduced precision for synthesis, chosen per module: ``fp32``, ``bf16`` or ``int8``.

A family names the submodules of its adapter that may run in reduced precision
(``precision_modules``, dotted paths from the adapter: Glow-TTS ``model.decoder``, HiFi-GAN
``model``); everything else stays float32, e.g. Glow-TTS's encoder and duration predictor, so
rounded durations are computed exactly as in fp32. A family that names nothing runs in fp32
whatever is asked.

* ``bf16``: the named modules run under CPU autocast to bfloat16 (matmuls and convolutions in
  bf16, oneDNN), their outputs cast back to float32 at the module's edge.
* ``int8``: the named modules' ``nn.Linear``, ``nn.LSTM`` and ``nn.LSTMCell`` layers are
  dynamically quantised to int8 (``torch.ao.quantization.quantize_dynamic``: int8 weights,
  activations quantised per call). Only layers of those types are quantised, so a module made of
  convolutions is unchanged: int8 is refused for a voice where no named module has one
  (:class:`PrecisionError`).

The reduced adapter is a new module that shares the fp32 weights it does not change (only the
parents on each named path are shallow-copied; int8 copies the quantised module alone), so one
loaded voice serves every precision at once.

Whether a reduced precision is good enough for a voice is measured by
:mod:`moksori.evaluation.precision_check` and recorded in its ``voice.json`` (``precision``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from moksori.cpu import native_bf16

if TYPE_CHECKING:  # torch loads only where a reduced precision is applied (the ONNX path runs without it)
    from torch import nn

    from moksori.synthesis.autocast import Autocast

FP32, BF16, INT8 = "fp32", "bf16", "int8"
PRECISIONS = (FP32, BF16, INT8)
REDUCED = (BF16, INT8)
AUTO = "auto"  # the voice's recommended precision (voice.json), else fp32


class PrecisionError(ValueError):
    """A precision that is unknown, or that does not apply to a voice."""


def check_precision(precision: str, *, allow_auto: bool = True) -> str:
    """``precision`` lower-cased if it is one of :data:`PRECISIONS` (or ``auto``); else PrecisionError."""
    value = str(precision).strip().lower()
    allowed = PRECISIONS + ((AUTO,) if allow_auto else ())
    if value not in allowed:
        raise PrecisionError(f"precision must be one of {', '.join(allowed)}; got {precision!r}")
    return value


def precision_modules(adapter: nn.Module) -> tuple[str, ...]:
    """The dotted paths (from ``adapter``) that its family declares safe in reduced precision."""
    return tuple(getattr(adapter, "precision_modules", ()) or ())


def _shallow(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that shares its parameters, buffers and children, with its own
    children table (so replacing a child does not touch the original)."""
    twin = copy.copy(module)
    twin._modules = type(module._modules)(module._modules)  # noqa: SLF001 (torch's own table)
    return twin


def _quantised(module: nn.Module) -> nn.Module:
    import warnings

    import torch
    from torch import nn
    from torch.ao.quantization import quantize_dynamic

    # quantize_dynamic swaps the children of what it is given, so a named layer itself (e.g.
    # Tacotron2's decoder.attention_rnn, an LSTMCell) is handed over inside a holder.
    holder = nn.ModuleDict({"module": copy.deepcopy(module)})
    with warnings.catch_warnings():  # torch notes that its eager quantisation API moves to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(holder, set(_quantisable()), dtype=torch.qint8)["module"]


def _quantisable() -> tuple[type, ...]:
    from torch import nn

    return (nn.Linear, nn.LSTM, nn.LSTMCell)


def _has_quantisable(module: nn.Module) -> bool:
    return any(isinstance(child, _quantisable()) for child in module.modules())


def _replace(root: nn.Module, path: list[str], make: Any) -> nn.Module:
    """``root`` with the module at ``path`` replaced by ``make(module)`` (a ModuleList: each item)."""
    from torch import nn

    if not path:
        if isinstance(root, nn.ModuleList):
            twin = _shallow(root)
            for key, child in root._modules.items():  # noqa: SLF001
                twin._modules[key] = make(child)  # noqa: SLF001
            return twin
        return make(root)
    head, rest = path[0], path[1:]
    child = root._modules.get(head)  # noqa: SLF001
    if child is None:
        raise PrecisionError(f"{type(root).__name__} has no submodule {head!r} (precision_modules)")
    twin = _shallow(root)
    twin._modules[head] = _replace(child, rest, make)  # noqa: SLF001
    return twin


def modules_at(adapter: nn.Module, paths: Iterable[str]) -> list[nn.Module]:
    """The modules at ``paths`` (dotted, from ``adapter``)."""
    found = []
    for path in paths:
        module = adapter
        for part in path.split(".") if path else []:
            module = module._modules.get(part)  # noqa: SLF001
            if module is None:
                raise PrecisionError(f"{type(adapter).__name__}: no module at {path!r} (precision_modules)")
        found.append(module)
    return found


def supports(adapter: nn.Module, precision: str) -> bool:
    """Whether ``precision`` changes anything in ``adapter`` (fp32 always applies)."""
    precision = check_precision(precision, allow_auto=False)
    paths = precision_modules(adapter)
    if precision == FP32:
        return True
    if not paths:
        return False
    if precision == INT8:
        return any(_has_quantisable(module) for module in modules_at(adapter, paths))
    return True


def with_precision(adapter: nn.Module, precision: str) -> nn.Module:
    """``adapter`` with its declared modules in ``precision`` (itself for fp32, or when the
    family declares none). Raises PrecisionError when int8 finds nothing to quantise."""
    precision = check_precision(precision, allow_auto=False)
    paths = precision_modules(adapter)
    if precision == FP32 or not paths:
        return adapter
    if precision == INT8 and not supports(adapter, INT8):
        raise PrecisionError(f"int8 does not apply to {type(adapter).__name__}: its precision-safe modules have no "
                             "Linear, LSTM or LSTMCell layers (dynamic quantisation covers only those)")
    from moksori.synthesis.autocast import Autocast

    make = (lambda module: Autocast(module)) if precision == BF16 else _quantised
    reduced = adapter
    for path in paths:
        reduced = _replace(reduced, path.split(".") if path else [], make)
    return reduced.eval()


# --- a voice's record (voice.json "precision", written by moksori evaluate --precision) ----------


def recorded(voice_config: dict[str, Any]) -> dict[str, Any]:
    """The voice.json ``precision`` section (empty when the voice was never checked)."""
    section = voice_config.get("precision")
    return section if isinstance(section, dict) else {}


def recommended(voice_config: dict[str, Any]) -> str:
    """The precision voice.json recommends after a check; fp32 when there is none, and fp32 for a
    bf16 recommendation on a CPU without bf16 instructions (it was measured faster on another
    machine: here bf16 is emulated and several times slower than fp32)."""
    value = recorded(voice_config).get("recommended", FP32)
    if value == BF16 and not native_bf16():
        return FP32
    return value if value in PRECISIONS else FP32


def unchecked_warning(voice_config: dict[str, Any], precision: str) -> str | None:
    """Why ``precision`` is not known to be safe for this voice (None: fp32, or checked and safe)."""
    if precision == FP32:
        return None
    name = voice_config.get("name", "this voice")
    check = recorded(voice_config).get("checked", {}).get(precision)
    hint = f"run `moksori evaluate {name} --precision {precision}`"
    if not isinstance(check, dict):
        return f"voice {name!r} was not checked for {precision} synthesis; {hint}"
    if not check.get("safe"):
        return f"voice {name!r} failed its {precision} check ({check.get('reason', 'outside the limits')})"
    return None


def __getattr__(name: str) -> Any:
    if name == "Autocast":  # lives with torch (moksori.synthesis.autocast)
        from moksori.synthesis.autocast import Autocast

        return Autocast
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUTO",
    "Autocast",
    "BF16",
    "FP32",
    "INT8",
    "PRECISIONS",
    "REDUCED",
    "PrecisionError",
    "check_precision",
    "modules_at",
    "precision_modules",
    "recommended",
    "recorded",
    "supports",
    "unchecked_warning",
    "with_precision",
]

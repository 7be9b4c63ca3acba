"""Synthesis: voice bundles, the Synthesizer, ONNX export and the ONNX Runtime path.

Runtime only: nothing here imports ``moksori.training``. Importing this package does not import
torch (the names below load on first use), so a voice with ONNX files synthesises without it
(:mod:`moksori.synthesis.onnx_voice`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from moksori.synthesis.voice_files import VoiceError, read_voice_json

if TYPE_CHECKING:
    from moksori.synthesis.bundle import Voice, load_checkpoint, load_voice, make_bundle
    from moksori.synthesis.onnx_export import export_onnx
    from moksori.synthesis.synthesizer import ALLOCATOR_ENV, Synthesizer, configure_allocator, release_memory

_LAZY = {
    "Voice": "moksori.synthesis.bundle",
    "load_checkpoint": "moksori.synthesis.bundle",
    "load_voice": "moksori.synthesis.bundle",
    "make_bundle": "moksori.synthesis.bundle",
    "export_onnx": "moksori.synthesis.onnx_export",
    "ALLOCATOR_ENV": "moksori.synthesis.synthesizer",
    "Synthesizer": "moksori.synthesis.synthesizer",
    "configure_allocator": "moksori.synthesis.synthesizer",
    "release_memory": "moksori.synthesis.synthesizer",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "ALLOCATOR_ENV",
    "Synthesizer",
    "Voice",
    "VoiceError",
    "configure_allocator",
    "export_onnx",
    "load_checkpoint",
    "load_voice",
    "make_bundle",
    "read_voice_json",
    "release_memory",
]

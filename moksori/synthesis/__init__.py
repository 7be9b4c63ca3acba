"""Synthesis: voice bundles, the Synthesizer, ONNX export and the ONNX Runtime path.

Runtime only: nothing here imports ``moksori.training``.
"""

from moksori.synthesis.bundle import (
    Voice,
    VoiceError,
    load_checkpoint,
    load_voice,
    make_bundle,
    read_voice_json,
)
from moksori.synthesis.onnx_export import export_onnx
from moksori.synthesis.synthesizer import (
    ALLOCATOR_ENV,
    Synthesizer,
    configure_allocator,
    release_memory,
)

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

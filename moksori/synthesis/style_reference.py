"""Reading a style reference (Flowtron's ``say --style-ref`` and the server's ``style_ref``/
``style_ref_wav``), one rule for both: a sentence or a few, read bounded, because a recording read
whole costs memory in proportion (a 10-minute one took 1.4 GB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moksori.audio.io import AudioLimits, load_audio_bounded

MAX_REFERENCE_SECONDS = 30.0


def load_style_reference(path: str | Path) -> tuple[np.ndarray, int]:
    """The recording at ``path`` (mono float32, its sample rate). A reference over
    :data:`MAX_REFERENCE_SECONDS` is refused from its header, before it is decoded
    (:class:`~moksori.audio.io.AudioLimitError`); unreadable audio raises ``AudioError``."""
    return load_audio_bounded(path, AudioLimits(max_seconds=MAX_REFERENCE_SECONDS, what="style reference"))


__all__ = ["MAX_REFERENCE_SECONDS", "load_style_reference"]

"""Per-sentence noise for synthesis: the same draws whatever the batch, PyTorch or ONNX Runtime."""

from __future__ import annotations

import numpy as np


def sentence_noise(seed: int | None, index: int, frames: int, channels: int) -> np.ndarray:
    """Standard normal noise ``[channels, frames]`` for sentence ``index`` of a request.

    Drawn frame by frame from ``numpy.random.default_rng([seed, index])``, so a longer draw starts
    with the same values as a shorter one: the noise of a sentence does not depend on how many
    frames the caller asked for. ``seed=None`` gives fresh randomness.
    """
    rng = np.random.default_rng(None if seed is None else [seed, index])
    return np.ascontiguousarray(rng.standard_normal((frames, channels), dtype=np.float32).T)


__all__ = ["sentence_noise"]

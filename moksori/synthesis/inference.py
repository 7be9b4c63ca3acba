"""Per-sentence noise for synthesis: the same draws whatever the batch, PyTorch or ONNX Runtime."""

from __future__ import annotations

import numpy as np


def sentence_noise(seed: int | None, index: int, frames: int, channels: int, attempt: int = 0) -> np.ndarray:
    """Standard normal noise ``[channels, frames]`` for sentence ``index`` of a request.

    Drawn frame by frame from ``numpy.random.default_rng([seed, index])``, so a longer draw starts
    with the same values as a shorter one: the noise of a sentence does not depend on how many
    frames the caller asked for. ``seed=None`` gives fresh randomness. ``attempt`` > 0 gives other
    noise for the same sentence (a retry after a failed alignment), as reproducible as the first.
    """
    key = [seed, index] if attempt == 0 else [seed, index, attempt]
    rng = np.random.default_rng(None if seed is None else key)
    return np.ascontiguousarray(rng.standard_normal((frames, channels), dtype=np.float32).T)


__all__ = ["sentence_noise"]

"""Running a voice's ONNX files with ONNX Runtime (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_session(path: str | Path, num_threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU; ``num_threads`` sets intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxAcoustic:
    """``acoustic.onnx``: ids → mel ``[n_mels, frames]`` (one sentence per call)."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.session = make_session(path, num_threads)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.multi_speaker = "sid" in self.input_names

    def __call__(
        self, ids: list[int], noise: np.ndarray, noise_scale: float, length_scale: float, speaker_id: int | None
    ) -> np.ndarray:
        feeds = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([noise_scale, length_scale], dtype=np.float32),
            "noise": np.asarray(noise, dtype=np.float32)[None],
        }
        if self.multi_speaker:
            feeds["sid"] = np.asarray([speaker_id or 0], dtype=np.int64)
        return self.session.run(["mel"], feeds)[0][0]


class OnnxVocoder:
    """``vocoder.onnx``: mel ``[n_mels, frames]`` → wave ``[frames * hop]``."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.session = make_session(path, num_threads)

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        return self.session.run(["wave"], {"mel": np.asarray(mel, dtype=np.float32)[None]})[0][0]


__all__ = ["OnnxAcoustic", "OnnxVocoder", "make_session", "onnxruntime_available"]

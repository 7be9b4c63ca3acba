"""Running a voice's ONNX files with ONNX Runtime (CPU). No torch: the families' ONNX inputs and
loops are :mod:`moksori.models.onnx_runners`'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from moksori.models.controls import Controls, NoiseSource
from moksori.models.onnx_runners import AcousticOnnx, VocoderOnnx


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_session(path: str | Path, num_threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU; ``num_threads`` sets intra-op threads. Its
    threads sleep between operators unless ``MOKSORI_THREAD_SPIN=1`` (see :mod:`moksori.threads`)."""
    import onnxruntime

    from moksori.threads import spinning

    options = onnxruntime.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1  # graphs run sequentially (ORT_SEQUENTIAL)
    spin = "1" if spinning() else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxAcoustic:
    """``acoustic.onnx`` (and ``acoustic.<name>.onnx`` for each of the adapter's
    ``onnx_extra_graph_names``): ids → mel ``[n_mels, frames]``, one sentence per call. The family's
    adapter class (``onnx_run``, by default through ``onnx_feeds``) runs the graphs."""

    def __init__(
        self, path: str | Path, adapter: type[AcousticOnnx], n_mels: int, num_threads: int | None = None
    ) -> None:
        path = Path(path)
        self.session = make_session(path, num_threads)
        self.sessions = {"": self.session}
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        for name in adapter.onnx_extra_graph_names(self.metadata):
            extra = path.with_name(f"{path.stem}.{name}.onnx")
            if not extra.is_file():
                raise FileNotFoundError(f"{extra}: graph {name!r} of {path.name} is missing; export the voice again")
            self.sessions[name] = make_session(extra, num_threads)
        self.adapter = adapter
        self.n_mels = n_mels
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.output_name = self.session.get_outputs()[0].name

    def infer(self, ids: list[int], controls: Controls, noise: NoiseSource) -> np.ndarray:
        return self.infer_with_report(ids, controls, noise)[0]

    def infer_with_report(self, ids: list[int], controls: Controls, noise: NoiseSource) -> tuple[np.ndarray, Any]:
        """The mel and the alignment report (None where the family does not check alignments)."""
        return self.adapter.onnx_run(self.sessions, self.metadata, ids, controls, noise, self.n_mels)


class OnnxVocoder:
    """``vocoder.onnx``: mel ``[n_mels, frames]`` → wave ``[frames * hop]``. The family's adapter
    (``onnx_feeds``, ``onnx_finish``; by default the graph takes the mel alone) builds the inputs
    from the mel and controls (WaveGlow: its noise ``z``) and finishes the output (its denoiser,
    which may run the graph itself: WaveGlow measures its bias on zeros)."""

    def __init__(self, path: str | Path, num_threads: int | None = None, adapter: VocoderOnnx | None = None):
        self.session = make_session(path, num_threads)
        self.adapter = adapter if adapter is not None else VocoderOnnx()

    def run_graph(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's wave for ``feeds`` (the first row)."""
        return self.session.run(["wave"], feeds)[0][0]

    def __call__(self, mel: np.ndarray, controls: Controls | None = None) -> np.ndarray:
        wave = self.run_graph(self.adapter.onnx_feeds(mel, controls))
        return self.adapter.onnx_finish(wave, controls, self.run_graph)


__all__ = ["OnnxAcoustic", "OnnxVocoder", "make_session", "onnxruntime_available"]

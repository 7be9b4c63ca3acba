"""Audio files written with PyAV (FFmpeg), for tests of the formats libsndfile cannot read."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_with_pyav(path: str | Path, samples: np.ndarray, sample_rate: int, container_format: str, codec: str,
                    metadata: dict[str, str] | None = None) -> None:
    """Encode ``samples`` (channels × frames; float32 for codecs taking floats, int16 for PCM) with
    ``codec`` into a ``container_format`` file (mp4, adts, matroska …)."""
    import av

    samples = np.ascontiguousarray(samples)
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]
    sample_format = "s16" if samples.dtype == np.int16 else "fltp"
    with av.open(str(path), "w", format=container_format) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(samples, format=sample_format, layout=layout)
        frame.sample_rate = sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)

"""Whether idle worker threads spin (busy-wait) or sleep, for inference in PyTorch and ONNX Runtime.

Both runtimes' thread pools spin between parallel regions by default: good on an idle machine,
costly when the cores are shared (a server running two syntheses on two cores, other processes):
spinning threads take the CPU from the threads with work. Measured on the 2-core bench machine
(benchmarks/README.md): under load, PyTorch Glow-TTS RTF 0.067 → 0.018 and ONNX Runtime 0.016 →
0.008 with sleeping threads; on a quiet machine sleeping PyTorch threads were ~2× slower (Glow-TTS
base 0.031–0.039 → 0.053–0.075). So: ONNX Runtime sessions sleep unless ``MOKSORI_THREAD_SPIN=1``;
PyTorch keeps spinning unless ``MOKSORI_THREAD_SPIN=0`` (for shared cores). libgomp (PyTorch's
OpenMP) reads ``OMP_WAIT_POLICY`` when torch is imported, so :func:`prefer_passive_threads` must run
before that.

No torch import here (that is the point).
"""

from __future__ import annotations

import os
import sys

SPIN_ENV = "MOKSORI_THREAD_SPIN"


def spinning() -> bool:
    """True when ``MOKSORI_THREAD_SPIN`` is 1/true/yes (threads busy-wait); default False."""
    return os.environ.get(SPIN_ENV, "").strip().lower() in {"1", "true", "yes"}


def sleeping() -> bool:
    """True when ``MOKSORI_THREAD_SPIN`` is 0/false/no (shared cores: PyTorch threads sleep too)."""
    return os.environ.get(SPIN_ENV, "").strip().lower() in {"0", "false", "no"}


def prefer_passive_threads() -> bool:
    """With ``MOKSORI_THREAD_SPIN=0`` (and ``OMP_WAIT_POLICY`` not set already), set
    ``OMP_WAIT_POLICY=PASSIVE`` for this process and its children; True when it takes effect here
    (torch not imported yet)."""
    if not sleeping() or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "torch" not in sys.modules


__all__ = ["SPIN_ENV", "prefer_passive_threads", "sleeping", "spinning"]

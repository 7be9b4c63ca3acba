"""FLOP accounting for ``moksori bench synth --flops``: how far each model is from this machine's limit.

* :func:`count_flops`: floating-point operations of one call, counted from the graph PyTorch
  actually runs (``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions,
  transposed ones included, each multiply-add counted as 2). Element-wise work, norms and FFTs
  (Vocos's inverse STFT) are not counted: the figure is the dense-math part that a matmul peak
  bounds.
* :func:`measure_peak`: this machine's achievable GFLOP/s for a square matmul in fp32 and bf16 on
  the benchmark's threads (best of a few runs, of ``torch.mm`` and ``F.linear``, which take
  different kernels in bf16): the ceiling is the better of the two precisions, so a model's share
  says how far it is from the fastest dense math this machine does at all. On a CPU without bf16
  instructions (AVX2 only) bf16 is far below fp32; with AMX it is far above.

With the counted FLOPs per second of audio and the measured time, the benchmark reports the
achieved GFLOP/s and its share of the peak, per model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

PEAK_SIZE = 1024
SLOW_RUN_S = 0.3
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def count_flops(run: Callable[[], Any]) -> int:
    """The FLOPs (matmul and convolution, 2 per multiply-add) of one call of ``run``."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        run()
    return int(counter.get_total_flops())


def measure_peak(threads: int, size: int = PEAK_SIZE, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of a ``size``³ matmul in fp32 and bf16 on ``threads`` threads (best run)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        peaks = {}
        for name, dtype in PEAK_DTYPES.items():
            a = torch.randn(size, size).to(dtype)
            b = torch.randn(size, size).to(dtype)
            best = float("inf")
            for op in (torch.mm, torch.nn.functional.linear):
                warm_up = _timed(lambda: op(a, b))  # also oneDNN/BLAS kernel selection
                # A kernel that takes seconds (bf16 without bf16 instructions) is timed once more.
                runs = repeats if warm_up < SLOW_RUN_S else 1
                best = min(best, *(_timed(lambda: op(a, b)) for _ in range(runs)))
            peaks[name] = 2 * size**3 / best / 1e9
        return peaks
    finally:
        torch.set_num_threads(previous)


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def flop_fields(flops: int, speech_s: float, seconds: float, peak_gflops: float) -> dict[str, float]:
    """Row fields of one model: GFLOP per second of audio, achieved GFLOP/s, share of the peak."""
    achieved = flops / seconds / 1e9 if seconds > 0 else float("nan")
    return {
        "gflop_per_audio_s": flops / speech_s / 1e9,
        "gflops": achieved,
        "peak_share": achieved / peak_gflops if peak_gflops > 0 else float("nan"),
    }


__all__ = ["PEAK_DTYPES", "count_flops", "flop_fields", "measure_peak"]

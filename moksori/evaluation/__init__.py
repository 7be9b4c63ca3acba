"""Voice-quality evaluation: objective metrics of synthesised speech against held-out recordings.

* :mod:`moksori.evaluation.metrics` — MCD (DTW), F0 RMSE and V/UV error, duration ratio, CER
* :mod:`moksori.evaluation.asr` — an optional local faster-whisper model for CER
* :mod:`moksori.evaluation.evaluate` — ``evaluate_voice``, the table, the JSON, ``moksori evaluate``
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moksori.evaluation.asr import Transcriber, load_asr
    from moksori.evaluation.evaluate import EvaluationResult, UtteranceScores, evaluate_voice, format_table, to_json
    from moksori.evaluation.metrics import character_error_rate, duration_ratio, f0_metrics, mcd_dtw, mel_cepstrum

# Loaded on first use: the studio's judges (asr, metrics) run in a server that has no torch when its
# voices are exported ones, and evaluate.py loads voices with their PyTorch models.
_LAZY = {
    "Transcriber": "asr", "load_asr": "asr",
    "EvaluationResult": "evaluate", "UtteranceScores": "evaluate", "evaluate_voice": "evaluate",
    "format_table": "evaluate", "to_json": "evaluate",
    "character_error_rate": "metrics", "duration_ratio": "metrics", "f0_metrics": "metrics", "mcd_dtw": "metrics",
    "mel_cepstrum": "metrics",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"moksori.evaluation.{_LAZY[name]}"), name)


__all__ = [
    "EvaluationResult",
    "Transcriber",
    "UtteranceScores",
    "character_error_rate",
    "duration_ratio",
    "evaluate_voice",
    "f0_metrics",
    "format_table",
    "load_asr",
    "mcd_dtw",
    "mel_cepstrum",
    "to_json",
]

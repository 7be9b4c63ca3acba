"""Voice-quality evaluation: objective metrics of synthesised speech against held-out recordings.

* :mod:`moksori.evaluation.metrics` — MCD (DTW), F0 RMSE and V/UV error, duration ratio, CER
* :mod:`moksori.evaluation.asr` — an optional local faster-whisper model for CER
* :mod:`moksori.evaluation.evaluate` — ``evaluate_voice``, the table, the JSON, ``moksori evaluate``
"""

from moksori.evaluation.asr import Transcriber, load_asr
from moksori.evaluation.evaluate import (
    EvaluationResult,
    UtteranceScores,
    evaluate_voice,
    format_table,
    to_json,
)
from moksori.evaluation.metrics import (
    character_error_rate,
    duration_ratio,
    f0_metrics,
    mcd_dtw,
    mel_cepstrum,
)

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

"""Failed-alignment detection for attention-based acoustic models: :mod:`moksori.models.alignment`
(NumPy only, so the ONNX Runtime loops use it without torch), under its older name."""

from __future__ import annotations

from moksori.models.alignment import (
    HIT_STEP_LIMIT,
    NOT_MONOTONIC,
    STOPPED_EARLY,
    AlignmentReport,
    check_alignment,
    diagonal_share,
)

__all__ = [
    "AlignmentReport",
    "HIT_STEP_LIMIT",
    "NOT_MONOTONIC",
    "STOPPED_EARLY",
    "check_alignment",
    "diagonal_share",
]

"""Failed-alignment detection for attention-based acoustic models (Tacotron2, Flowtron); NumPy only, so
the ONNX Runtime loops run it without torch (a torch tensor is read as an array).

An attention decoder that loses its alignment does not crash: it repeats a phrase (attention jumps
back), stops before the end of the text, or babbles until the step limit. :func:`check_alignment`
measures one sentence's alignment and says which of these happened, so the synthesizer can retry
or report it instead of returning garbage silently.

The measurements work on the most-attended token of each decoder frame (the "path"):

* ``max_backward_jump``: the largest step back of the path, in tokens. A healthy alignment only
  moves forward (small wobbles of a token or two happen at word boundaries).
* ``last_position``: the token the path ends on; the sentence is read to the end when it is within
  ``end_tolerance`` of the last token.
* ``coverage``: the share of tokens that some frame attends most (informational: fast speech or
  several frames per step can skip short tokens without anything being wrong).
* ``diagonality``: the share of attention mass within a band around the straight diagonal
  (informational; the training diagnostics use the same measure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NOT_MONOTONIC = "not monotonic"
STOPPED_EARLY = "stopped before the last token"
HIT_STEP_LIMIT = "hit max_decoder_steps"


@dataclass
class AlignmentReport:
    """The verdict on one sentence's alignment and the numbers it rests on."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    n_tokens: int = 0
    n_frames: int = 0
    max_backward_jump: int = 0
    last_position: int = 0
    coverage: float = 0.0
    diagonality: float = 0.0

    def summary(self) -> str:
        """One line for logs, warnings and headers: ``ok`` or the reasons joined by commas."""
        return "ok" if self.ok else ", ".join(self.reasons)


def _array(alignment: Any) -> np.ndarray:
    """An alignment as a float32 array (a torch tensor, on any device, is copied to the CPU)."""
    if hasattr(alignment, "detach"):
        alignment = alignment.detach().float().cpu().numpy()
    return np.asarray(alignment, dtype=np.float32)


def diagonal_share(alignment: Any, n_tokens: int, n_frames: int, band: float = 0.2) -> float:
    """Share of the attention mass of ``alignment`` ``[tokens, frames]`` (cropped to the valid
    ``n_tokens`` x ``n_frames``) lying within ``band`` (as a fraction of the text length) of the
    straight diagonal from (first token, first frame) to (last token, last frame)."""
    n_tokens, n_frames = int(n_tokens), int(n_frames)
    a = _array(alignment)[:n_tokens, :n_frames]
    if n_tokens < 1 or n_frames < 1:
        return 0.0
    token_pos = np.arange(n_tokens, dtype=np.float32)[:, None] / max(n_tokens - 1, 1)
    frame_pos = np.arange(n_frames, dtype=np.float32)[None, :] / max(n_frames - 1, 1)
    near = np.abs(token_pos - frame_pos) <= band
    total = a.sum()
    return float((a * near).sum() / total) if total > 0 else 0.0


def check_alignment(
    alignment: Any,
    n_tokens: int,
    hit_step_limit: bool,
    *,
    n_frames: int | None = None,
    jump_tolerance: int | None = None,
    end_tolerance: int | None = None,
) -> AlignmentReport:
    """Judge one alignment ``[tokens, frames]`` (attention weights of each decoder frame over
    the tokens; padding beyond ``n_tokens`` tokens / ``n_frames`` frames is ignored).

    ``jump_tolerance`` (default: 2 tokens or 10% of the text, whichever is more) is the largest
    backward move still counted as monotonic; ``end_tolerance`` (default: 2 tokens or 10%) how far
    before the last token the path may end. ``hit_step_limit``: the decoder stopped at its step
    limit instead of by its stop gate.
    """
    alignment = _array(alignment)
    if alignment.ndim != 2:
        raise ValueError(f"alignment must be [tokens, frames], got shape {tuple(alignment.shape)}")
    n_frames = alignment.shape[1] if n_frames is None else int(n_frames)
    n_tokens = int(n_tokens)
    if n_tokens < 1 or n_frames < 1 or n_tokens > alignment.shape[0] or n_frames > alignment.shape[1]:
        raise ValueError(
            f"n_tokens={n_tokens}, n_frames={n_frames} do not fit an alignment of shape {tuple(alignment.shape)}"
        )
    slack = max(2, round(0.1 * n_tokens))
    jump_tolerance = slack if jump_tolerance is None else jump_tolerance
    end_tolerance = slack if end_tolerance is None else end_tolerance

    path = alignment[:n_tokens, :n_frames].argmax(axis=0)  # [frames]
    steps = np.diff(path)
    max_back = int(max(0, (-steps).max())) if steps.size else 0
    last = int(path[-1])
    coverage = float(np.unique(path).size / n_tokens)

    reasons = []
    if max_back > jump_tolerance:
        reasons.append(NOT_MONOTONIC)
    if last < n_tokens - 1 - end_tolerance:
        reasons.append(STOPPED_EARLY)
    if hit_step_limit:
        reasons.append(HIT_STEP_LIMIT)
    return AlignmentReport(
        ok=not reasons,
        reasons=reasons,
        n_tokens=n_tokens,
        n_frames=n_frames,
        max_backward_jump=max_back,
        last_position=last,
        coverage=coverage,
        diagonality=diagonal_share(alignment, n_tokens, n_frames),
    )


__all__ = [
    "AlignmentReport",
    "HIT_STEP_LIMIT",
    "NOT_MONOTONIC",
    "STOPPED_EARLY",
    "check_alignment",
    "diagonal_share",
]

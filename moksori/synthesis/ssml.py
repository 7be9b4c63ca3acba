"""Synthesising a parsed SSML document (:mod:`moksori.text.ssml`) with a Synthesizer.

Each :class:`~moksori.text.ssml.Speech` part is synthesised at ``speed × rate`` (``<prosody
rate>``; the result must stay within the Synthesizer's speed range), each
:class:`~moksori.text.ssml.Pause` becomes that many seconds of digital silence (``<break>``),
and the pieces are joined in order. Every part's text goes through the voice's front end as
usual, strict, so unreadable characters are refused exactly as for plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from moksori.synthesis.synthesizer import (
    MAX_SPEED, MIN_SPEED, PARAGRAPH_SILENCE_S, SENTENCE_SILENCE_S, AlignmentFailure, SynthesisResult, Synthesizer,
)
from moksori.text import UnreadableTextError
from moksori.text.ssml import Pause, Speech, SsmlDocument


def _part_speed(speed: float, rate: float) -> float:
    value = float(speed) * rate
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise ValueError(f"speed {speed:g} × prosody rate {rate:g} = {value:g} is outside {MIN_SPEED}..{MAX_SPEED}")
    return value


def _silence(synthesizer: Synthesizer, seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * synthesizer.sample_rate), dtype=np.float32)


def _boundary_silence(synthesizer: Synthesizer, part: Speech, options: dict[str, Any]) -> np.ndarray:
    """The silence after a part that ends a sentence or paragraph where another part follows (a
    ``<prosody>`` change there): the Synthesizer puts it between sentences, but each part is
    synthesised alone and ends without it."""
    if part.boundary == "paragraph":
        return _silence(synthesizer, options.get("paragraph_silence_s", PARAGRAPH_SILENCE_S))
    if part.boundary == "sentence":
        return _silence(synthesizer, options.get("sentence_silence_s", SENTENCE_SILENCE_S))
    return np.zeros(0, dtype=np.float32)


def _checked_parts(synthesizer: Synthesizer, document: SsmlDocument, speed: float) -> list[Speech | Pause]:
    """The parts to render: a document with nothing to say, a rate out of range or unreadable
    characters in any part (UnreadableTextError) is refused before any synthesis, so a stream
    never fails half-way for them; parts that are only punctuation are dropped."""
    parts: list[Speech | Pause] = []
    for part in document.parts:
        if isinstance(part, Speech):
            _part_speed(speed, part.rate)
            try:
                synthesizer.voice.frontend.process(part.text, strict=True)
            except UnreadableTextError:
                raise
            except ValueError:
                continue  # nothing readable in it (only punctuation)
        parts.append(part)
    if not any(isinstance(part, Speech) for part in parts):
        raise ValueError("the SSML has nothing to say")
    return parts


def synthesize_ssml(
    synthesizer: Synthesizer,
    document: SsmlDocument,
    *,
    speed: float = 1.0,
    stop: Callable[[], bool] | None = None,
    **options: Any,
) -> SynthesisResult:
    """The whole document as one waveform, with the alignment failures of its parts."""
    pieces, failures, checked = [], [], 0
    for part in _checked_parts(synthesizer, document, speed):
        if isinstance(part, Pause):
            pieces.append(_silence(synthesizer, part.seconds))
            continue
        result = synthesizer.synthesize_report(part.text, speed=_part_speed(speed, part.rate), stop=stop, **options)
        pieces += [result.wave, _boundary_silence(synthesizer, part, options)]
        failures += result.alignment_failures
        checked += result.sentences_checked
    return SynthesisResult(np.concatenate(pieces), failures, checked)


def stream_ssml(
    synthesizer: Synthesizer, document: SsmlDocument, *, speed: float = 1.0,
    failures: list[AlignmentFailure] | None = None, **options: Any,
) -> Iterator[np.ndarray]:
    """Float32 chunks in order: the parts' streamed audio and the pauses' silence. The document is
    checked before the first chunk, every part's text included. ``failures``, when given, gets
    each part's alignment failures as the part finishes."""
    return _stream(synthesizer, _checked_parts(synthesizer, document, speed), speed, options, failures)


def _stream(
    synthesizer: Synthesizer, parts: list[Speech | Pause], speed: float, options: dict[str, Any],
    failures: list[AlignmentFailure] | None = None,
) -> Iterator[np.ndarray]:
    for part in parts:
        if isinstance(part, Pause):
            if part.seconds > 0:
                yield _silence(synthesizer, part.seconds)
        else:
            stream = synthesizer.stream(part.text, speed=_part_speed(speed, part.rate), **options)
            yield from stream
            if failures is not None:
                failures += stream.alignment_failures
            gap = _boundary_silence(synthesizer, part, options)
            if gap.size:
                yield gap

"""Clip quality measurements and the checks that turn them into reject reasons.

Used by preprocessing (why a clip was left out) and by the recording studio (the
verdict after each take).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from moksori.audio.processing import (
    active_rms,
    analysis_powers,
    power_to_db,
    trim_silence,
)

CLIP_LEVEL = 0.999
# Frames quieter than this (relative to the loudest) are silence for the edge measures.
EDGE_SILENCE_TOP_DB = 40.0
# SNR is reported at most this high (a clean clip with digital silence has no noise floor).
MAX_SNR_DB = 100.0


@dataclass
class ClipReport:
    """Measurements of one clip. Levels are dBFS, floored at -120 for digital silence."""

    duration_s: float
    sample_rate: int
    peak: float
    clipped_samples: int
    rms_dbfs: float
    snr_db: float
    leading_silence_s: float
    trailing_silence_s: float
    speech_duration_s: float
    chars_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QualityThresholds:
    """Limits for `check_clip`. Speaking rate counts letters and Hangul syllables per second."""

    min_duration_s: float = 0.5
    max_duration_s: float = 20.0
    silent_rms_dbfs: float = -60.0
    min_rms_dbfs: float = -40.0
    max_clipped_samples: int = 10
    min_snr_db: float = 15.0
    max_edge_silence_s: float = 1.0
    # Korean read speech runs at about 5-8 syllables per second; English at 10-16 letters.
    min_chars_per_second: float = 3.0
    max_chars_per_second: float = 25.0


@dataclass(frozen=True)
class Problem:
    """One failed check: a short machine code and a message naming the value and the limit."""

    code: str
    message: str


def analyze_clip(wave: np.ndarray, sample_rate: int, text: str | None = None) -> ClipReport:
    """Measure a mono clip.

    - rms_dbfs: RMS of the voiced frames (within 40 dB of the loudest 20 ms frame), so
      pauses do not lower it.
    - snr_db: 20 ms frames every 5 ms; the mean power of the loudest half of the frames
      is taken as speech, the mean power of the quietest 10 % as the noise floor. This
      needs some pause or edge silence in the clip (normal for read speech); it is
      capped at 100 dB when the floor is digital silence.
    - leading/trailing_silence_s: time before the first and after the last sound, as
      found by `trim_silence` (top_db 40, no margin); speech_duration_s is the time
      between them. A silent clip is all leading silence.
    - chars_per_second: letters, digits and Hangul syllables of `text` (spaces and
      punctuation not counted) over speech_duration_s; None without text or speech.
    """
    wave = np.asarray(wave, dtype=np.float32)
    total = wave.size
    powers = analysis_powers(wave, sample_rate)
    _, (start, end) = trim_silence(wave, sample_rate, top_db=EDGE_SILENCE_TOP_DB, margin_s=0.0, powers=powers)
    speech_duration_s = (end - start) / sample_rate
    rms = active_rms(wave, sample_rate, EDGE_SILENCE_TOP_DB, powers=powers)
    return ClipReport(
        duration_s=total / sample_rate,
        sample_rate=sample_rate,
        peak=float(np.max(np.abs(wave))) if total else 0.0,
        clipped_samples=int(np.count_nonzero(np.abs(wave) >= CLIP_LEVEL)),
        rms_dbfs=float(power_to_db(rms**2)),
        snr_db=estimate_snr_db(wave, sample_rate, powers=powers),
        leading_silence_s=start / sample_rate if end > 0 else total / sample_rate,
        trailing_silence_s=(total - end) / sample_rate if end > 0 else 0.0,
        speech_duration_s=speech_duration_s,
        chars_per_second=_chars_per_second(text, speech_duration_s),
    )


def estimate_snr_db(wave: np.ndarray, sample_rate: int, *, powers: np.ndarray | None = None) -> float:
    """Speech-to-noise-floor ratio from short-frame energy percentiles (see `analyze_clip`)."""
    if wave.size == 0:
        return 0.0
    if powers is None:
        powers = analysis_powers(wave, sample_rate)
    powers = np.sort(powers)
    noise_count = max(1, len(powers) // 10)
    noise = powers[:noise_count].mean()
    speech = powers[len(powers) // 2 :].mean()
    if speech <= 0.0:
        return 0.0
    if noise <= 0.0:
        return MAX_SNR_DB
    return float(min(MAX_SNR_DB, 10.0 * math.log10(speech / noise)))


def count_spoken_chars(text: str) -> int:
    """Letters, digits and Hangul syllables/jamo; spaces and punctuation are not counted."""
    return sum(1 for char in text if char.isalnum())


def _chars_per_second(text: str | None, speech_duration_s: float) -> float | None:
    if text is None or speech_duration_s <= 0.0:
        return None
    return count_spoken_chars(text) / speech_duration_s


def check_clip(report: ClipReport, thresholds: QualityThresholds | None = None) -> list[Problem]:
    """The problems found in a clip's report; an empty list means the clip is fine.

    A silent clip reports "silent" (and any duration problem) only: its other
    measurements carry no information.
    """
    limits = thresholds or QualityThresholds()
    problems = _duration_problems(report, limits)
    if report.rms_dbfs <= limits.silent_rms_dbfs:
        message = f"clip is silent: level {report.rms_dbfs:.1f} dBFS, at most {limits.silent_rms_dbfs:.1f} dBFS"
        return [Problem("silent", message), *problems]
    problems += _level_problems(report, limits)
    problems += _silence_problems(report, limits)
    problems += _rate_problems(report, limits)
    return problems


def _duration_problems(report: ClipReport, limits: QualityThresholds) -> list[Problem]:
    if report.duration_s < limits.min_duration_s:
        return [Problem("too_short", f"clip is {report.duration_s:.2f} s long, minimum {limits.min_duration_s:.2f} s")]
    if report.duration_s > limits.max_duration_s:
        return [Problem("too_long", f"clip is {report.duration_s:.2f} s long, maximum {limits.max_duration_s:.2f} s")]
    return []


def _level_problems(report: ClipReport, limits: QualityThresholds) -> list[Problem]:
    problems = []
    if report.rms_dbfs < limits.min_rms_dbfs:
        problems.append(
            Problem("too_quiet", f"speech level {report.rms_dbfs:.1f} dBFS is below {limits.min_rms_dbfs:.1f} dBFS")
        )
    if report.clipped_samples > limits.max_clipped_samples:
        problems.append(
            Problem(
                "clipped",
                f"{report.clipped_samples} samples at full scale (clipping), at most {limits.max_clipped_samples}",
            )
        )
    if report.snr_db < limits.min_snr_db:
        problems.append(
            Problem("noisy", f"signal-to-noise ratio {report.snr_db:.1f} dB is below {limits.min_snr_db:.1f} dB")
        )
    return problems


def _silence_problems(report: ClipReport, limits: QualityThresholds) -> list[Problem]:
    problems = []
    if report.leading_silence_s > limits.max_edge_silence_s:
        problems.append(
            Problem(
                "leading_silence",
                f"{report.leading_silence_s:.2f} s of silence before speech, at most {limits.max_edge_silence_s:.2f} s",
            )
        )
    if report.trailing_silence_s > limits.max_edge_silence_s:
        problems.append(
            Problem(
                "trailing_silence",
                f"{report.trailing_silence_s:.2f} s of silence after speech, at most {limits.max_edge_silence_s:.2f} s",
            )
        )
    return problems


def _rate_problems(report: ClipReport, limits: QualityThresholds) -> list[Problem]:
    rate = report.chars_per_second
    if rate is None:
        return []
    if rate > limits.max_chars_per_second:
        return [
            Problem("too_fast", f"{rate:.1f} characters per second, at most {limits.max_chars_per_second:.1f}")
        ]
    if rate < limits.min_chars_per_second:
        return [
            Problem("too_slow", f"{rate:.1f} characters per second, at least {limits.min_chars_per_second:.1f}")
        ]
    return []

"""Verdicts on studio takes: a list of checks, each looking at one take and giving problems.

A check is any callable ``(TakeContext) -> list[Problem]``; :func:`default_checks` lists the
studio's own and :func:`judge_take` runs a list of them. Another check (a speech recogniser
comparing the words with the script, a noise judge) is added by appending to that list.

The checks here, beyond the level/clipping/noise checks of :mod:`moksori.audio.quality`:

- ``shorter_than_expected`` / ``longer_than_expected``: the speech (first to last sound) is
  compared with the duration this sentence should take. Before the speaker has
  ``SPEAKER_RATE_MIN_TAKES`` kept takes the expectation is a prior from the sentence's
  syllables (Hangul syllables; English syllables from vowel groups) and a per-language range
  of read-speech rates; after that it is the speaker's own median seconds per syllable over
  their kept takes, with a tolerance (as mimic-recording-studio learns a speaker's rate).
- ``cut_off_end``: the last ``EDGE_WINDOW_S`` of the take is still speech (closer to the
  speech level than to the noise floor): the recording stopped while the speaker was talking.
- ``cut_off_start``: the same at the first frames: speech had begun before recording did.
- ``late_start``: more than ``max_edge_silence_s`` of silence before the speech.
- ``trailing_silence``: only for takes that are not trimmed automatically.

Our own code rather than a library: these are a few frame-energy comparisons on top of the
measures :mod:`moksori.audio.quality` already takes; no library judges a take against a script.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from moksori.audio import Problem, QualityThresholds, analyze_clip, check_clip
from moksori.audio.processing import HOP_SECONDS, analysis_powers, power_to_db
from moksori.audio.quality import ClipReport

# Read-speech rates (syllables per second of speech, pauses inside the sentence included).
# Korean read speech runs at about 5-8 syllables per second, English at about 3.5-5.5.
PRIOR_SYLLABLES_PER_S = {"ko": (2.5, 10.0), "en": (1.6, 7.0)}
SPEAKER_RATE_MIN_TAKES = 5
# The speaker's own rate: a take may be this much faster/slower than their median.
SPEAKER_FAST_FACTOR = 1.6
SPEAKER_SLOW_FACTOR = 1.8
# Short sentences vary most: this much time is allowed on either side besides the factors.
DURATION_SLACK_S = 0.3
# Too few syllables to judge a duration.
MIN_SYLLABLES = 4
EDGE_WINDOW_S = 0.05
# The speech/noise gap (dB) below which the edge checks cannot tell speech from noise.
MIN_EDGE_CONTRAST_DB = 12.0

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class TakeContext:
    """What a check sees: the take as uploaded (before any trimming), its script and language,
    the clip measures, and the speaker's learned rate (seconds per syllable; None until
    they have enough kept takes)."""

    wave: np.ndarray
    sample_rate: int
    text: str
    language: str
    report: ClipReport
    thresholds: QualityThresholds
    speaker_s_per_syllable: float | None = None
    auto_trimmed: bool = False


Check = Callable[[TakeContext], list[Problem]]


@dataclass(frozen=True)
class ExpectedDuration:
    """The range of speech durations (s) expected for a sentence, and where it comes from."""

    low_s: float
    high_s: float
    syllables: int
    source: str  # "prior" or "speaker"


def count_syllables(text: str) -> int:
    """Spoken syllables of a Korean/English sentence: Hangul syllables, one per vowel group of
    each Latin word (a silent final e dropped, at least one), one per digit. Digits say more
    than one syllable in speech; counting one keeps the cut-off check on the lenient side."""
    count = len(_HANGUL.findall(text)) + len(_DIGIT.findall(text))
    for word in _LATIN_WORD.findall(text):
        lower = word.lower()
        groups = len(_VOWEL_GROUP.findall(lower))
        if lower.endswith("e") and not lower.endswith(("le", "ee")) and groups > 1:
            groups -= 1
        count += max(1, groups)
    return count


def expected_duration(text: str, language: str, speaker_s_per_syllable: float | None = None) -> ExpectedDuration | None:
    """The expected speech duration of ``text``; None for sentences too short to judge."""
    syllables = count_syllables(text)
    if syllables < MIN_SYLLABLES:
        return None
    slowest, fastest = PRIOR_SYLLABLES_PER_S.get(language, PRIOR_SYLLABLES_PER_S["en"])
    low, high, source = syllables / fastest, syllables / slowest, "prior"
    if speaker_s_per_syllable is not None:
        # The speaker's window, within the prior's where their own pace lies inside it.
        typical = syllables * speaker_s_per_syllable
        own_low, own_high = typical / SPEAKER_FAST_FACTOR, typical * SPEAKER_SLOW_FACTOR
        low = max(own_low, low) if low < typical else own_low
        high = min(own_high, high) if high > typical else own_high
        source = "speaker"
    return ExpectedDuration(max(0.0, low - DURATION_SLACK_S), high + DURATION_SLACK_S, syllables, source)


def speaker_rate(samples: Iterable[tuple[str, float]], min_takes: int = SPEAKER_RATE_MIN_TAKES) -> float | None:
    """Median seconds per syllable over (text, speech seconds) of a speaker's kept takes; None
    with fewer than ``min_takes`` usable ones."""
    rates = [seconds / n for text, seconds in samples if (n := count_syllables(text)) >= MIN_SYLLABLES and seconds > 0]
    return statistics.median(rates) if len(rates) >= min_takes else None


# --- checks -------------------------------------------------------------------------------------


def clip_checks(context: TakeContext) -> list[Problem]:
    """Duration limits, silence, level, clipping and noise from :func:`check_clip`; its coarse
    characters-per-second window and edge-silence checks are replaced by the checks below."""
    loose = replace(context.thresholds, min_chars_per_second=0.0, max_chars_per_second=math.inf,
                    max_edge_silence_s=math.inf)
    return check_clip(context.report, loose)


def duration_check(context: TakeContext) -> list[Problem]:
    expected = expected_duration(context.text, context.language, context.speaker_s_per_syllable)
    speech = context.report.speech_duration_s
    if expected is None or speech <= 0.0:
        return []
    whose = "for you (from your kept takes)" if expected.source == "speaker" else "when read aloud"
    span = f"{expected.syllables} syllables usually take {expected.low_s:.1f}-{expected.high_s:.1f} s {whose}"
    if speech < expected.low_s:
        return [Problem("shorter_than_expected", f"speech lasts {speech:.2f} s, but this sentence's {span}")]
    if speech > expected.high_s:
        return [Problem("longer_than_expected", f"speech lasts {speech:.2f} s, but this sentence's {span}")]
    return []


def cut_off_end_check(context: TakeContext) -> list[Problem]:
    if _edge_is_speech(context, at_end=True):
        return [Problem("cut_off_end", f"the take ends in speech: sound in its last {EDGE_WINDOW_S * 1000:.0f} ms")]
    return []


def cut_off_start_check(context: TakeContext) -> list[Problem]:
    if _edge_is_speech(context, at_end=False):
        return [Problem("cut_off_start", f"the take starts in speech: sound in its first {EDGE_WINDOW_S * 1000:.0f} ms")]
    return []


def late_start_check(context: TakeContext) -> list[Problem]:
    limit = context.thresholds.max_edge_silence_s
    lead = context.report.leading_silence_s
    if context.report.speech_duration_s > 0 and lead > limit:
        trimmed = " (trimmed from the stored take)" if context.auto_trimmed else ""
        return [Problem("late_start", f"{lead:.2f} s of silence before the speech{trimmed}, at most {limit:.2f} s")]
    return []


def trailing_silence_check(context: TakeContext) -> list[Problem]:
    limit = context.thresholds.max_edge_silence_s
    tail = context.report.trailing_silence_s
    if context.auto_trimmed or tail <= limit:
        return []
    return [Problem("trailing_silence", f"{tail:.2f} s of silence after speech, at most {limit:.2f} s")]


def default_checks() -> list[Check]:
    """The studio's checks, in the order their problems are listed."""
    return [clip_checks, duration_check, cut_off_start_check, cut_off_end_check, late_start_check,
            trailing_silence_check]


def judge_take(context: TakeContext, checks: Sequence[Check] | None = None) -> list[Problem]:
    """Run ``checks`` (default: :func:`default_checks`). A silent take gets only the clip checks'
    verdict: the others have no speech to measure."""
    checks = default_checks() if checks is None else checks
    problems: list[Problem] = []
    for check in checks:
        found = check(context)
        problems += found
        if any(p.code == "silent" for p in found):
            break
    return problems


def make_context(wave: np.ndarray, sample_rate: int, text: str, language: str, thresholds: QualityThresholds,
                 *, speaker_s_per_syllable: float | None = None, auto_trimmed: bool = False) -> TakeContext:
    """Measure a take and bundle what the checks need."""
    report = analyze_clip(wave, sample_rate, text)
    return TakeContext(np.asarray(wave, np.float32), sample_rate, text, language, report, thresholds,
                       speaker_s_per_syllable, auto_trimmed)


def _edge_is_speech(context: TakeContext, *, at_end: bool) -> bool:
    """Whether the take's first/last EDGE_WINDOW_S is nearer the speech level than the noise floor.
    Speech level: mean power of the loudest half of the frames; floor: of the quietest tenth."""
    powers = analysis_powers(context.wave, context.sample_rate)
    edge_frames = max(1, round(EDGE_WINDOW_S / HOP_SECONDS))
    if powers.size < 4 * edge_frames or context.report.speech_duration_s <= 0:
        return False
    ordered = np.sort(powers)
    noise_db = float(power_to_db(ordered[: max(1, ordered.size // 10)].mean()))
    speech_db = float(power_to_db(ordered[ordered.size // 2 :].mean()))
    if speech_db - noise_db < MIN_EDGE_CONTRAST_DB:
        return False
    edge = powers[-edge_frames:] if at_end else powers[:edge_frames]
    edge_db = float(power_to_db(edge.mean()))
    return edge_db > (speech_db + noise_db) / 2

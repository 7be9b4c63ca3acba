"""Take verdicts (moksori.studio.takes) on synthetic takes: espeak-ng sentences cut short, started
in the middle, padded with silence, and judged against the prior and a learned speaker rate."""

from __future__ import annotations

import numpy as np
import pytest

from moksori.audio import Problem, QualityThresholds
from moksori.studio.takes import (
    count_syllables,
    default_checks,
    expected_duration,
    judge_take,
    make_context,
    speaker_rate,
)

RATE = 22050


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def verdict(wave: np.ndarray, text: str, language: str = "ko", **options) -> list[str]:
    context = make_context(wave, RATE, text, language, QualityThresholds(), **options)
    return [p.code for p in judge_take(context)]


@pytest.fixture(scope="module")
def sentence(spoken) -> tuple[str, np.ndarray]:
    """A 21-syllable Korean sentence (espeak, with 80 ms of silence either side)."""
    text, wave = spoken[1]
    assert count_syllables(text) == 21
    return text, wave


def test_count_syllables_korean_english_and_digits():
    assert count_syllables("안녕하세요, 만나서 반갑습니다.") == 13
    assert count_syllables("Good morning, and thank you for coming today.") == 11
    assert count_syllables("The apple cake") == 4  # silent final e
    assert count_syllables("3시에 KTX") == 4


def test_whole_takes_pass_in_korean_and_english(spoken):
    from moksori.audio import resample
    from moksori.espeak import synthesize

    for text, wave in spoken[:3]:
        assert verdict(np.concatenate([silence(0.3), wave, silence(0.5)]), text) == [], text
    text = "She measured the flour carefully before pouring it into the bowl."
    english, rate = synthesize(text, voice="en")
    english = np.concatenate([silence(0.3), resample(english, rate, RATE), silence(0.3)])
    assert verdict(english, text, "en") == []


def test_a_take_that_stops_mid_speech_is_cut_off(sentence):
    text, wave = sentence
    assert verdict(wave[: int(wave.size * 0.6)], text) == ["cut_off_end"]


def test_the_issues_take_1_25_s_of_21_syllables_is_too_short(sentence):
    text, wave = sentence
    # Speech stopped after 1.25 s and the recording ran on: no sound at the end, yet far too short.
    take = np.concatenate([wave[: int(RATE * (0.08 + 1.25))], silence(0.6)])
    problems = judge_take(make_context(take, RATE, text, "ko", QualityThresholds()))
    assert [p.code for p in problems] == ["shorter_than_expected"]
    assert "speech lasts 1.2" in problems[0].message and "21 syllables usually take 1.8-8.7 s" in problems[0].message


def test_a_take_that_starts_mid_speech_is_cut_off_at_the_start(sentence):
    text, wave = sentence
    assert "cut_off_start" in verdict(np.concatenate([wave[int(RATE * 0.6):], silence(0.4)]), text)


def test_a_late_start_is_flagged_even_when_trimmed(sentence):
    text, wave = sentence
    late = np.concatenate([silence(2.0), wave, silence(0.3)])
    assert verdict(late, text, auto_trimmed=True) == ["late_start"]
    assert verdict(np.concatenate([silence(0.6), wave, silence(0.3)]), text) == []
    # The trailing silence counts only when the stored take keeps it.
    long_tail = np.concatenate([wave, silence(2.0)])
    assert verdict(long_tail, text) == ["trailing_silence"] and verdict(long_tail, text, auto_trimmed=True) == []


def test_the_speakers_own_rate_tightens_the_window(sentence):
    text, wave = sentence
    take = np.concatenate([silence(0.3), wave, silence(0.3)])  # about 3 s for 21 syllables
    assert verdict(take, text) == []
    slow_speaker = speaker_rate([(text, 21 * 0.3)] * 5)
    assert slow_speaker == pytest.approx(0.3)
    assert verdict(take, text, speaker_s_per_syllable=slow_speaker) == ["shorter_than_expected"]
    assert verdict(np.concatenate([take, wave, silence(0.3)]), text) == []  # a 6 s take: fine by the prior...
    assert verdict(np.concatenate([take, wave]), text, speaker_s_per_syllable=0.1) == ["longer_than_expected"]


def test_speaker_rate_waits_for_enough_takes_and_uses_the_median():
    assert speaker_rate([("가나다라마바사아자차", 2.0)] * 4) is None
    takes = [("가나다라마바사아자차", s) for s in (1.0, 1.2, 1.4, 1.6, 9.0)]
    assert speaker_rate(takes) == pytest.approx(0.14)
    assert speaker_rate([("짧다", 1.0)] * 10) is None  # too short to tell a rate
    assert expected_duration("짧다", "ko") is None
    prior, own = expected_duration("가나다라마바사아자차", "ko"), expected_duration("가나다라마바사아자차", "ko", 0.14)
    assert prior.source == "prior" and own.source == "speaker"
    assert own.low_s == prior.low_s and own.high_s < prior.high_s  # never looser than the prior


def test_silence_gets_only_the_silent_verdict(sentence):
    text, _ = sentence
    assert verdict(silence(2.0), text) == ["silent"]


def test_a_check_can_be_added_to_the_list(sentence):
    text, wave = sentence

    def script_match(context) -> list[Problem]:
        return [Problem("wrong_words", "heard something else")] if "아침" in context.text else []

    context = make_context(np.concatenate([silence(0.3), wave, silence(0.3)]), RATE, text, "ko", QualityThresholds())
    assert [p.code for p in judge_take(context, [*default_checks(), script_match])] == ["wrong_words"]

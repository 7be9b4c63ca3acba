import numpy as np
import pytest

from moksori.audio import ClipReport, Problem, QualityThresholds, analyze_clip, check_clip

RATE = 22050


def sine(frequency: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    time = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def take(tone_seconds: float = 2.0, lead: float = 0.3, tail: float = 0.3, amplitude: float = 0.3) -> np.ndarray:
    """A 'recording': a tone with silence around it, like a read sentence."""
    return np.concatenate([silence(lead), sine(220, tone_seconds, amplitude), silence(tail)])


def codes(problems: list[Problem]) -> list[str]:
    return [problem.code for problem in problems]


def report(**changes) -> ClipReport:
    values = dict(
        duration_s=3.0, sample_rate=RATE, peak=0.5, clipped_samples=0, rms_dbfs=-20.0, snr_db=40.0,
        leading_silence_s=0.2, trailing_silence_s=0.2, speech_duration_s=2.6, chars_per_second=8.0,
    )
    values.update(changes)
    return ClipReport(**values)


def test_clean_take_has_no_problems():
    clip = analyze_clip(take(), RATE, "안녕하세요 반갑습니다")
    assert clip.duration_s == pytest.approx(2.6, abs=1e-3)
    assert clip.sample_rate == RATE
    assert clip.peak == pytest.approx(0.3, abs=1e-3)
    assert clip.clipped_samples == 0
    assert clip.rms_dbfs == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.3)
    assert check_clip(clip) == []


def test_clipped_sine_is_counted():
    loud = np.clip(sine(220, 1.0, amplitude=1.5), -1.0, 1.0)
    clip = analyze_clip(loud, RATE)
    # |1.5 sin| >= 0.999 on about 46% of each period.
    expected = np.count_nonzero(np.abs(loud) >= 0.999)
    assert clip.clipped_samples == expected
    assert 0.4 * loud.size < expected < 0.55 * loud.size
    assert clip.peak == pytest.approx(1.0)
    assert "clipped" in codes(check_clip(clip))


def test_all_zeros_is_silent():
    clip = analyze_clip(silence(2.0), RATE, "말")
    assert clip.rms_dbfs == -120.0
    assert clip.peak == 0.0
    assert clip.chars_per_second is None
    problems = check_clip(clip)
    assert codes(problems) == ["silent"]
    assert "dBFS" in problems[0].message


def test_silent_short_clip_reports_both():
    assert codes(check_clip(analyze_clip(silence(0.2), RATE))) == ["silent", "too_short"]


def test_snr_orders_clean_above_noisy():
    rng = np.random.default_rng(0)
    clean = take()
    hiss = lambda level: (level * rng.standard_normal(clean.size)).astype(np.float32)  # noqa: E731

    clean_snr = analyze_clip(clean, RATE).snr_db
    light_snr = analyze_clip(clean + hiss(0.001), RATE).snr_db
    heavy_snr = analyze_clip(clean + hiss(0.03), RATE).snr_db

    assert clean_snr == 100.0
    assert clean_snr > light_snr > heavy_snr
    # Speech RMS 0.21 over noise RMS 0.03 is about 17 dB; the estimate should be near.
    assert heavy_snr == pytest.approx(17.0, abs=3.0)
    assert "noisy" in codes(check_clip(analyze_clip(clean + hiss(0.1), RATE)))
    assert "noisy" not in codes(check_clip(analyze_clip(clean + hiss(0.001), RATE)))


def test_padded_silence_is_measured():
    clip = analyze_clip(take(tone_seconds=1.0, lead=1.5, tail=0.4), RATE)
    assert clip.leading_silence_s == pytest.approx(1.5, abs=0.005)
    assert clip.trailing_silence_s == pytest.approx(0.4, abs=0.005)
    assert clip.speech_duration_s == pytest.approx(1.0, abs=0.005)
    problems = check_clip(clip)
    assert codes(problems) == ["leading_silence"]
    assert "1.50" in problems[0].message and "1.00" in problems[0].message


def test_chars_per_second_ignores_spaces_and_punctuation():
    text = "안녕하세요, 반갑습니다! Hi."  # 10 Hangul syllables + 2 letters
    clip = analyze_clip(take(tone_seconds=2.0, lead=0.5, tail=0.5), RATE, text)
    assert clip.chars_per_second == pytest.approx(12 / clip.speech_duration_s)
    assert clip.chars_per_second == pytest.approx(6.0, abs=0.2)
    assert analyze_clip(take(), RATE).chars_per_second is None


def test_speaking_rate_limits():
    fast = analyze_clip(take(tone_seconds=0.6), RATE, "가" * 40)
    assert "too_fast" in codes(check_clip(fast))
    slow = analyze_clip(take(tone_seconds=4.0), RATE, "네")
    assert "too_slow" in codes(check_clip(slow))


def test_duration_limits():
    assert codes(check_clip(report(duration_s=0.3))) == ["too_short"]
    assert codes(check_clip(report(duration_s=25.0))) == ["too_long"]
    custom = QualityThresholds(max_duration_s=2.0)
    assert codes(check_clip(report(), custom)) == ["too_long"]


def test_quiet_take_is_too_quiet_not_silent():
    clip = analyze_clip(take(amplitude=0.005), RATE)  # about -49 dBFS
    assert codes(check_clip(clip)) == ["too_quiet"]
    assert "-40.0" in check_clip(clip)[0].message


def test_each_problem_message_names_value_and_limit():
    problems = check_clip(
        report(clipped_samples=50, snr_db=5.0, trailing_silence_s=2.5, chars_per_second=40.0)
    )
    assert codes(problems) == ["clipped", "noisy", "trailing_silence", "too_fast"]
    messages = [problem.message for problem in problems]
    assert "50" in messages[0] and "10" in messages[0]
    assert "5.0" in messages[1] and "15.0" in messages[1]
    assert "2.50" in messages[2] and "1.00" in messages[2]
    assert "40.0" in messages[3] and "25.0" in messages[3]


def test_report_to_dict():
    values = analyze_clip(take(), RATE).to_dict()
    assert set(values) >= {"duration_s", "snr_db", "chars_per_second"}

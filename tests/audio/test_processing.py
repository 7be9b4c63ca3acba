import numpy as np
import pytest

from moksori.audio import normalize_loudness, trim_silence

RATE = 22050


def sine(frequency: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    time = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def rms_dbfs(wave: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(wave.astype(np.float64) ** 2))))


def test_trim_removes_padded_silence_within_tolerance():
    tone = sine(300, 1.0)
    padded = np.concatenate([silence(0.7), tone, silence(1.3)])

    trimmed, (start, end) = trim_silence(padded, RATE, margin_s=0.0)

    tolerance = round(0.005 * RATE)
    assert abs(start - round(0.7 * RATE)) <= tolerance
    assert abs(end - round(1.7 * RATE)) <= tolerance
    np.testing.assert_array_equal(trimmed, padded[start:end])


def test_trim_keeps_margin_and_inner_pauses():
    word = sine(300, 0.4)
    padded = np.concatenate([silence(0.5), word, silence(0.3), word, silence(0.5)])

    trimmed, (start, end) = trim_silence(padded, RATE, margin_s=0.1)

    assert abs(start - round(0.4 * RATE)) <= round(0.005 * RATE)
    assert abs(end - round(1.7 * RATE)) <= round(0.005 * RATE)
    # The 0.3 s pause between the two words is kept.
    assert trimmed.size > round(1.1 * RATE)


def test_trim_ignores_noise_below_top_db():
    rng = np.random.default_rng(0)
    noise = lambda seconds: (1e-4 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)  # noqa: E731
    padded = np.concatenate([noise(0.5), sine(300, 1.0), noise(0.5)])

    _, (start, end) = trim_silence(padded, RATE, top_db=40.0, margin_s=0.0)
    assert abs(start - round(0.5 * RATE)) <= round(0.005 * RATE)
    assert abs(end - round(1.5 * RATE)) <= round(0.005 * RATE)

    # With a huge top_db the faint noise counts as sound and nothing is cut.
    _, kept = trim_silence(padded, RATE, top_db=100.0, margin_s=0.0)
    assert kept == (0, padded.size)


def test_trim_of_digital_silence_is_empty():
    trimmed, kept = trim_silence(silence(1.0), RATE)
    assert trimmed.size == 0
    assert kept == (0, 0)


def test_trim_without_silence_keeps_everything():
    tone = sine(300, 0.5)
    trimmed, kept = trim_silence(tone, RATE)
    assert kept == (0, tone.size)
    np.testing.assert_array_equal(trimmed, tone)


@pytest.mark.parametrize("amplitude", [0.01, 0.05, 0.9])
def test_normalize_reaches_target_rms(amplitude):
    tone = sine(220, 1.0, amplitude=amplitude)
    out = normalize_loudness(tone, target_dbfs=-20.0)
    assert out.dtype == np.float32
    assert rms_dbfs(out) == pytest.approx(-20.0, abs=0.1)


def test_normalize_measures_only_the_voiced_part():
    tone = sine(220, 1.0, amplitude=0.1)
    padded = np.concatenate([silence(2.0), tone, silence(2.0)])
    out = normalize_loudness(padded, target_dbfs=-20.0)
    voiced = out[round(2.0 * RATE) : round(3.0 * RATE)]
    assert rms_dbfs(voiced) == pytest.approx(-20.0, abs=0.2)


def test_normalize_respects_peak_limit():
    # A spike makes the peak far above the RMS: the target would push it past the limit.
    wave = sine(220, 1.0, amplitude=0.01)
    wave[1000] = 0.5
    out = normalize_loudness(wave, target_dbfs=-10.0, peak_limit=0.95)
    assert np.max(np.abs(out)) == pytest.approx(0.95, abs=1e-4)
    assert rms_dbfs(out) < -10.0


def test_normalize_returns_silence_unchanged():
    zeros = silence(0.5)
    out = normalize_loudness(zeros)
    np.testing.assert_array_equal(out, zeros)
    assert out is not zeros

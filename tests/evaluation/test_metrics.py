import math

import librosa
import numpy as np
import pytest

from moksori.evaluation import metrics
from moksori.evaluation.metrics import (
    character_error_rate,
    duration_ratio,
    f0_metrics,
    mcd_dtw,
    mel_cepstrum,
)


def test_mel_cepstrum_shape_and_frame_rate(clips):
    wave, sample_rate = clips["sentence"]
    cepstrum = mel_cepstrum(wave, sample_rate)
    _, _, hop = metrics.analysis_frames(sample_rate)
    assert cepstrum.shape == (1 + wave.size // hop, 25)
    assert np.all(np.isfinite(cepstrum))
    assert mel_cepstrum(wave, sample_rate, n_coeffs=13).shape[1] == 13


def test_mel_cepstrum_c0_is_the_level_and_the_rest_the_shape():
    # A gain of 4 adds log(4) to every band's log amplitude: c0 (the mean) moves by exactly that,
    # the spectral shape c1.. does not move at all.
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    quiet, loud = mel_cepstrum(wave, 22050), mel_cepstrum(4.0 * wave, 22050)
    np.testing.assert_allclose(loud[:, 0] - quiet[:, 0], np.log(4.0), atol=1e-6)
    np.testing.assert_allclose(loud[:, 1:], quiet[:, 1:], atol=1e-6)


def test_mcd_of_a_recording_against_itself_is_zero(clips):
    wave, sample_rate = clips["sentence"]
    assert mcd_dtw(wave, wave, sample_rate) == 0.0


def test_mcd_against_a_different_sentence_is_large(clips):
    wave, sample_rate = clips["sentence"]
    other, _ = clips["other"]
    # Measured: about 5.2 dB (the same espeak voice, other words).
    assert mcd_dtw(wave, other, sample_rate) > 3.0


def test_mcd_of_the_same_sentence_spoken_slower_is_small(clips):
    # The same voice and words at 140 instead of 175 words per minute: only the timing differs,
    # which DTW absorbs (measured about 1.1 dB, against about 5.2 dB for another sentence).
    wave, sample_rate = clips["sentence"]
    slower, _ = clips["slower"]
    other, _ = clips["other"]
    assert mcd_dtw(wave, slower, sample_rate) < 2.0
    assert mcd_dtw(wave, slower, sample_rate) < 0.5 * mcd_dtw(wave, other, sample_rate)


def test_dtw_absorbs_a_time_stretch(clips):
    wave, sample_rate = clips["sentence"]
    other, _ = clips["other"]
    stretched = librosa.effects.time_stretch(wave, rate=0.9)
    with_dtw = mcd_dtw(wave, stretched, sample_rate)
    # The phase vocoder itself smears espeak's buzzy spectrum (about 3.3 dB here), so the bound is
    # relative: well below another sentence, and below a plain linear time mapping of the frames.
    alignment = metrics.align(wave, stretched, sample_rate)
    n_ref, n_syn = len(alignment.reference_cepstrum), len(alignment.synthesized_cepstrum)
    linear = np.round(np.arange(n_ref) * (n_syn - 1) / (n_ref - 1)).astype(int)
    difference = alignment.reference_cepstrum[:, 1:] - alignment.synthesized_cepstrum[linear, 1:]
    without_dtw = metrics.MCD_SCALE * np.sqrt((difference**2).sum(axis=1)).mean()
    assert with_dtw < 0.85 * without_dtw
    assert with_dtw < 0.75 * mcd_dtw(wave, other, sample_rate)


def test_mcd_ignores_edge_silence(clips):
    wave, sample_rate = clips["sentence"]
    padded = np.concatenate([np.zeros(sample_rate // 2, np.float32), wave, np.zeros(sample_rate, np.float32)])
    assert mcd_dtw(wave, padded, sample_rate) < 0.3


def test_mcd_of_silence_is_an_error(clips):
    wave, sample_rate = clips["sentence"]
    with pytest.raises(ValueError, match="no sound"):
        mcd_dtw(wave, np.zeros(sample_rate, np.float32), sample_rate)


def test_f0_of_a_recording_against_itself(clips):
    wave, sample_rate = clips["sentence"]
    scores = f0_metrics(wave, wave, sample_rate)
    assert scores["f0_rmse_cents"] == 0.0
    assert scores["vuv_error"] == 0.0
    assert scores["voiced_both"] > 50


def test_f0_rmse_of_a_pitch_shifted_copy_is_about_the_shift(clips):
    wave, sample_rate = clips["sentence"]
    shifted = librosa.effects.pitch_shift(wave, sr=sample_rate, n_steps=2.0)  # 200 cents up
    scores = f0_metrics(wave, shifted, sample_rate)
    assert 120.0 < scores["f0_rmse_cents"] < 300.0
    assert scores["vuv_error"] < 0.3


def test_f0_rmse_is_nan_when_nothing_is_voiced_in_both(clips):
    wave, sample_rate = clips["sentence"]
    noise = (0.1 * np.random.default_rng(1).standard_normal(wave.size)).astype(np.float32)
    scores = f0_metrics(wave, noise, sample_rate)
    assert scores["voiced_both"] == 0 and math.isnan(scores["f0_rmse_cents"])
    assert scores["vuv_error"] > 0.3


def test_duration_ratio(clips):
    wave, sample_rate = clips["sentence"]
    assert duration_ratio(wave, wave, sample_rate) == 1.0
    twice_as_long = librosa.effects.time_stretch(wave, rate=0.5)
    assert duration_ratio(wave, twice_as_long, sample_rate) == pytest.approx(2.0, rel=0.03)
    assert duration_ratio(twice_as_long, wave, sample_rate) == pytest.approx(0.5, rel=0.03)
    padded = np.concatenate([np.zeros(sample_rate, np.float32), wave, np.zeros(sample_rate, np.float32)])
    assert duration_ratio(wave, padded, sample_rate) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("안녕하세요", "안녕하세요", 0.0),
        ("안녕하세요", "안녕하세오", 0.2),  # one substitution in five syllables
        ("안녕하세요", "안녕하요", 0.2),  # one deletion
        ("안녕하세요", "안녕하세요요", 0.2),  # one insertion
        ("안녕하세요", "", 1.0),
        ("안녕하세요.", "안녕 하세요!", 0.0),  # spaces and punctuation do not count
        ("Hello, world", "hello world", 0.0),  # nor does case
        ("abcd", "xyzw", 1.0),
        ("ab", "abcdef", 2.0),  # insertions can take CER past 1
    ],
)
def test_character_error_rate(reference, hypothesis, expected):
    assert character_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_character_error_rate_compares_korean_syllables_after_nfc():
    decomposed = "\u1100\u1161\u11a8"  # 각 as conjoining jamo (NFD)
    assert character_error_rate("각", decomposed) == 0.0
    assert character_error_rate("각하", "각허") == 0.5  # a syllable is one character, not three jamo


def test_character_error_rate_needs_a_reference():
    with pytest.raises(ValueError, match="no characters"):
        character_error_rate(" .,!", "안녕")

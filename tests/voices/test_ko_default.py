"""The real default voice shipped in the package (moksori/voices/ko_default), not a stand-in."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from moksori.cli import main
from moksori.synthesis import Synthesizer, load_voice
from moksori.voices import default_voice_path, resolve_voice

SHORT = "안녕하세요."
LONG = "안녕하세요. 오늘은 2026년 11월 21일입니다. 사과 3개에 4,500원이고, 배는 두 개에 삼천 원이에요."


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    return Synthesizer(resolve_voice(None), num_threads=1)


def test_the_package_ships_a_complete_small_voice():
    folder = default_voice_path()
    card = json.loads((folder / "voice.json").read_text(encoding="utf-8"))
    assert card["name"] == "ko_default" and card["language"] == "ko"
    assert card["acoustic"]["model_name"] == "glow_tts" and card["vocoder"]["model_name"] == "vocos"
    assert card["licence"] and card["licence"] != "unspecified"
    assert card["training"]["acoustic"]["step"] > 0 and card["training"]["vocoder"]["step"] > 0
    assert (folder / "README.md").is_file(), "the voice card's README is missing"
    total_mb = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
    assert total_mb < 80, f"the shipped voice is {total_mb:.0f} MB; keep it to tens of MB"
    load_voice(folder)  # checksums and weights fit their configs


def test_say_without_a_voice_speaks_with_the_shipped_one(tmp_path, capsys):
    durations = []
    for name, text in (("short", SHORT), ("long", LONG)):
        out = tmp_path / f"{name}.wav"
        assert main(["say", text, "-o", str(out), "--seed", "0", "--threads", "1"]) == 0
        wave, rate = soundfile.read(out)
        assert rate == 22050
        assert np.sqrt(np.mean(wave**2)) > 0.01, f"{name}: the wav is (nearly) silent"
        durations.append(len(wave) / rate)
    assert "real-time factor" in capsys.readouterr().out
    assert 0.4 < durations[0] < 3.0, durations
    assert durations[1] > 3 * durations[0], f"a longer text must give longer speech: {durations}"


def test_duration_follows_the_text_and_speed(synthesizer):
    one = synthesizer.synthesize("사과", seed=0)
    three = synthesizer.synthesize("사과 배 복숭아 포도 수박", seed=0)
    slow = synthesizer.synthesize("사과 배 복숭아 포도 수박", speed=0.5, seed=0)
    assert len(three) > 2 * len(one)
    assert 1.6 < len(slow) / len(three) < 2.4


def test_streamed_pieces_join_to_the_whole(synthesizer):
    whole = synthesizer.synthesize(LONG, seed=3)
    pieces = np.concatenate(list(synthesizer.stream(LONG, seed=3)))
    assert pieces.shape == whole.shape
    np.testing.assert_allclose(pieces, whole, atol=1e-4)

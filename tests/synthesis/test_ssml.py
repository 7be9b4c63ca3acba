"""SSML synthesis (moksori.synthesis.ssml) with the tiny voice: the silence at a sentence or
paragraph end survives a prosody change, in the whole waveform and in the stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moksori.synthesis import Synthesizer
from moksori.synthesis.ssml import stream_ssml, synthesize_ssml
from moksori.text.ssml import parse_ssml


@pytest.fixture(scope="module")
def synth(voice_dir: Path) -> Synthesizer:
    return Synthesizer(voice_dir, use_onnx=False)


def _seconds(synth: Synthesizer, ssml: str, **options) -> float:
    wave = synthesize_ssml(synth, parse_ssml(ssml), seed=1, **options).wave
    streamed = np.concatenate(list(stream_ssml(synth, parse_ssml(ssml), seed=1, **options)))
    assert streamed.size == wave.size
    return wave.size / synth.sample_rate


def test_a_paragraph_end_at_a_prosody_change_keeps_its_silence(synth: Synthesizer) -> None:
    same_rate = _seconds(synth, '<speak><p>하나 둘.</p><p><prosody rate="1.0">셋 넷.</prosody></p></speak>')
    plain = synth.synthesize("하나 둘.\n\n셋 넷.", seed=1).size / synth.sample_rate
    assert same_rate == pytest.approx(plain)
    # At rate 1.0 the second part equals the plain text's; the paragraph's 0.6 s stays between them.
    changed = _seconds(synth, '<speak><p>하나 둘.</p><p><prosody rate="2.0">셋 넷.</prosody></p></speak>')
    second_fast = synth.synthesize("셋 넷.", seed=1, speed=2.0).size / synth.sample_rate
    first = synth.synthesize("하나 둘.", seed=1).size / synth.sample_rate
    assert changed == pytest.approx(first + 0.6 + second_fast, abs=1e-3)


def test_a_sentence_end_at_a_prosody_change_keeps_the_chosen_silence(synth: Synthesizer) -> None:
    ssml = '<speak>하나 둘. <prosody rate="2.0">셋 넷.</prosody></speak>'
    assert _seconds(synth, ssml, sentence_silence_s=1.0) - _seconds(synth, ssml, sentence_silence_s=0.0) \
        == pytest.approx(1.0, abs=1e-3)

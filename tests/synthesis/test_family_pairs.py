"""Every acoustic family pairs with every vocoder family: a voice of the two (tiny, untrained)
bundles, loads and speaks, whole and streamed. The pairs come from the registry, so a new family
is checked with all the others as soon as it is registered."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from moksori.bench.synth import _random_voice
from moksori.models import registry
from moksori.synthesis import Synthesizer, load_voice

ACOUSTIC = registry.names(registry.ACOUSTIC, weights=True)
VOCODERS = registry.names(registry.VOCODER)


def _config(acoustic: str, vocoder: str) -> str:
    family = registry.get(vocoder)
    return f"{acoustic} tiny + {vocoder}" + (" tiny" if family.has_weights else "")


def test_the_pairs_cover_every_registered_family() -> None:
    assert {"glow_tts", "tacotron2", "flowtron"} <= set(ACOUSTIC)
    assert {"hifigan", "vocos", "waveglow", "wavenet", "griffin_lim"} <= set(VOCODERS)


@pytest.mark.parametrize("acoustic,vocoder", list(itertools.product(ACOUSTIC, VOCODERS)))
def test_pair_bundles_and_speaks(acoustic: str, vocoder: str, tmp_path: Path) -> None:
    voice = load_voice(_random_voice(_config(acoustic, vocoder), tmp_path))
    assert voice.config["acoustic"]["model_name"] == acoustic
    assert voice.vocoder_name == vocoder
    synth = Synthesizer(voice, use_onnx=False, num_threads=1)
    hop = voice.mel_config.hop_length
    whole = synth.synthesize("네.", seed=0)
    assert whole.dtype == np.float32 and whole.ndim == 1
    assert whole.size >= 4 * hop, f"{whole.size} samples"
    assert np.isfinite(whole).all() and np.abs(whole).max() > 0
    streamed = np.concatenate(list(synth.stream("네.", seed=0)))
    assert streamed.size == whole.size
    assert np.isfinite(streamed).all()

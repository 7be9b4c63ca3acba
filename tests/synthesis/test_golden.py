"""The shipped voice speaks as it did before the model-plugins redesign.

``data/golden_ko_default.npz`` was written by the synthesizer of commit 925aa6b (before the
registry and the acoustic/vocoder interfaces existed) for one text, seed, speed and noise scale:
the PyTorch path, the streaming path and the ONNX Runtime path. On the machine that wrote it the
redesigned code reproduces all three bit for bit; other CPUs may round differently in the last
bits, hence the tolerance (far below anything audible: 1e-4 of full scale). One change since is
deliberate and applied to the golden audio here: each sentence's last ``FADE_OUT_S`` fades out
(:func:`_with_sentence_fades`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from moksori.synthesis import Synthesizer, export_onnx
from moksori.synthesis.synthesizer import FADE_OUT_S
from moksori.voices import default_voice_available, default_voice_path

GOLDEN = Path(__file__).parent / "data" / "golden_ko_default.npz"
TEXT = "안녕하세요. 반갑습니다."
OPTIONS = {"seed": 7, "speed": 1.1, "noise_scale": 0.5}
ATOL = 1e-4

pytestmark = pytest.mark.skipif(not default_voice_available(), reason="no shipped default voice in this checkout")


def _with_sentence_fades(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The golden audio as the sentence-end fade leaves it: the samples before each run of digital
    silence (at least 0.1 s, a sentence gap) and the last ones ramp down to zero."""
    n = round(FADE_OUT_S * sample_rate)
    ramp = np.arange(n, 0, -1, dtype=np.float32) / np.float32(n + 1)
    silent = np.concatenate([[False], wave == 0, [False]])
    starts = np.nonzero(~silent[:-1] & silent[1:])[0]
    ends = np.nonzero(silent[:-1] & ~silent[1:])[0]
    sentence_ends = [start for start, end in zip(starts, ends) if end - start >= sample_rate // 10 and start > 0]
    faded = wave.copy()
    for end in [*sentence_ends, wave.size]:
        faded[end - n : end] *= ramp
    return faded


def _check(name: str, wave: np.ndarray) -> None:
    expected = _with_sentence_fades(np.load(GOLDEN)[name], 22050)
    assert wave.dtype == np.float32
    assert wave.shape == expected.shape, f"{name}: {wave.shape} samples, before the change {expected.shape}"
    np.testing.assert_allclose(wave, expected, rtol=0, atol=ATOL, err_msg=name)


def test_torch_path_speaks_as_before() -> None:
    synthesizer = Synthesizer(default_voice_path(), use_onnx=False)
    _check("torch", synthesizer.synthesize(TEXT, **OPTIONS))
    _check("stream", np.concatenate(list(synthesizer.stream(TEXT, **OPTIONS))))


def test_onnx_path_speaks_as_before(tmp_path: Path) -> None:
    voice = tmp_path / "ko_default"
    shutil.copytree(default_voice_path(), voice)
    export_onnx(voice)
    _check("onnx", Synthesizer(voice, use_onnx=True).synthesize(TEXT, **OPTIONS))

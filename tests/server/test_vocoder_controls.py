"""The vocoder's controls over HTTP (WaveGlow's sampling temperature and denoiser): on /infer,
/v1/audio/speech and /synthesize, validated with a 4xx that names the field."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from moksori.bench.synth import _random_voice


@pytest.fixture(scope="module")
def waveglow_voices(tmp_path_factory) -> Path:
    """A voices folder whose one voice is a tiny Glow-TTS + WaveGlow with random weights."""
    work = tmp_path_factory.mktemp("waveglow_voice")
    _random_voice("glow_tts tiny + waveglow tiny", work)  # work/voice, beside the two checkpoints
    root = tmp_path_factory.mktemp("waveglow_voices")
    (work / "voice").rename(root / "wg")
    return root


def _audio(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return soundfile.read(io.BytesIO(response.content), dtype="float32")[0]


def test_vocoder_sigma_and_denoise_change_the_audio_on_every_endpoint(make_client, waveglow_voices) -> None:
    client = make_client(voices_dir=waveglow_voices)
    text = "안녕하세요. 반갑습니다."
    default = _audio(client.get("/infer", params={"text": text}))
    assert np.abs(default).max() > 0
    # Defaults spelled out give the same audio; other values give other audio.
    same = _audio(client.get("/infer", params={"text": text, "vocoder_sigma": 0.666, "denoise": 0.01}))
    np.testing.assert_allclose(same, default, atol=1e-4)
    quiet = _audio(client.get("/infer", params={"text": text, "vocoder_sigma": 0.1, "denoise": 0}))
    assert quiet.shape == default.shape and np.square(quiet).sum() < 0.5 * np.square(default).sum()
    speech = _audio(client.post("/v1/audio/speech", json={"input": text, "response_format": "wav",
                                                          "vocoder_sigma": 0.1, "denoise": 0}))
    np.testing.assert_allclose(speech, quiet, atol=1e-4)
    body = {"text": text, "format": "wav", "vocoder_sigma": 0.1, "denoise": 0}
    np.testing.assert_allclose(_audio(client.post("/synthesize", json=body)), quiet, atol=1e-4)
    streamed = client.post("/synthesize", json={**body, "stream": True, "format": "pcm"})
    assert streamed.status_code == 200
    pcm = np.frombuffer(streamed.content, dtype="<i2").astype(np.float32) / 32768
    np.testing.assert_allclose(pcm, quiet, atol=2e-4)


@pytest.mark.parametrize("field, value", [("vocoder_sigma", -0.5), ("vocoder_sigma", 5), ("denoise", -1), ("denoise", 2)])
def test_out_of_range_vocoder_controls_get_a_4xx_naming_the_field(make_client, waveglow_voices, field, value) -> None:
    client = make_client(voices_dir=waveglow_voices)
    for response in (
        client.get("/infer", params={"text": "안녕", field: value}),
        client.post("/v1/audio/speech", json={"input": "안녕", field: value}),
        client.post("/synthesize", json={"text": "안녕", field: value}),
    ):
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["message"]
    bad = client.get("/infer", params={"text": "안녕", field: "nan"})
    assert bad.status_code == 422 and field in bad.json()["error"]["message"]

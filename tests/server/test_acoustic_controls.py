"""Flowtron's controls over HTTP: sigma, a style reference (a clip shipped with the voice or an
uploaded one), its strength, segments and mixture component; checked with a 422 naming the field."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

import torch

from moksori.audio import save_wav
from moksori.bench import write_untrained_checkpoint
from moksori.models.flowtron import Flowtron, FlowtronConfig
from moksori.synthesis import make_bundle
from moksori.text import TextFrontend

TEXT = "아."  # short: an untrained Flowtron runs to its (small) step limit


@pytest.fixture(scope="module")
def flowtron_voices(tmp_path_factory) -> Path:
    """A voices folder with a tiny random Flowtron (Griffin-Lim) that ships one style clip."""
    work = tmp_path_factory.mktemp("flowtron_voice")
    frontend = TextFrontend("ko")
    torch.manual_seed(0)
    model = Flowtron(FlowtronConfig.tiny(len(frontend.symbols), max_decoder_steps=40))
    checkpoint = write_untrained_checkpoint(work / "acoustic.pt", model, "flowtron", frontend)
    voice = make_bundle(checkpoint, work / "voice", name="tiny flowtron")
    styles = voice / "styles"
    styles.mkdir()
    save_wav(styles / "bright.wav", _tone(), 22050)
    (styles / "bright.txt").write_text("아.", encoding="utf-8")
    root = tmp_path_factory.mktemp("flowtron_voices")
    voice.rename(root / "ft")
    return root


def _tone() -> np.ndarray:
    return (0.3 * np.sin(np.linspace(0, 2 * np.pi * 440, 22050 // 2))).astype(np.float32)


def _upload() -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, _tone(), 22050, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


def _differ(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or not np.allclose(a, b, atol=1e-3)


def _audio(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return soundfile.read(io.BytesIO(response.content), dtype="float32")[0]


def test_sigma_and_style_change_the_audio(make_client, flowtron_voices) -> None:
    client = make_client(voices_dir=flowtron_voices)
    plain = _audio(client.get("/infer", params={"text": TEXT, "sigma": 0}))
    np.testing.assert_allclose(_audio(client.get("/infer", params={"text": TEXT, "sigma": 0})), plain, atol=1e-4)
    assert _differ(_audio(client.get("/infer", params={"text": TEXT, "sigma": 0.8})), plain)

    clip = _audio(client.get("/infer", params={"text": TEXT, "sigma": 0, "style_ref": "bright"}))
    assert _differ(clip, plain)
    # the same recording uploaded (with the clip's transcript) gives the same audio
    body = {"text": TEXT, "format": "wav", "sigma": 0, "style_ref_wav": _upload(), "style_ref_text": "아."}
    np.testing.assert_allclose(_audio(client.post("/synthesize", json=body)), clip, atol=2e-3)
    speech = {"input": TEXT, "response_format": "wav", "sigma": 0, "style_ref_wav": _upload(),
              "style_ref_text": "아.", "style_strength": 0.0}
    np.testing.assert_allclose(_audio(client.post("/v1/audio/speech", json=speech)), plain, atol=1e-4)
    streamed = client.post("/synthesize", json={**body, "stream": True, "format": "pcm", "style_segments": 2})
    assert streamed.status_code == 200 and len(streamed.content) > 0


@pytest.mark.parametrize(
    "field, value",
    [("sigma", -1), ("sigma", 5), ("style_strength", 1.5), ("style_component", -1), ("style_segments", 0),
     ("style_segments", 100)],
)
def test_out_of_range_values_get_a_422_naming_the_field(make_client, flowtron_voices, field, value) -> None:
    client = make_client(voices_dir=flowtron_voices)
    extra = {"style_ref": "bright"} if field.startswith("style_") else {}
    for response in (
        client.get("/infer", params={"text": TEXT, field: value, **extra}),
        client.post("/v1/audio/speech", json={"input": TEXT, field: value, **extra}),
        client.post("/synthesize", json={"text": TEXT, field: value, **extra}),
    ):
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"style_ref": "../../etc/passwd"}, "style_ref"),
        ({"style_ref": "missing"}, "style_ref"),
        ({"style_strength": 0.5}, "style_strength"),
        ({"style_component": 1}, "style_component"),
        ({"style_ref": "bright", "style_ref_wav": "bm90IGF1ZGlv"}, "style_ref_wav"),
        ({"style_ref_wav": "@@@"}, "style_ref_wav"),
        ({"style_ref_wav": "bm90IGF1ZGlv"}, "style_ref_wav"),  # base64 of "not audio"
    ],
)
def test_bad_style_references_get_a_422_naming_the_field(make_client, flowtron_voices, params, field) -> None:
    client = make_client(voices_dir=flowtron_voices)
    response = client.post("/synthesize", json={"text": TEXT, **params})
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]


def test_style_on_a_voice_without_style_controls(make_client) -> None:
    client = make_client()  # the tiny Glow-TTS voice
    response = client.get("/infer", params={"text": TEXT, "style_component": 0})
    assert response.status_code == 422 and "style" in response.json()["error"]["message"]
    assert client.get("/infer", params={"text": TEXT, "sigma": 0.3}).status_code == 200


def test_controls_a_voice_does_not_read_get_a_422_naming_the_field(make_client, flowtron_voices) -> None:
    """Flowtron sets its own pace and Griffin-Lim has no denoiser: the audio would come back unchanged."""
    client = make_client(voices_dir=flowtron_voices)
    for field, value in (("speed", 1.5), ("denoise", 0.05), ("vocoder_sigma", 0.5)):
        for response in (
            client.get("/infer", params={"text": TEXT, field: value}),
            client.post("/v1/audio/speech", json={"input": TEXT, field: value}),
            client.post("/synthesize", json={"text": TEXT, field: value}),
        ):
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "unsupported_control" and error["field"] == field
            assert error["message"].startswith(f"{field}: voice 'tiny flowtron'")
    assert client.get("/infer", params={"text": TEXT, "speed": 1.0}).status_code == 200  # the default is no request
    card = client.get("/voices/ft/card").json()
    assert set(card["controls"]) == {"sigma", "style"}  # no speed: the page offers only what the voice reads


def test_a_style_reference_over_the_limit_is_named_as_one(make_client, flowtron_voices) -> None:
    """The bounded reader's message spoke of the studio's takes ("the take is 31.0 s long")."""
    from moksori.synthesis.style_reference import MAX_REFERENCE_SECONDS

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(2000 * (MAX_REFERENCE_SECONDS + 1)), dtype=np.float32), 2000, format="WAV",
                    subtype="PCM_16")  # small enough for the body limit
    client = make_client(voices_dir=flowtron_voices)
    response = client.post("/synthesize", json={"text": TEXT, "style_ref_wav": base64.b64encode(buffer.getvalue()).decode()})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_style"
    assert response.json()["error"]["message"] == (
        f"style_ref_wav: the style reference is {MAX_REFERENCE_SECONDS + 1:.1f} s long; "
        f"a style reference may be at most {MAX_REFERENCE_SECONDS:g} s")


def test_a_silent_style_reference_is_refused(make_client, flowtron_voices) -> None:
    """Its z is the prior's silence: the request was accepted and followed no style at all."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(22050, dtype=np.float32), 22050, format="WAV", subtype="PCM_16")
    client = make_client(voices_dir=flowtron_voices)
    response = client.post("/synthesize", json={"text": TEXT, "style_ref_wav": base64.b64encode(buffer.getvalue()).decode()})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_style"
    assert "the style reference is silent" in response.json()["error"]["message"]
    assert client.post("/synthesize", json={"text": TEXT, "style_ref_wav": _upload()}).status_code == 200

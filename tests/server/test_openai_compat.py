"""What the official OpenAI clients send to /v1/audio/speech, as they send it (the client itself
is not a dependency: these bodies are the ones it builds)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("voice", ["marin", "cedar"])
def test_every_openai_voice_name_means_the_default_voice(make_client, voice) -> None:
    response = make_client().post("/v1/audio/speech", json={"model": "gpt-4o-mini-tts", "input": "안녕하세요.",
                                                            "voice": voice, "response_format": "wav"})
    assert response.status_code == 200, response.text
    assert response.headers["x-voice"] == "tiny"


def test_a_voice_object_names_the_voice_by_its_id(make_client) -> None:
    client = make_client()
    response = client.post("/v1/audio/speech", json={"model": "gpt-4o-mini-tts", "input": "안녕하세요.",
                                                     "voice": {"id": "tiny"}, "response_format": "wav"})
    assert response.status_code == 200, response.text
    assert response.headers["x-voice"] == "tiny"
    missing = client.post("/v1/audio/speech", json={"input": "안녕하세요.", "voice": {"id": "voice_1234"}})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "voice_not_found"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"input": "안녕", "response_format": "aiff"}, 400, "unsupported_format", "response_format"),
        ({"input": "안녕", "speed": 5}, 422, "invalid_request", "speed"),
        ({"input": "안녕", "voice": 5}, 422, "invalid_request", "voice"),
        ({"input": "안녕", "voice": {"name": "x"}}, 422, "invalid_request", "voice"),
        ({"input": "가" * 4097}, 413, "text_too_long", "input"),
        ({"input": " "}, 400, "empty_text", "input"),
        ({"input": "안녕", "voice": "nobody"}, 404, "voice_not_found", "voice"),
        ({"input": "안녕", "vocoder_voice": "nobody"}, 404, "voice_not_found", "vocoder_voice"),
        ({"input": "안녕", "stream_format": "sse"}, 400, "unsupported_format", "response_format"),
    ],
)
def test_errors_carry_openais_type_and_param(make_client, body, status, code, param) -> None:
    """OpenAI's error object is {message, type, param, code}; its clients read type and param."""
    response = make_client().post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == (code, "invalid_request_error", param)
    assert error["message"]


def test_a_server_error_has_openais_server_error_type(make_client, monkeypatch) -> None:
    from moksori.synthesis.synthesizer import Synthesizer

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(Synthesizer, "synthesize_report", broken)
    response = make_client().post("/v1/audio/speech", json={"input": "안녕하세요.", "voice": "tiny"})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


def test_protocol_layer_errors_have_the_same_shape() -> None:
    import json

    from moksori.server.protocol import raw_json_response

    reply = raw_json_response(408, "Request Timeout", "header_timeout", "too slow")
    error = json.loads(reply.partition(b"\r\n\r\n")[2])["error"]
    assert (error["code"], error["type"], error["param"]) == ("header_timeout", "invalid_request_error", None)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain;charset=UTF-8", None])
def test_json_sent_as_another_media_type_is_415_saying_so(make_client, content_type) -> None:
    """curl -d without -H, or fetch() with a string body, label JSON as a form or plain text."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = make_client().post("/v1/audio/speech", content='{"input": "안녕"}'.encode(), headers=headers)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]



@pytest.mark.parametrize(("params", "param"), [({"text": "안녕", "format": "aiff"}, "format"), ({"text": ""}, "text")])
def test_infer_errors_name_the_query_parameter(make_client, params, param) -> None:
    assert make_client().get("/infer", params=params).json()["error"]["param"] == param


def test_the_api_schema_lists_every_audio_media_type(make_client) -> None:
    from moksori.server.encode import FORMATS

    schema = make_client().get("/openapi.json").json()
    for path, method in (("/infer", "get"), ("/v1/audio/speech", "post"), ("/synthesize", "post")):
        listed = set(schema["paths"][path][method]["responses"]["200"]["content"])
        assert {fmt.media_type for fmt in FORMATS.values()} <= listed, (path, listed)


def test_pcm_is_24_khz_as_openai_defines_it_and_the_voice_rate_elsewhere(make_client) -> None:
    # OpenAI's clients play pcm at 24 kHz, told nothing else: 22,050 Hz audio played 9% fast.
    import io

    import numpy as np
    import soundfile

    client = make_client()
    body = {"model": "tts-1", "input": "안녕하세요.", "voice": "tiny", "speed": 1.0}
    wav = client.post("/v1/audio/speech", json={**body, "response_format": "wav"})
    pcm = client.post("/v1/audio/speech", json={**body, "response_format": "pcm"})
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "audio/pcm;rate=24000"
    samples, rate = soundfile.read(io.BytesIO(wav.content), dtype="float32")
    assert rate == 22050
    assert len(pcm.content) // 2 == pytest.approx(samples.size * 24000 / 22050, abs=1)
    played = np.frombuffer(pcm.content, "<i2").astype(np.float32) / 32767.0
    assert np.sqrt(np.mean(played**2)) == pytest.approx(np.sqrt(np.mean(samples**2)), rel=0.05)
    infer = client.get("/infer", params={"text": "안녕하세요.", "voice": "tiny", "format": "pcm"})
    assert infer.headers["content-type"] == "audio/pcm;rate=22050" and len(infer.content) == samples.size * 2

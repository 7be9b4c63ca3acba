"""The speech endpoints with a tiny voice: formats, lengths, OpenAI compatibility, streaming."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile


def wav_seconds(body: bytes) -> float:
    info = soundfile.info(io.BytesIO(body))
    return info.frames / info.samplerate


def test_infer_returns_wav_whose_length_grows_with_the_text(make_client) -> None:
    client = make_client()
    short = client.get("/infer", params={"text": "안녕하세요.", "voice": "tiny"})
    long = client.get("/infer", params={"text": "안녕하세요. 오늘은 날씨가 아주 좋네요. 산책을 가 볼까요?", "voice": "tiny"})
    for response in (short, long):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "audio/wav"
        assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
        assert soundfile.info(io.BytesIO(response.content)).samplerate == 22050
    assert wav_seconds(long.content) > 2 * wav_seconds(short.content) > 0
    assert float(long.headers["x-audio-seconds"]) == round(wav_seconds(long.content), 3)


def test_infer_without_voice_uses_the_default_and_id_works_too(make_client) -> None:
    client = make_client()
    assert client.get("/infer", params={"text": "하나"}).headers["x-voice"] == "tiny"
    assert client.get("/infer", params={"text": "하나", "voice": "tiny"}).status_code == 200


def test_a_missing_default_voice_is_named_as_the_servers_setting(make_client) -> None:
    client = make_client(default_voice="gone")
    response = client.get("/infer", params={"text": "안녕"})  # the caller named no voice
    assert response.status_code == 404 and response.json()["error"]["code"] == "voice_not_found"
    assert "default voice 'gone' (default_voice)" in response.json()["error"]["message"]
    assert client.get("/infer", params={"text": "안녕", "voice": "tiny"}).status_code == 200


def test_openai_speech_request_works_unchanged(make_client) -> None:
    client = make_client()
    response = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "안녕하세요. 반갑습니다.", "voice": "alloy", "instructions": "cheerful"},
        headers={"Authorization": "Bearer sk-anything"},  # ignored when keys are off
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"  # OpenAI's default format
    assert soundfile.info(io.BytesIO(response.content)).frames > 0


def test_every_offered_format_decodes(make_client) -> None:
    client = make_client()
    media = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/ogg; codecs=opus", "flac": "audio/flac"}
    for name, media_type in media.items():
        response = client.post("/v1/audio/speech", json={"input": "좋아요.", "voice": "tiny", "response_format": name})
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == media_type
        info = soundfile.info(io.BytesIO(response.content))
        assert info.frames / info.samplerate > 0.1, name
    pcm = client.get("/infer", params={"text": "좋아요.", "format": "pcm"})
    wav = client.get("/infer", params={"text": "좋아요.", "format": "wav"})
    assert pcm.headers["content-type"] == "audio/pcm;rate=22050"
    assert len(pcm.content) == soundfile.info(io.BytesIO(wav.content)).frames * 2


def test_speed_makes_audio_shorter(make_client) -> None:
    client = make_client()
    text = "천천히 그리고 빠르게 말해 봅시다."
    slow = wav_seconds(client.get("/infer", params={"text": text, "speed": 0.5}).content)
    fast = wav_seconds(client.get("/infer", params={"text": text, "speed": 2.0}).content)
    edge = client.post("/v1/audio/speech", json={"input": text, "speed": 0.25, "response_format": "wav"})
    assert slow > 2.5 * fast
    assert edge.status_code == 200 and wav_seconds(edge.content) > slow


def test_synthesize_streams_one_chunk_per_sentence(make_client) -> None:
    client = make_client()
    text = "첫 번째 문장입니다. 두 번째 문장입니다. 세 번째 문장입니다."
    with client.stream("POST", "/synthesize", json={"text": text, "voice": "tiny", "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        chunks = [chunk for chunk in response.iter_raw() if chunk]
    assert len(chunks) >= 3
    header = chunks[0][:44]
    assert header[:4] == b"RIFF" and header[36:40] == b"data"
    assert struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF  # length unknown up front
    samples = np.frombuffer(b"".join(chunks)[44:], dtype="<i2")
    whole = client.post("/synthesize", json={"text": text, "voice": "tiny"})
    assert abs(len(samples) / 22050 - wav_seconds(whole.content)) < 0.05


def test_synthesize_streams_raw_pcm(make_client) -> None:
    client = make_client()
    with client.stream("POST", "/synthesize", json={"text": "하나. 둘. 셋.", "format": "pcm", "stream": True}) as response:
        assert response.headers["content-type"] == "audio/pcm;rate=22050"
        assert response.headers["x-sample-rate"] == "22050"
        body = b"".join(response.iter_raw())
    assert len(body) % 2 == 0 and len(body) > 22050  # three sentences and two pauses


def test_voices_lists_the_tiny_voice(make_client) -> None:
    body = make_client().get("/voices").json()
    assert body["default_voice"] == "tiny"
    (voice,) = body["voices"]
    assert voice["name"] == "tiny" and voice["id"] == "tiny"
    assert voice["language"] == "ko" and voice["sample_rate"] == 22050
    assert voice["description"] == "tiny random voice" and voice["created"]
    assert voice["training"]["acoustic"]["model_name"] == "glow_tts"
    assert voice["private"] is False


def test_health_and_openapi_docs(make_client) -> None:
    client = make_client()
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["voices"] == 1
    head = client.head("/health")  # what uptime monitors send
    assert head.status_code == 200 and head.content == b""
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    speech = schema["components"]["schemas"]["SpeechRequest"]
    assert speech["examples"][0]["input"]
    assert {"/infer", "/v1/audio/speech", "/synthesize", "/voices", "/health", "/metrics"} <= set(schema["paths"])


def test_korean_voice_name_is_percent_encoded_in_the_header(tmp_path, make_client):
    from urllib.parse import unquote

    from moksori.bench.serve import build_tiny_voice

    build_tiny_voice(tmp_path / "voices" / "jimin", name="지민")
    client = make_client(voices_dir=tmp_path / "voices")
    response = client.get("/infer", params={"text": "안녕하세요.", "voice": "지민"})
    assert response.status_code == 200
    assert unquote(response.headers["X-Voice"]) == "지민"

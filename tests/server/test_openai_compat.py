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

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


"""Every bad input gets the right status and a JSON error naming the problem."""

from __future__ import annotations

import pytest


def error_of(response) -> dict:
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


@pytest.mark.parametrize(
    ("params", "status", "code", "words"),
    [
        ({"text": ""}, 400, "empty_text", ["empty"]),
        ({"text": "   "}, 400, "empty_text", ["empty"]),
        ({"text": "가" * 101}, 413, "text_too_long", ["101", "limit is 100"]),
        ({"text": "안녕 ☃ 세상"}, 422, "unreadable_text", ["'☃'", "U+2603"]),
        ({"text": "안녕", "voice": "nobody"}, 404, "voice_not_found", ["'nobody'", "tiny"]),
        ({"text": "안녕", "speed": "9"}, 422, "invalid_request", ["speed", "4"]),
        ({"text": "안녕", "speed": "0.1"}, 422, "invalid_request", ["speed", "0.25"]),
        ({"text": "안녕", "speed": "fast"}, 422, "invalid_request", ["speed", "number"]),
        ({"text": "안녕", "format": "aiff"}, 400, "unsupported_format", ["'aiff'", "wav", "mp3", "aac"]),
        ({}, 422, "invalid_request", ["text", "required"]),
        ({"text": "...!?"}, 422, "invalid_text", ["nothing to read"]),
    ],
)
def test_bad_infer_requests(make_client, params, status, code, words) -> None:
    response = make_client(max_text_chars=100).get("/infer", params=params)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    for word in words:
        assert word in error["message"], (word, error["message"])


def test_details_name_the_limit_characters_and_available_voices(make_client) -> None:
    client = make_client(max_text_chars=100)
    assert error_of(client.get("/infer", params={"text": "가" * 101}))["limit"] == 100
    assert error_of(client.get("/infer", params={"text": "a ☃ ♞"}))["characters"] == ["☃", "♞"]
    assert error_of(client.get("/infer", params={"text": "a", "voice": "x"}))["available"] == ["tiny"]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"{not json", 400, "invalid_json", ["not valid JSON"]),
        (b'{"voice": "tiny"}', 422, "invalid_request", ["input", "required"]),
        (b'{"input": "hi", "speed": 5}', 422, "invalid_request", ["speed"]),
        (b'{"input": "hi", "response_format": "aiff"}', 400, "unsupported_format", ["aiff"]),
        (b'{"input": 12}', 422, "invalid_request", ["input", "string"]),
        (b'[1, 2]', 422, "invalid_request", []),
    ],
)
def test_bad_openai_bodies(make_client, body, status, code, words) -> None:
    response = make_client().post("/v1/audio/speech", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    for word in words:
        assert word in error["message"]


def test_stream_rejects_formats_it_cannot_stream_and_bad_text_before_starting(make_client) -> None:
    client = make_client()
    response = client.post("/synthesize", json={"text": "안녕", "stream": True, "format": "mp3"})
    assert response.status_code == 400 and "cannot be streamed" in error_of(response)["message"]
    response = client.post("/synthesize", json={"text": "좋아요. 그런데 ☃", "stream": True})
    assert response.status_code == 422 and error_of(response)["code"] == "unreadable_text"


def test_unknown_route_and_method_are_json(make_client) -> None:
    client = make_client()
    assert error_of(client.get("/nowhere"))["code"] == "not_found"
    response = client.delete("/infer")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_a_failing_synthesis_is_a_500_and_the_server_keeps_serving(make_client, monkeypatch) -> None:
    from moksori.synthesis.synthesizer import Synthesizer

    client = make_client()
    original = Synthesizer.synthesize_report

    def broken(self, *args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(Synthesizer, "synthesize_report", broken)
    response = client.get("/infer", params={"text": "안녕하세요"})
    assert response.status_code == 500
    assert error_of(response)["code"] == "synthesis_failed"
    monkeypatch.setattr(Synthesizer, "synthesize_report", original)
    assert client.get("/infer", params={"text": "안녕하세요"}).status_code == 200
    assert client.get("/health").json()["status"] == "ok"

"""Issue 14.5: a 200 MB body to /v1/audio/speech was read whole (+0.9 GB that stayed), and a
5,000-character ``input`` was accepted. Bodies are capped before they are read; ``input`` is
capped at OpenAI's 4,096 characters."""

from __future__ import annotations

import asyncio
import json

import pytest

MB = 1024 * 1024


def test_openai_input_over_4096_characters_is_refused(make_site):
    client = make_site().client()
    response = client.post("/v1/audio/speech", json={"input": "가" * 4097, "voice": "x"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "text_too_long" and error["limit"] == 4096 and "4097 characters" in error["message"]


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/synthesize", "/api/studio/voices", "/api/studio/account/signin"])
def test_large_json_body_is_413_json(make_site, path):
    client = make_site().client()
    body = json.dumps({"input": "가" * MB, "text": "x", "name": "x", "username": "x", "password": "x"})
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "body_too_large" and error["limit"] == 256 * 1024


def test_body_limit_is_a_setting(make_site):
    client = make_site().client(max_body_bytes=2048)
    response = client.post("/synthesize", json={"text": "가" * 1000})
    assert response.status_code == 413 and response.json()["error"]["limit"] == 2048


def _middleware(app, limit):
    from moksori.server.bodies import BodyLimitMiddleware  # here, so the file runs against older trees too

    return BodyLimitMiddleware(app, limit=limit)


def _run(middleware, messages, headers=()):
    """Call the middleware as a server would; returns (status, chunks the server handed over)."""
    handed = []
    sent = []

    async def receive():
        message = next(messages)
        handed.append(message)
        return message

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/audio/speech", "headers": list(headers),
             "query_string": b"", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "scheme": "http",
             "root_path": "", "http_version": "1.1"}
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], len(handed)


def _never_called(scope, receive, send):
    raise AssertionError("the app was called with an oversized body")


def test_streamed_200_mb_body_is_cut_off_after_the_limit():
    """Chunked (no Content-Length): the middleware stops reading one chunk past the limit, so
    the other 199 MB are never taken from the connection."""
    chunks = ({"type": "http.request", "body": b"x" * MB, "more_body": True} for _ in range(200))
    status, handed = _run(_middleware(_never_called, 256 * 1024), chunks)
    assert status == 413 and handed == 1


def test_declared_200_mb_body_is_refused_before_reading():
    def nothing():
        raise AssertionError("the body was read")
        yield

    headers = [(b"content-length", str(200 * MB).encode()), (b"content-type", b"application/json")]
    status, handed = _run(_middleware(_never_called, 256 * 1024), nothing(), headers)
    assert status == 413 and handed == 0


def test_small_body_and_uploads_pass(make_site, sec):
    import io

    import numpy as np
    import soundfile

    site = make_site()
    client = site.client()
    voice = sec.new_voice(client, "지민")  # JSON under the cap
    # A multipart take over the JSON cap goes to its route, which has its own (larger) limit.
    t = np.arange(22050 * 8) / 22050
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050, format="WAV")
    assert len(buffer.getvalue()) > 256 * 1024
    response = sec.upload(client, voice, sec.first_ko_prompt(client), buffer.getvalue(), name="take.wav")
    assert response.status_code == 201, response.text

"""Against a real uvicorn server on loopback: a client leaving mid-stream frees its worker."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from moksori.server import ServerSettings, create_app


@pytest.fixture
def live_url(voices_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ServerSettings(voices_dir=voices_dir, db_url=None, max_concurrency=1, require_api_keys=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


def test_client_leaving_mid_stream_frees_the_worker(live_url, monkeypatch) -> None:
    from moksori.synthesis.synthesizer import Synthesizer

    vocoded = []
    original = Synthesizer._vocode

    def slow_vocode(self, mel, options):
        vocoded.append(time.monotonic())
        time.sleep(0.1)
        return original(self, mel, options)

    monkeypatch.setattr(Synthesizer, "_vocode", slow_vocode)
    text = " ".join(f"문장 {n}번입니다." for n in range(1, 41))  # 40 sentences, ≥ 4 s of work
    with httpx.Client(base_url=live_url, timeout=30) as client:
        with client.stream("POST", "/synthesize", json={"text": text, "stream": True}) as response:
            assert response.status_code == 200
            first = next(response.iter_raw())
            assert first[:4] == b"RIFF"
        # The connection is closed here, long before 40 sentences are done.
        deadline = time.monotonic() + 5
        while client.get("/health").json()["queue"]["running"]:
            assert time.monotonic() < deadline, "the worker kept synthesising for a client that left"
            time.sleep(0.05)
        print("sentences vocoded before stop:", len(vocoded))
        assert len(vocoded) < 20
        # The worker is free: the next request is served at once.
        assert client.get("/infer", params={"text": "다음 요청"}).status_code == 200

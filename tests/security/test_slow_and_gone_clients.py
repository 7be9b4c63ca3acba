"""Issue 14.10 and 14.13 (protocol): abandoned work and slow clients, against a real uvicorn
server on a loopback port (``moksori serve``'s protocol class and limits).

Before: ten non-streamed requests whose clients left at once still held both workers to the
end, queued jobs of gone clients still ran; a client that sent part of its headers, or less body
than its Content-Length, held its connection for as long as it liked; malformed requests got
uvicorn's plain-text 400."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from moksori.bench.serve import build_tiny_voice
from moksori.server import ServerSettings, create_app
from moksori.server.protocol import MAX_HEAD_BYTES, GuardedH11Protocol
from moksori.synthesis.synthesizer import Synthesizer

TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    return build_tiny_voice(tmp_path_factory.mktemp("bundles") / "tiny", name="tiny")


class LiveServer:
    def __init__(self, app) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, http=GuardedH11Protocol, log_level="warning",
                                h11_max_incomplete_event_size=MAX_HEAD_BYTES, timeout_keep_alive=5, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def connect(self, payload: bytes = b"") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if payload:
            sock.sendall(payload)
        return sock

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(monkeypatch, tmp_path, tiny_bundle) -> Iterator[callable]:
    monkeypatch.setenv("MOKSORI_SERVER_HEADER_TIMEOUT_S", str(TIMEOUT_S))
    servers = []

    def start(**settings) -> LiveServer:
        voices = tmp_path / "voices"
        if not voices.exists():
            shutil.copytree(tiny_bundle, voices / "tiny")
        values = {"voices_dir": voices, "db_url": None, "host": "127.0.0.1", "body_timeout_s": TIMEOUT_S, **settings}
        server = LiveServer(create_app(ServerSettings(**values)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def read_reply(sock: socket.socket, wait_s: float) -> tuple[bytes, float, bool]:
    """(bytes received, seconds until the server closed, closed?) within ``wait_s``."""
    started = time.monotonic()
    data = b""
    sock.settimeout(0.1)
    while time.monotonic() - started < wait_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data, time.monotonic() - started, True
        if not chunk:
            return data, time.monotonic() - started, True
        data += chunk
    return data, wait_s, False


def json_error(reply: bytes) -> dict:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), reply[:300]
    return json.loads(body)["error"]


def test_incomplete_headers_are_cut_off(live):
    server = live()
    sockets = [server.connect(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "), server.connect()]
    for sock in sockets:
        reply, took, closed = read_reply(sock, 8 * TIMEOUT_S)
        assert closed and took < 5 * TIMEOUT_S  # was: held open indefinitely
        assert reply.startswith(b"HTTP/1.1 408") and json_error(reply)["code"] == "header_timeout"
        sock.close()


def test_headers_trickling_in_on_a_kept_alive_connection_are_cut_off(live):
    server = live()
    sock = server.connect(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /health HTTP/1.1\r\nHo")
    time.sleep(0.3)
    sock.sendall(b"st: x\r\n")  # more bytes, still no end: the deadline is for the whole head
    reply, took, closed = read_reply(sock, 8 * TIMEOUT_S)
    assert closed and b"header_timeout" in reply


@pytest.mark.parametrize("path", ["/synthesize", "/api/studio/voices/1/takes"])
def test_a_body_shorter_than_its_content_length_times_out(live, path):
    server = live()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 200\r\n\r\n").encode()
    sock = server.connect(head + b'{"text": "')
    reply, took, closed = read_reply(sock, 8 * TIMEOUT_S)
    assert closed and took < 5 * TIMEOUT_S
    if path == "/synthesize":
        assert reply.startswith(b"HTTP/1.1 408") and json_error(reply)["code"] == "body_timeout"
    else:  # no studio on this server: answered before the body is read, and the connection ends at once
        assert reply.startswith(b"HTTP/1.1 503") and took < TIMEOUT_S


def test_a_stalled_upload_times_out(live, tmp_path):
    server = live(db_url=f"sqlite:///{tmp_path / 'moksori.db'}")
    head = (b"POST /api/studio/voices/1/takes HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n")
    sock = server.connect(head + b"--b\r\n")
    reply, took, closed = read_reply(sock, 8 * TIMEOUT_S)
    assert closed and took < 5 * TIMEOUT_S
    assert reply.startswith(b"HTTP/1.1 408") and json_error(reply)["code"] == "body_timeout"


def test_malformed_and_oversized_requests_get_json_errors(live):
    server = live()
    sock = server.connect(b"NOT HTTP AT ALL\r\n\r\n")
    reply, _, closed = read_reply(sock, 5)
    assert closed and reply.startswith(b"HTTP/1.1 400") and json_error(reply)["code"] == "invalid_http_request"
    # Over the limit, trickling in or in one piece (h11 alone only limits the first kind)
    sock = server.connect(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES - 1000))
    time.sleep(0.2)
    sock.sendall(b"b" * 2000)
    reply, _, closed = read_reply(sock, 5)
    assert closed and reply.startswith(b"HTTP/1.1 431") and json_error(reply)["code"] == "headers_too_large"
    sock = server.connect(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10) + b"\r\n\r\n")
    reply, _, closed = read_reply(sock, 5)
    assert closed and reply.startswith(b"HTTP/1.1 431")
    sock = server.connect(b"GET /infer?text=" + b"a" * (MAX_HEAD_BYTES + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    reply, _, closed = read_reply(sock, 5)
    assert closed and reply.startswith(b"HTTP/1.1 414") and json_error(reply)["code"] == "uri_too_long"
    # a long but allowed GET (5,000 Korean characters, percent-encoded) still gets through
    sock = server.connect(b"GET /health?pad=" + b"%EA%B0%80" * 5000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply, _, _ = read_reply(sock, 10)
    assert reply.startswith(b"HTTP/1.1 200")


class SlowVocoder:
    """Makes every sentence's vocoding take ``pause_s`` and counts them."""

    def __init__(self, pause_s: float) -> None:
        self.pause_s = pause_s
        self.calls = 0
        self.synthesize_calls = 0
        self.original_vocode = Synthesizer._vocode
        self.original_synthesize = Synthesizer.synthesize_report

    def install(self, monkeypatch) -> None:
        spy = self

        def vocode(synthesizer, *args, **kwargs):
            spy.calls += 1
            time.sleep(spy.pause_s)
            return spy.original_vocode(synthesizer, *args, **kwargs)

        def synthesize_report(synthesizer, *args, **kwargs):
            spy.synthesize_calls += 1
            return spy.original_synthesize(synthesizer, *args, **kwargs)

        monkeypatch.setattr(Synthesizer, "_vocode", vocode)
        monkeypatch.setattr(Synthesizer, "synthesize_report", synthesize_report)


def _post(server: LiveServer, text: str) -> socket.socket:
    body = json.dumps({"text": text}).encode()
    head = (f"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return server.connect(head.encode() + body)


def test_work_of_clients_that_left_is_dropped(live, monkeypatch):
    slow = SlowVocoder(0.15)
    slow.install(monkeypatch)
    server = live(max_concurrency=1, max_queue=8)
    pool = server.server.config.app.state.moksori.pool if hasattr(server.server.config.app, "state") else None
    warm = _post(server, "안녕.")  # loads the voice
    assert read_reply(warm, 30)[0].startswith(b"HTTP/1.1 200")
    slow.calls = slow.synthesize_calls = 0
    text = " ".join(f"문장 {n}번입니다." for n in range(20))
    sockets = [_post(server, text) for _ in range(4)]
    deadline = time.monotonic() + 10
    while slow.calls < 2 and time.monotonic() < deadline:  # the first job is under way, three wait
        time.sleep(0.02)
    for sock in sockets:
        sock.close()
    time.sleep(1.0)
    settled = slow.calls
    time.sleep(1.0)
    assert slow.calls == settled  # nothing runs any more
    assert slow.calls < 20  # was 80: all four texts to the end
    assert slow.synthesize_calls == 1  # the queued jobs never started
    if pool is not None:
        assert pool.stats.in_flight == 0
    # and the server answers the next client at once
    sock = _post(server, "안녕하세요.")
    reply, took, _ = read_reply(sock, 10)
    assert reply.startswith(b"HTTP/1.1 200") and took < 5

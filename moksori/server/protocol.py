"""uvicorn's HTTP/1.1 protocol (h11) with a deadline on request heads and JSON protocol errors.

uvicorn closes idle keep-alive connections, but a client that sends part of a request line or
headers and then nothing holds its connection for as long as it likes. Here the request line and
headers must arrive within ``header_timeout_s`` of the connection opening (or of the previous
response); otherwise the server answers 408 ``header_timeout`` and closes the connection.
A request head over :data:`MAX_HEAD_BYTES` is refused before it is parsed, as 414
``uri_too_long`` (a request line that long) or 431 ``headers_too_large``, whether it trickles in
or arrives in one piece; requests h11 cannot parse (a malformed request line) get 400
``invalid_http_request``. All in the API's JSON error shape instead of uvicorn's plain text.

``moksori serve`` runs uvicorn with this class (``http=GuardedH11Protocol``). uvicorn's command
line offers only its own protocols, so a server started with ``uvicorn ... --factory`` keeps
uvicorn's behaviour: put a proxy with header timeouts in front of it (see docs/security.md).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_ENV = "MOKSORI_SERVER_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
# A request line plus headers: room for GET /infer with max_text_chars (5,000) of Korean text,
# percent-encoded (9 bytes a syllable), and for ordinary headers.
MAX_HEAD_BYTES = 64 * 1024


def header_timeout_s() -> float:
    raw = os.environ.get(HEADER_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_HEADER_TIMEOUT_S
    except ValueError:
        value = DEFAULT_HEADER_TIMEOUT_S
    return value if value > 0 else DEFAULT_HEADER_TIMEOUT_S


def raw_json_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response (JSON error body, connection closed) as bytes."""
    body = json.dumps({"error": {"code": code, "message": message, "type": "invalid_request_error", "param": None}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s()
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_head_timer()  # part of a request head (again, on a kept-alive connection)
        else:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before the body was read (401, 413, 503...): the rest of the body is of no
            # use, and waiting for a client that may never send it is what a slow client wants.
            self.transport.close()
            return
        super().on_response_complete()  # arms uvicorn's keep-alive timer for the idle connection
        self._disarm_head_timer()

    def _head_too_large(self, data: bytes) -> bool:
        """Refuse (414/431, connection closed) a request head that is, or will be, over the limit."""
        buffered = self.conn.trailing_data[0] + data
        window = buffered[: MAX_HEAD_BYTES + 4]
        end = window.find(b"\r\n\r\n")
        if end != -1 and end + 4 <= MAX_HEAD_BYTES:
            return False
        if end == -1 and len(buffered) <= MAX_HEAD_BYTES:
            return False
        self._disarm_head_timer()
        line_end = window.find(b"\r\n")
        if line_end == -1:
            reply = raw_json_response(414, "URI Too Long", "uri_too_long",
                                      f"the request line is over {MAX_HEAD_BYTES} bytes; send long text in a POST body")
        else:
            reply = raw_json_response(431, "Request Header Fields Too Large", "headers_too_large",
                                      f"the request line and headers are over {MAX_HEAD_BYTES} bytes")
        self.transport.write(reply)
        self.transport.close()
        return True

    def send_400_response(self, msg: str) -> None:
        self._disarm_head_timer()
        message = (f"the request is not valid HTTP/1.1, or its request line and headers are over {MAX_HEAD_BYTES} "
                   "bytes")
        self.transport.write(raw_json_response(400, "Bad Request", "invalid_http_request", message))
        self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still going out
        message = f"the request line and headers did not arrive within {self.header_timeout_s:g} s"
        self.transport.write(raw_json_response(408, "Request Timeout", "header_timeout", message))
        self.transport.close()

"""A cap on request bodies, applied before any route reads them.

Every request body (JSON, or anything else sent to a JSON route) is read into memory only up to
``max_body_bytes``: a larger Content-Length is refused at once, and a body that streams past the
cap (chunked, or a lying Content-Length) is refused as soon as it does. Multipart uploads are the
exception: their routes (:data:`UPLOAD_ROUTES`) cap them while parsing, at the studio's own limit.

Slow bodies are bounded in time too: a body that stops arriving for ``timeout_s`` (a client that
sent less than its Content-Length, or nothing at all) is answered 408 ``body_timeout`` and the
connection is closed; a JSON body must arrive whole within ``timeout_s``, an upload within
``UPLOAD_TIME_FACTOR`` times that. A JSON body that is not UTF-8 is refused as ``invalid_json``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moksori.server.errors import ApiError, error_response

# Routes that read multipart uploads with their own streaming limit (moksori.server.studio.read_form).
UPLOAD_ROUTES = (
    ("POST", re.compile(r"/api/studio/voices/[0-9]+/takes")),
    ("POST", re.compile(r"/api/studio/prompt-sets")),
)
BODY_TOO_LARGE = "body_too_large"
UPLOAD_TIME_FACTOR = 10


class BodyTimeout(ApiError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, "body_timeout", f"the request body did not arrive in time ({timeout_s:g} s); "
                         "send the whole body at once", headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Answers 413 ``body_too_large`` for a body over ``limit`` bytes without reading the rest;
    passes the (small) body on to the app otherwise."""

    def __init__(
        self, app: ASGIApp, limit: int, on_refused: Callable[[str], None] | None = None, timeout_s: float = 30.0
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _is_upload(scope):
            await self.app(scope, _timed(receive, self.timeout_s, self.timeout_s * UPLOAD_TIME_FACTOR), send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send, declared)
            return
        try:
            body, size, complete = await _read_up_to(_timed(receive, self.timeout_s, self.timeout_s), self.limit)
        except BodyTimeout as error:
            self._count(error.code)
            await error_response(error.status, error.code, error.message, error.headers)(scope, receive, send)
            return
        if size > self.limit:
            await self._refuse(scope, receive, send, size)
            return
        if not complete:  # the client left while sending
            return
        if body and _is_json(scope) and not _utf8(body):
            self._count("invalid_json")
            await error_response(400, "invalid_json", "the request body is not valid JSON: it is not UTF-8 text")(
                scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _count(self, code: str) -> None:
        if self.on_refused is not None:
            self.on_refused(code)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        if self.on_refused is not None:
            self.on_refused(BODY_TOO_LARGE)
        message = f"the request body is over the limit of {self.limit} bytes ({size} bytes or more sent)"
        response = error_response(413, BODY_TOO_LARGE, message, {"Connection": "close"}, limit=self.limit)
        await response(scope, receive, send)


def _is_upload(scope: Scope) -> bool:
    method, path = scope.get("method", ""), scope.get("path", "")
    return any(method == m and pattern.fullmatch(path) for m, pattern in UPLOAD_ROUTES)


def _timed(receive: Receive, idle_s: float, total_s: float) -> Receive:
    """``receive`` that raises BodyTimeout when a body message takes over ``idle_s``, or the body
    as a whole over ``total_s``; once the body is complete, it passes messages (disconnects) on
    without a limit."""
    deadline = time.monotonic() + total_s
    done = False

    async def timed() -> Message:
        nonlocal done
        if done:
            return await receive()
        wait = min(idle_s, deadline - time.monotonic())
        try:
            message = await asyncio.wait_for(receive(), max(wait, 0.001))
        except TimeoutError:
            raise BodyTimeout(min(idle_s, total_s)) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            done = True
        return message

    return timed


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _read_up_to(receive: Receive, limit: int) -> tuple[bytes, int, bool]:
    """(body, bytes received, complete): stops reading as soon as more than ``limit`` arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", size, False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", size, True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size, True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body read already, then the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

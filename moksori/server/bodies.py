"""A cap on request bodies, applied before any route reads them.

Every request body (JSON, or anything else sent to a JSON route) is read into memory only up to
``max_body_bytes``: a larger Content-Length is refused at once, and a body that streams past the
cap (chunked, or a lying Content-Length) is refused as soon as it does. Multipart uploads are the
exception: their routes (:data:`UPLOAD_ROUTES`) cap them while parsing, at the studio's own limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moksori.server.errors import error_response

# Routes that read multipart uploads with their own streaming limit (moksori.server.studio.read_form).
UPLOAD_ROUTES = (
    ("POST", re.compile(r"/api/studio/voices/[0-9]+/takes")),
    ("POST", re.compile(r"/api/studio/prompt-sets")),
)
BODY_TOO_LARGE = "body_too_large"


class BodyLimitMiddleware:
    """Answers 413 ``body_too_large`` for a body over ``limit`` bytes without reading the rest;
    passes the (small) body on to the app otherwise."""

    def __init__(self, app: ASGIApp, limit: int, on_refused: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_upload(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send, declared)
            return
        body, size, complete = await _read_up_to(receive, self.limit)
        if size > self.limit:
            await self._refuse(scope, receive, send, size)
            return
        if not complete:  # the client left while sending
            return
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        if self.on_refused is not None:
            self.on_refused(BODY_TOO_LARGE)
        message = f"the request body is over the limit of {self.limit} bytes ({size} bytes or more sent)"
        response = error_response(413, BODY_TOO_LARGE, message, {"Connection": "close"}, limit=self.limit)
        await response(scope, receive, send)


def _is_upload(scope: Scope) -> bool:
    method, path = scope.get("method", ""), scope.get("path", "")
    return any(method == m and pattern.fullmatch(path) for m, pattern in UPLOAD_ROUTES)


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

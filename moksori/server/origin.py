"""Cross-site request forgery: state-changing studio requests must come from the studio's own
pages (issue 14, item 11).

The studio signs users in with a cookie, and a browser sends that cookie with a form or fetch
that any other site makes to this server. So a POST, PUT, PATCH or DELETE to the studio is
refused (403 ``cross_origin``) when its ``Origin`` header, or without one its ``Referer``, names
another host than the one the request was sent to (``Host``, or ``X-Forwarded-Host`` from a
proxy), or is ``null`` (sandboxed frames, some redirects). Requests with neither header pass:
browsers always send ``Origin`` on such requests, and scripts or API clients (curl, the
``openai`` client) send neither and carry no ambient cookie.

``ServerSettings.allowed_origins`` (``MOKSORI_SERVER_ALLOWED_ORIGINS``, comma-separated, e.g.
``https://studio.example.org``) adds origins for a proxy that rewrites the Host header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from moksori.server.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_origin(request: Request) -> None:
    """Return when the request may change state; raise 403 ``cross_origin`` otherwise."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    source = origin if origin is not None else request.headers.get("referer")
    if source is None:
        return
    if _allowed(source, request):
        return
    shown = source[:100]
    raise ApiError(403, "cross_origin", f"this request came from another site ({shown!r}); the studio only accepts "
                   "changes from its own pages", details={"origin": shown})


def _allowed(source: str, request: Request) -> bool:
    if source.strip().lower() == "null":
        return False
    parts = urlsplit(source.strip())
    if not parts.scheme or not parts.netloc:
        return False
    host = parts.netloc.lower().rpartition("@")[2]
    targets = {value.strip().lower() for value in (request.headers.get("host"), request.headers.get("x-forwarded-host"))
               if value}
    if host in targets:
        return True
    origin = f"{parts.scheme.lower()}://{host}"
    state = getattr(request.app.state, "moksori", None)
    configured = getattr(getattr(state, "settings", None), "allowed_origins", None) or ""
    return origin in {item.strip().lower().rstrip("/") for item in configured.split(",") if item.strip()}

"""API keys: ``Authorization: Bearer <key>``, checked against the store, and per-key rate limits.

With keys required, a request without a valid, unrevoked key gets 401. With keys not required
(loopback by default) a valid key still identifies its owner (private voices, the key's rate
limit); a missing or unknown key is treated as anonymous, so OpenAI clients that insist on
sending some key work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from moksori.server.errors import ApiError
from moksori.server.state import ServerState, server_state


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key (id, owner, limit) or nobody (anonymous)."""

    key_id: int | None = None
    key_prefix: str | None = None
    owner_id: int | None = None
    rate_limit_per_minute: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


ANONYMOUS = Principal()
_BEARER_HINT = "send the header 'Authorization: Bearer <key>' (create one with: moksori keys create NAME)"


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None without the header; 401 when
    the header has another shape."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_authorization", f"the Authorization header is not a bearer token; {_BEARER_HINT}",
                       headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


State = Annotated[ServerState, Depends(server_state)]


async def authenticate(request: Request, state: State) -> Principal:
    """FastAPI dependency: the caller, or 401 when keys are required and none valid is sent."""
    required = state.settings.keys_required
    try:
        token = bearer_token(request)
    except ApiError:
        if required:
            raise
        return ANONYMOUS  # keys off: another scheme (a proxy's Basic auth passed on) is ignored like a wrong key
    if token is None:
        if required:
            raise ApiError(401, "missing_api_key", f"this server requires an API key; {_BEARER_HINT}",
                           headers={"WWW-Authenticate": "Bearer"})
        return ANONYMOUS
    key = await run_in_threadpool(_verify, state, token) if state.database is not None else None
    if key is None:
        if required:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked",
                           headers={"WWW-Authenticate": "Bearer"})
        return ANONYMOUS
    limit = key.rate_limit_per_minute or state.settings.default_rate_limit_per_minute
    return Principal(key.id, key.prefix, key.owner_id, limit)


def _verify(state: ServerState, token: str) -> Any:  # an ApiKey row or None
    from moksori.store.keys import verify_api_key

    return verify_api_key(state.database, token)


async def rate_limited(principal: Annotated[Principal, Depends(authenticate)], state: State) -> Principal:
    """FastAPI dependency: ``authenticate`` plus one token from the key's bucket (429 when empty).
    Anonymous callers (keys not required) are not limited."""
    if principal.key_id is not None and principal.rate_limit_per_minute:
        state.rate_limiter.check(f"key:{principal.key_id}", principal.rate_limit_per_minute)
    return principal

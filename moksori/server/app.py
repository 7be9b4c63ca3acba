"""``create_app(settings)``: the FastAPI application.

Routers are listed in :data:`ROUTERS`; another part of the server (the recording studio) adds
its router there with one line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from moksori import __version__
from moksori.server import lexicon_routes, pages, shared, studio, tts
from moksori.server.bodies import BodyLimitMiddleware
from moksori.server.cache import AudioCache
from moksori.server.errors import SafeJSONResponse, install_error_handlers
from moksori.server.limits import RateLimiter, SynthesisPool
from moksori.server.metrics import Metrics, MetricsMiddleware
from moksori.server.settings import ServerSettings
from moksori.server.state import ServerState
from moksori.server.voices import VoiceRegistry
from moksori.synthesis import release_memory

log = logging.getLogger(__name__)

ROUTERS: list[APIRouter] = [tts.router, studio.router, lexicon_routes.router, pages.router]

DESCRIPTION = """
Text to speech with moksori voices. `GET /infer` and `POST /v1/audio/speech` (OpenAI-compatible)
return whole files; `POST /synthesize` with `"stream": true` sends audio sentence by sentence.
When API keys are on, send `Authorization: Bearer <key>`. Errors are JSON:
`{"error": {"code": "...", "message": "...", "type": "...", "param": ...}}` (type and param as OpenAI's).
"""


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The server application for ``settings`` (defaults when None)."""
    settings = settings or ServerSettings()
    if settings.keys_required and settings.db_url is None:
        raise ValueError(
            f"API keys are required ({_why_keys(settings)}) and they need a database, but db_url is None; "
            "set db_url, or for a loopback-only server host='127.0.0.1' (MOKSORI_SERVER_HOST)"
        )
    state = _build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("moksori server: voices from %s, API keys %s", settings.voices_dir,
                 f"on ({_why_keys(settings)})" if settings.keys_required else "off (loopback only)")
        if state.metrics_publisher is not None:
            state.metrics_publisher.start()
        yield
        if state.metrics_publisher is not None:
            state.metrics_publisher.stop()
        state.pool.shutdown()
        if state.database is not None:
            state.database.dispose()
        if state.redis is not None:
            state.redis.close()

    # /docs and /redoc are moksori.server.pages' (Swagger UI and ReDoc served from the package, no CDN).
    app = FastAPI(title="moksori", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=SafeJSONResponse, docs_url=None, redoc_url=None)
    app.state.moksori = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes,
                       on_refused=lambda code: state.metrics.errors.labels(code).inc(), timeout_s=settings.body_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)  # outermost: counts refused bodies too
    return app


def _why_keys(settings: ServerSettings) -> str:
    if settings.require_api_keys:
        return "require_api_keys is on"
    if settings.host is None:
        return "the bind address is unknown: MOKSORI_SERVER_HOST is not set"
    return f"host {settings.host} is not loopback"


def _build_state(settings: ServerSettings) -> ServerState:
    database = None
    if settings.db_url is not None:
        from moksori.store import Database

        database = Database(settings.db_url)
    pool = SynthesisPool(settings.max_concurrency, settings.max_queue, settings.queue_timeout_s, on_idle=release_memory)
    metrics = Metrics(queue_depth=lambda: pool.stats.waiting, in_progress=lambda: pool.stats.running)
    cache: Any = AudioCache(settings.cache_entries, settings.cache_max_bytes)
    rate_limiter: Any = RateLimiter()
    redis_client = publisher = None
    if redis_url := shared.redis_url_from(settings.redis_url):
        redis_client = shared.connect(redis_url)
        cache = shared.RedisAudioCache(redis_client, settings.cache_entries, settings.cache_ttl_s,
                                        max_bytes=settings.cache_max_bytes)
        rate_limiter = shared.RedisRateLimiter(redis_client)
        publisher = shared.MetricsPublisher(redis_client, metrics.registry)
    return ServerState(
        settings=settings,
        database=database,
        voices=VoiceRegistry(
            settings.voices_dir, database, settings.default_voice, include_default_voice=settings.include_default_voice,
            precision=settings.synthesis_precision, num_threads=settings.synthesis_threads,
        ),
        pool=pool,
        cache=cache,
        rate_limiter=rate_limiter,
        metrics=metrics,
        redis=redis_client,
        metrics_publisher=publisher,
    )

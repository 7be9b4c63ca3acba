"""The objects one app shares between requests (``app.state.moksori``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from moksori.server.cache import AudioCache
from moksori.server.limits import RateLimiter, SynthesisPool
from moksori.server.metrics import Metrics
from moksori.server.settings import ServerSettings
from moksori.server.voices import VoiceRegistry


@dataclass
class ServerState:
    settings: ServerSettings
    database: Any | None  # moksori.store.Database
    voices: VoiceRegistry
    pool: SynthesisPool
    cache: AudioCache
    rate_limiter: RateLimiter
    metrics: Metrics
    redis: Any | None = None  # a redis-py client when state is shared (moksori.server.shared)
    metrics_publisher: Any | None = None  # moksori.server.shared.MetricsPublisher, with redis


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: this app's shared state."""
    return request.app.state.moksori

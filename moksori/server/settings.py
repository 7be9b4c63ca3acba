"""Server settings: one dataclass, readable from environment variables (for uvicorn workers)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "MOKSORI_SERVER_"
DEFAULT_DB_URL = "sqlite:///moksori.db"
SYNTHESIS_PRECISIONS = ("fp32", "bf16", "int8", "auto")  # moksori.synthesis.precision (not imported: torch)


@dataclass
class ServerSettings:
    """Everything ``create_app`` needs.

    ``db_url`` None runs without a database: no API keys and no private voices.
    ``require_api_keys`` None turns keys on exactly when ``host`` is not a loopback address.
    ``host`` is the address the server is bound to, as far as the settings know: None means not
    known (uvicorn or gunicorn started directly, without ``MOKSORI_SERVER_HOST``) and counts as
    reachable from anywhere, so keys are required and studio sign-up is off: the secure defaults
    never depend on how the process was started.
    ``synthesis_threads``: each voice's threads (PyTorch's, process-wide, for a voice on the PyTorch
    models; its ONNX Runtime sessions' for an exported voice, which runs without torch); None: the defaults.
    ``max_body_bytes`` caps every request body except the studio's multipart uploads (which have
    their own limit); a larger body gets 413 before it is read.
    ``body_timeout_s``: a request body that stalls this long is answered 408 (see
    :mod:`moksori.server.bodies`); ``header_timeout_s``: a connection whose request line and
    headers do not arrive within this long is closed (``moksori serve`` only: see
    :mod:`moksori.server.protocol`).
    ``allowed_origins`` (comma-separated, e.g. ``https://studio.example.org``) are origins besides
    the server's own host from which the studio accepts state-changing requests (see
    :mod:`moksori.server.origin`).
    ``include_default_voice`` also offers the voice shipped with moksori (``ko_default``, see
    :mod:`moksori.voices`) when it is installed; ``moksori serve`` turns it on.
    ``redis_url`` (else ``MOKSORI_REDIS_URL``) shares rate limits, sign-in lockouts and the audio
    cache (entries kept ``cache_ttl_s`` at most) between every worker and instance through Redis
    (see :mod:`moksori.server.shared`); None keeps them in each process.
    """

    voices_dir: Path = Path("voices")
    default_voice: str | None = None
    db_url: str | None = DEFAULT_DB_URL
    require_api_keys: bool | None = None
    host: str | None = None
    max_text_chars: int = 5000
    max_body_bytes: int = 256 * 1024
    max_concurrency: int = 2
    max_queue: int = 16
    queue_timeout_s: float = 30.0
    cache_entries: int = 256
    cache_max_bytes: int = 256 * 1024 * 1024
    default_rate_limit_per_minute: int = 60
    synthesis_threads: int | None = None
    graceful_shutdown_s: float = 30.0
    include_default_voice: bool = False
    allowed_origins: str | None = None
    body_timeout_s: float = 20.0
    header_timeout_s: float = 10.0
    redis_url: str | None = None
    cache_ttl_s: float = 3600.0
    # fp32, bf16, int8 or auto (each voice's recommended one): see moksori.synthesis.precision.
    synthesis_precision: str = "fp32"

    def __post_init__(self) -> None:
        self.voices_dir = Path(self.voices_dir)
        checks = {
            "max_text_chars": self.max_text_chars >= 1,
            "max_body_bytes": self.max_body_bytes >= 1024,
            "max_concurrency": self.max_concurrency >= 1,
            "max_queue": self.max_queue >= 0,
            "queue_timeout_s": self.queue_timeout_s > 0,
            "cache_entries": self.cache_entries >= 0,
            "cache_max_bytes": self.cache_max_bytes >= 0,
            "default_rate_limit_per_minute": self.default_rate_limit_per_minute >= 1,
            "body_timeout_s": self.body_timeout_s > 0,
            "header_timeout_s": self.header_timeout_s > 0,
            "cache_ttl_s": self.cache_ttl_s >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"ServerSettings.{name} is out of range: {getattr(self, name)!r}")
        if self.synthesis_precision not in SYNTHESIS_PRECISIONS:
            raise ValueError(f"ServerSettings.synthesis_precision must be one of {', '.join(SYNTHESIS_PRECISIONS)}; "
                             f"got {self.synthesis_precision!r}")

    @property
    def keys_required(self) -> bool:
        if self.require_api_keys is not None:
            return self.require_api_keys
        return not self.loopback_only

    @property
    def loopback_only(self) -> bool:
        """Whether the server is known to listen on loopback only (an unknown host is not)."""
        return self.host is not None and is_loopback(self.host)

    def to_env(self) -> dict[str, str]:
        """Environment variables that :meth:`from_env` turns back into these settings."""
        env = {}
        for item in fields(self):
            value = getattr(self, item.name)
            env[ENV_PREFIX + item.name.upper()] = "" if value is None else str(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Settings from ``MOKSORI_SERVER_<FIELD>`` variables; unset ones keep their defaults.
        An empty value means None for the optional fields."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = environ.get(ENV_PREFIX + item.name.upper())
            if raw is not None:
                values[item.name] = _parse(item.name, raw)
        root = environ.get("MOKSORI_STORAGE_ROOT", "").strip()
        if "voices_dir" not in values and root:  # one storage root shared by instances and workers
            values["voices_dir"] = Path(root).expanduser() / "voices"
        return cls(**values)


_OPTIONAL = {"default_voice", "db_url", "require_api_keys", "synthesis_threads", "host", "allowed_origins", "redis_url"}
_INTS = {"max_text_chars", "max_body_bytes", "max_concurrency", "max_queue", "cache_entries", "cache_max_bytes", "default_rate_limit_per_minute", "synthesis_threads"}
_FLOATS = {"queue_timeout_s", "graceful_shutdown_s", "body_timeout_s", "header_timeout_s", "cache_ttl_s"}
_BOOLS = {"include_default_voice"}


def _parse(name: str, raw: str) -> Any:
    if raw == "" and name in _OPTIONAL:
        return None
    try:
        if name in _INTS:
            return int(raw)
        if name in _FLOATS:
            return float(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    if name in _BOOLS:
        lowered = raw.strip().lower()
        if lowered not in {"true", "false", "1", "0", "yes", "no"}:
            raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: use true or false")
        return lowered in {"true", "1", "yes"}
    if name == "require_api_keys":
        lowered = raw.strip().lower()
        if lowered not in {"true", "false", "1", "0", "yes", "no"}:
            raise ValueError(f"{ENV_PREFIX}REQUIRE_API_KEYS={raw!r}: use true, false or empty (automatic)")
        return lowered in {"true", "1", "yes"}
    return raw


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; False for anything reachable from outside
    (including 0.0.0.0 and ::, which bind every interface)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

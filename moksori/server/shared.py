"""State shared by every worker and instance through Redis (``MOKSORI_REDIS_URL``).

Without Redis each process keeps its own rate-limit buckets, sign-in counts and audio cache
(:mod:`moksori.server.limits`, :mod:`moksori.server.guard`, :mod:`moksori.server.cache`); with it,
these classes take their place with the same methods, so N instances share one limit per key.
Every read-modify-write is one Lua script, which Redis runs atomically; times come from the Redis
server's clock (``TIME``) so instances with skewed clocks still agree, unless a test passes a clock.

When Redis cannot be reached, limits and sign-ins answer 503 ``shared_state_unavailable``
(failing open would lift every limit); the cache just misses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import uuid
from collections.abc import Callable
from typing import Any

from moksori.server.cache import CacheKey, CachedAudio
from moksori.server.errors import ApiError

log = logging.getLogger(__name__)

PREFIX = "moksori:"

# Shared by the scripts: the time, from ARGV when the caller passes one, else the server's clock.
_NOW = """
local function now_from(arg)
  local t = tonumber(arg)
  if t then return t end
  local clock = redis.call('TIME')
  return tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
"""

# KEYS[1] bucket hash; ARGV capacity, tokens per second, now. Returns {allowed, tokens}.
TOKEN_BUCKET = _NOW + """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = now_from(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(tokens)}
"""

# KEYS record hashes; ARGV[1] now. Returns the longest remaining lockout in seconds (0: none).
LOCKED_FOR = _NOW + """
local now = now_from(ARGV[1])
local longest = 0
for i, key in ipairs(KEYS) do
  local locked_until = tonumber(redis.call('HGET', key, 'locked_until')) or 0
  longest = math.max(longest, locked_until - now)
end
return tostring(longest)
"""

# KEYS[1] record hash, KEYS[2] failure times (sorted set); ARGV now, window, limit, lockout,
# max lockout, a unique member. One failure; locks the record when it reaches the limit.
FAILED = _NOW + """
local now = now_from(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local lockout = tonumber(ARGV[4])
local max_lockout = tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - window))
if redis.call('ZCARD', KEYS[2]) >= limit then
  local lockouts = redis.call('HINCRBY', KEYS[1], 'lockouts', 1)
  local seconds = math.min(max_lockout, lockout * 2 ^ (lockouts - 1))
  redis.call('HSET', KEYS[1], 'locked_until', tostring(now + seconds))
  redis.call('DEL', KEYS[2])
end
local ttl = math.ceil(window + max_lockout)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"""

# KEYS[1] entry hash, KEYS[2] index (sorted set: last use), KEYS[3] sizes (hash: entry → bytes),
# KEYS[4] total bytes; ARGV body, media type, seconds, alignment, ttl, max entries, max bytes, now.
# Stores one entry, then evicts expired entries and the least recently used until both bounds hold.
CACHE_PUT = _NOW + """
local ttl = tonumber(ARGV[5])
local max_entries = tonumber(ARGV[6])
local max_bytes = tonumber(ARGV[7])
local now = now_from(ARGV[8])
local function drop(name)
  local size = redis.call('HGET', KEYS[3], name)
  if size then
    redis.call('DECRBY', KEYS[4], size)
    redis.call('HDEL', KEYS[3], name)
  end
  redis.call('ZREM', KEYS[2], name)
  redis.call('DEL', name)
end
drop(KEYS[1])
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - ttl))) do
  drop(name)
end
local size = string.len(ARGV[1])
redis.call('HSET', KEYS[1], 'body', ARGV[1], 'media_type', ARGV[2], 'seconds', ARGV[3], 'alignment', ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
redis.call('INCRBY', KEYS[4], size)
while redis.call('ZCARD', KEYS[2]) > max_entries or tonumber(redis.call('GET', KEYS[4])) > max_bytes do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not oldest then  -- sizes counted for entries no longer indexed: nothing is left to hold them
    redis.call('SET', KEYS[4], 0)
    break
  end
  drop(oldest)
end
return 1
"""


def redis_url_from(setting: str | None) -> str | None:
    """The Redis URL to use: the setting, else ``MOKSORI_REDIS_URL``; None (or empty) means none."""
    return setting or os.environ.get("MOKSORI_REDIS_URL") or None


def connect(url: str) -> Any:
    """A redis-py client for ``url`` (``redis://host:port/db``, ``rediss://`` for TLS); checks it
    answers, so a wrong URL fails at start-up with the URL named (password hidden)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as error:
        raise ValueError(f"cannot reach Redis at {_safe(url)}: {error}") from None
    return client


def _safe(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _unavailable(error: Exception) -> ApiError:
    log.warning("redis: %s", error)
    return ApiError(503, "shared_state_unavailable", "the server's shared state (Redis) cannot be reached; retry shortly",
                    headers={"Retry-After": "5"})


def _now_arg(clock: Callable[[], float] | None) -> str:
    return "" if clock is None else repr(clock())


class RedisRateLimiter:
    """:class:`moksori.server.limits.RateLimiter` with its buckets in Redis, shared by every instance."""

    def __init__(self, client: Any, *, prefix: str = PREFIX, clock: Callable[[], float] | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._bucket = client.register_script(TOKEN_BUCKET)

    def check(self, key: str, per_minute: int, what: str = "this API key") -> None:
        """Take one token from ``key``'s bucket, or raise 429 with Retry-After."""
        import redis

        rate = per_minute / 60.0
        try:
            allowed, tokens = self._bucket(keys=[f"{self._prefix}bucket:{key}"],
                                           args=[per_minute, repr(rate), _now_arg(self._clock)])
        except redis.RedisError as error:
            raise _unavailable(error) from None
        if int(allowed) == 1:
            return
        retry = max(1, math.ceil((1.0 - float(tokens)) / rate))
        raise ApiError(429, "rate_limited",
                       f"rate limit of {per_minute} requests a minute reached for {what}; retry in {retry} s",
                       headers={"Retry-After": str(retry)})


class RedisSignInGuard:
    """:class:`moksori.server.guard.SignInGuard` with its counts and lockouts in Redis."""

    def __init__(
        self,
        client: Any,
        account_failures: int = 5,
        address_failures: int = 20,
        window_s: float = 900.0,
        lockout_s: float = 60.0,
        max_lockout_s: float = 900.0,
        *,
        prefix: str = PREFIX,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.limits = {"account": account_failures, "address": address_failures}
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_lockout_s = max_lockout_s
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._locked_for = client.register_script(LOCKED_FOR)
        self._failed = client.register_script(FAILED)

    def check(self, username: str | None, address: str | None) -> None:
        """Raise 429 ``too_many_attempts`` when the account or the address is locked."""
        import redis

        keys = self._keys(username, address)
        try:
            remaining = float(self._locked_for(keys=[self._record(k) for k in keys], args=[_now_arg(self._clock)]))
        except redis.RedisError as error:
            raise _unavailable(error) from None
        if remaining <= 0:
            return
        retry = max(1, math.ceil(remaining))
        locked_kinds = self._locked_kinds(keys)
        what = "this account" if "account" in locked_kinds else "your address"
        raise ApiError(429, "too_many_attempts", f"too many failed sign-ins for {what}; try again in {retry} s",
                       headers={"Retry-After": str(retry)}, details={"retry_after_s": retry})

    def failed(self, username: str | None, address: str | None) -> None:
        import redis

        now = _now_arg(self._clock)
        try:
            for kind, name in self._keys(username, address):
                self._failed(keys=[self._record((kind, name)), self._record((kind, name)) + ":failures"],
                             args=[now, self.window_s, self.limits[kind], self.lockout_s, self.max_lockout_s,
                                   uuid.uuid4().hex])
        except redis.RedisError as error:
            raise _unavailable(error) from None

    def succeeded(self, username: str | None) -> None:
        import redis

        record = self._record(("account", _account(username)))
        try:
            self._client.delete(record, record + ":failures")
        except redis.RedisError as error:
            raise _unavailable(error) from None

    def _locked_kinds(self, keys: list[tuple[str, str]]) -> set[str]:
        now = _now_arg(self._clock)
        return {kind for kind, name in keys
                if float(self._locked_for(keys=[self._record((kind, name))], args=[now])) > 0}

    def _keys(self, username: str | None, address: str | None) -> list[tuple[str, str]]:
        return [("account", _account(username)), ("address", address or "unknown")]

    def _record(self, key: tuple[str, str]) -> str:
        kind, name = key
        return f"{self._prefix}signin:{kind}:{name}"


def _account(username: str | None) -> str:
    return (username or "").strip().lower()[:64]


class RedisAudioCache:
    """:class:`moksori.server.cache.AudioCache` in Redis: at most ``max_entries`` entries and
    ``max_bytes`` of audio (least recently used evicted first; a larger entry is not kept), each
    kept at most ``ttl_s`` seconds; ``max_entries`` 0 disables it. ``hits``/``misses`` count this
    process's lookups."""

    def __init__(self, client: Any, max_entries: int, ttl_s: float, *, max_bytes: int = 256 * 1024 * 1024,
                 prefix: str = PREFIX) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_s = max(1, int(ttl_s))
        self.hits = 0
        self.misses = 0
        self._client = client
        self._index = f"{prefix}cache:index"
        self._sizes = f"{prefix}cache:sizes"
        self._bytes = f"{prefix}cache:bytes"
        self._prefix = f"{prefix}cache:entry:"
        self._put = client.register_script(CACHE_PUT)

    @staticmethod
    def key(text: str, voice_key: str, speed: float, audio_format: str) -> CacheKey:
        return (text, voice_key, round(float(speed), 4), audio_format)

    def get(self, key: CacheKey) -> CachedAudio | None:
        import redis

        if self.max_entries <= 0:
            self.misses += 1
            return None
        name = self._name(key)
        try:
            fields = self._client.hgetall(name)
            if fields:
                self._client.zadd(self._index, {name: _redis_time(self._client)})
        except redis.RedisError as error:
            log.warning("redis cache: %s", error)
            fields = {}
        if not fields:
            self.misses += 1
            return None
        self.hits += 1
        return CachedAudio(fields[b"body"], fields[b"media_type"].decode(), float(fields[b"seconds"]),
                           fields[b"alignment"].decode())

    def put(self, key: CacheKey, entry: CachedAudio) -> None:
        import redis

        if self.max_entries <= 0 or len(entry.body) > self.max_bytes:
            return
        try:
            self._put(keys=[self._name(key), self._index, self._sizes, self._bytes],
                      args=[entry.body, entry.media_type, repr(entry.seconds), entry.alignment, self.ttl_s,
                            self.max_entries, self.max_bytes, ""])
        except redis.RedisError as error:
            log.warning("redis cache: %s", error)

    def __len__(self) -> int:
        return int(self._client.zcard(self._index))

    @property
    def bytes(self) -> int:
        """The audio bytes the cache holds (every instance's entries)."""
        return int(self._client.get(self._bytes) or 0)

    def _name(self, key: CacheKey) -> str:
        digest = hashlib.sha256(json.dumps(list(key), ensure_ascii=False).encode()).hexdigest()
        return self._prefix + digest


def _redis_time(client: Any) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


class MetricsPublisher:
    """Publishes this process's metrics to Redis every ``interval_s`` (and on demand), so that any
    instance can answer ``GET /metrics?scope=cluster`` with the sums over every live process.

    Each process writes one key that expires after three missed intervals: a process that died
    drops out of the sums (its counts with it, as Prometheus' own per-target scrapes would)."""

    def __init__(self, client: Any, registry: Any, *, interval_s: float = 5.0, prefix: str = PREFIX) -> None:
        import socket
        import threading

        self._client = client
        self._registry = registry
        self.interval_s = interval_s
        self._pattern = f"{prefix}metrics:*"
        self.key = f"{prefix}metrics:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="moksori-metrics-publisher", daemon=True)

    def start(self) -> None:
        import redis

        try:
            self.publish()  # counted from the start, not one interval later
        except redis.RedisError as error:
            log.warning("metrics publisher: %s", error)
        self._thread.start()

    def stop(self) -> None:
        import redis

        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 1)
        try:
            self._client.delete(self.key)
        except redis.RedisError:
            pass

    def publish(self) -> None:
        families = []
        for family in self._registry.collect():
            samples = [[s.name, s.labels, s.value] for s in family.samples if not s.name.endswith("_created")]
            families.append({"name": family.name, "type": family.type, "doc": family.documentation, "samples": samples})
        self._client.set(self.key, json.dumps(families), ex=max(1, math.ceil(3 * self.interval_s)))

    def cluster(self) -> bytes:
        """Every live process's metrics summed, in Prometheus' text format (this one's freshly)."""
        self.publish()
        snapshots = [self._client.get(key) for key in self._client.scan_iter(match=self._pattern, count=100)]
        return render_sums([json.loads(s) for s in snapshots if s], instances=len(snapshots))

    def _loop(self) -> None:
        import redis

        while not self._stop.wait(self.interval_s):
            try:
                self.publish()
            except redis.RedisError as error:
                log.warning("metrics publisher: %s", error)


def render_sums(snapshots: list[list[dict[str, Any]]], instances: int) -> bytes:
    """Sum samples with the same name and labels over ``snapshots``; Prometheus text format."""
    families: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        for family in snapshot:
            merged = families.setdefault(family["name"], {"type": family["type"], "doc": family["doc"], "samples": {}})
            for name, labels, value in family["samples"]:
                key = (name, tuple(sorted(labels.items())))
                merged["samples"][key] = merged["samples"].get(key, 0.0) + value
    lines = ["# HELP moksori_cluster_processes Server processes whose metrics are summed here",
             "# TYPE moksori_cluster_processes gauge", f"moksori_cluster_processes {instances}"]
    for name, family in sorted(families.items()):
        lines.append(f"# HELP {name} {family['doc']}")
        lines.append(f"# TYPE {name} {family['type']}")
        for (sample, labels), value in family["samples"].items():
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{sample}{{{label_text}}} {value!r}" if label_text else f"{sample} {value!r}")
    return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

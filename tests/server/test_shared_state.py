"""Rate limits, sign-in lockouts and the audio cache shared through a real redis-server.

Two objects (or two apps) on one Redis stand for two server instances: what one counts, the
other sees. The server is a throwaway started once per test process (tests/conftest.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from moksori.server.cache import CachedAudio
from moksori.server.errors import ApiError
from moksori.server.shared import RedisAudioCache, RedisRateLimiter, RedisSignInGuard, connect
from moksori.services import free_port
from moksori.store import Database
from moksori.store.keys import create_api_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_url(redis_server: Any) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    client = connect(redis_url)
    yield client
    client.close()


def test_one_bucket_holds_across_instances_and_refills(client: Any) -> None:
    clock = Clock()
    first, second = RedisRateLimiter(client, clock=clock), RedisRateLimiter(client, clock=clock)
    for limiter in (first, second, first, second, first):
        limiter.check("key:1", 5)
    with pytest.raises(ApiError) as refused:
        second.check("key:1", 5)
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    assert refused.value.headers["Retry-After"] == "12"  # one token every 12 s at 5 a minute
    first.check("key:2", 5)  # buckets are per key
    clock.now += 12
    second.check("key:1", 5)
    with pytest.raises(ApiError):
        first.check("key:1", 5)


def test_concurrent_checks_never_overspend(redis_url: str) -> None:
    limiters = [RedisRateLimiter(connect(redis_url)) for _ in range(4)]  # four clients, as four instances
    allowed = []
    lock = threading.Lock()

    def hammer(limiter: RedisRateLimiter) -> None:
        for _ in range(10):
            try:
                limiter.check("key:hot", 15)
            except ApiError:
                continue
            with lock:
                allowed.append(1)

    threads = [threading.Thread(target=hammer, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 15  # 40 tries, a bucket of 15, refilling 0.25/s: no second token in a test's time


def test_sign_in_lockout_is_shared_doubles_and_clears(client: Any) -> None:
    clock = Clock()
    guards = [RedisSignInGuard(client, account_failures=3, lockout_s=60, clock=clock) for _ in range(2)]
    for i in range(3):
        guards[i % 2].check("Minji", "10.0.0.1")
        guards[i % 2].failed("Minji", "10.0.0.1")
    with pytest.raises(ApiError) as locked:
        guards[1].check("minji ", "10.0.0.2")  # the same account, from elsewhere
    assert locked.value.status == 429 and "this account" in locked.value.message
    assert locked.value.headers["Retry-After"] == "60"
    guards[0].check("someone-else", "10.0.0.2")
    clock.now += 61
    guards[0].check("minji", "10.0.0.1")
    for _ in range(3):
        guards[1].failed("minji", "10.0.0.1")
    with pytest.raises(ApiError) as again:
        guards[0].check("minji", "10.0.0.1")
    assert again.value.headers["Retry-After"] == "120"  # the second lockout is twice as long
    clock.now += 121
    guards[0].failed("minji", "10.0.0.1")
    guards[1].succeeded("minji")  # a success forgets the account's failures
    for _ in range(2):
        guards[0].failed("minji", "10.0.0.1")
    guards[0].check("minji", "10.0.0.1")


def test_address_lockout_counts_every_username(client: Any) -> None:
    guard = RedisSignInGuard(client, account_failures=100, address_failures=4, clock=Clock())
    for name in ("a", "b", "c", "d"):
        guard.failed(name, "10.9.9.9")
    with pytest.raises(ApiError) as locked:
        guard.check("e", "10.9.9.9")
    assert "your address" in locked.value.message


def test_cache_is_shared_bounded_and_expires(client: Any) -> None:
    first, second = RedisAudioCache(client, 3, 1), RedisAudioCache(client, 3, 1)
    entry = CachedAudio(b"RIFF\x00\xff" * 10, "audio/wav", 1.5, "")
    key = first.key("안녕", "tiny|1", 1.0, "wav")
    assert second.get(key) is None
    first.put(key, entry)
    assert second.get(key) == entry and second.hits == 1 and second.misses == 1
    for i in range(4):
        second.put(first.key(f"문장 {i}", "tiny|1", 1.0, "wav"), entry)
    assert len(first) == 3
    assert first.get(key) is None  # the least recently used went first
    time.sleep(1.1)
    assert first.get(first.key("문장 3", "tiny|1", 1.0, "wav")) is None  # past its TTL


def test_cache_is_bounded_by_bytes_across_instances(client: Any) -> None:
    """Entry count alone let a few long SSML answers (100 MB each) fill Redis: the bytes are bounded
    too, evicting the least recently used, and an entry larger than the bound is not kept."""
    first, second = (RedisAudioCache(client, 100, 60, max_bytes=1000, prefix="bytes:") for _ in range(2))
    entry = CachedAudio(b"x" * 300, "audio/wav", 1.0, "")
    keys = [first.key(f"문장 {i}", "tiny|1", 1.0, "wav") for i in range(4)]
    first.put(keys[0], entry)
    second.put(keys[1], entry)
    first.put(keys[2], entry)
    assert first.bytes == second.bytes == 900 and len(first) == 3
    assert second.get(keys[0]) == entry  # now the most recently used
    second.put(keys[3], entry)  # 1,200 bytes: the least recently used (keys[1]) goes
    assert first.bytes == 900 and len(first) == 3
    assert first.get(keys[1]) is None and first.get(keys[0]) == entry
    first.put(keys[3], CachedAudio(b"y" * 300, "audio/wav", 1.0, ""))  # replacing counts once
    assert first.bytes == 900
    first.put(first.key("긴 문장", "tiny|1", 1.0, "wav"), CachedAudio(b"z" * 1001, "audio/wav", 9.0, ""))
    assert first.get(first.key("긴 문장", "tiny|1", 1.0, "wav")) is None and first.bytes == 900


def test_unreachable_redis_is_a_clear_error() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(ValueError, match=f"cannot reach Redis at {url}"):
        connect(url)
    limiter = RedisRateLimiter(redis.Redis.from_url(url, socket_connect_timeout=1))
    with pytest.raises(ApiError) as refused:
        limiter.check("key:1", 5)
    assert refused.value.status == 503 and refused.value.code == "shared_state_unavailable"
    cache = RedisAudioCache(redis.Redis.from_url(url, socket_connect_timeout=1), 3, 60)
    assert cache.get(cache.key("x", "v", 1.0, "wav")) is None  # the cache only misses


def test_two_apps_share_one_keys_limit_and_the_cache(make_client: Any, redis_url: str, tmp_path: Any) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    database = Database(db_url)
    _, key = create_api_key(database, "shared", rate_limit_per_minute=3)
    database.dispose()
    apps = [make_client(db_url=db_url, require_api_keys=True, redis_url=redis_url) for _ in range(2)]
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [apps[i % 2].get("/infer", params={"text": "안녕"}, headers=headers).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert apps[0].app.state.moksori.cache.hits + apps[1].app.state.moksori.cache.hits == 2  # one synthesis, two hits


def _sample(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_cluster_metrics_sum_every_instance(make_client: Any, redis_url: str) -> None:
    apps = [make_client(redis_url=redis_url) for _ in range(2)]
    for count, app in zip((2, 3), apps, strict=True):
        for _ in range(count):
            assert app.get("/health").status_code == 200
    apps[1].app.state.moksori.metrics_publisher.publish()  # what its timer does every 5 s
    own = apps[0].get("/metrics").text
    assert _sample(own, 'moksori_requests_total{method="GET",route="/health"') == 2
    cluster = apps[0].get("/metrics", params={"scope": "cluster"})
    assert cluster.status_code == 200 and cluster.headers["content-type"].startswith("text/plain")
    assert "moksori_cluster_processes 2" in cluster.text
    assert _sample(cluster.text, 'moksori_requests_total{method="GET",route="/health"') == 5
    assert "# TYPE moksori_request_duration_seconds histogram" in cluster.text
    assert _sample(cluster.text, 'moksori_request_duration_seconds_count{route="/health"}') == 5


def test_cluster_metrics_need_redis_and_a_known_scope(make_client: Any) -> None:
    app = make_client()
    refused = app.get("/metrics", params={"scope": "cluster"})
    assert refused.status_code == 400 and "MOKSORI_REDIS_URL" in refused.json()["error"]["message"]
    assert app.get("/metrics", params={"scope": "galaxy"}).status_code == 422


def test_publisher_publishes_on_its_own_and_leaves_when_stopped(redis_url: str) -> None:
    from prometheus_client import CollectorRegistry, Counter

    from moksori.server.shared import MetricsPublisher

    registry = CollectorRegistry()
    counter = Counter("moksori_test_things", "things", registry=registry)
    client = connect(redis_url)
    publisher = MetricsPublisher(client, registry, interval_s=0.2)
    publisher.start()
    counter.inc(7)
    time.sleep(0.6)
    snapshot = client.get(publisher.key).decode()
    assert '"moksori_test_things_total", {}, 7.0' in snapshot
    publisher.stop()
    assert client.get(publisher.key) is None  # a stopped process drops out of the sums
    client.close()

"""Back-pressure (queue full, queue timeout), the audio cache, per-key buckets, stream cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from moksori.server.cache import AudioCache, CachedAudio
from moksori.server.errors import ApiError
from moksori.server.settings import ServerSettings
from moksori.server.limits import RateLimiter, SynthesisPool


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_full_queue_gives_503_with_retry_after(make_client, synthesis_spy) -> None:
    client = make_client(max_concurrency=1, max_queue=1)
    synthesis_spy.block()
    with ThreadPoolExecutor(2) as threads:
        running = threads.submit(client.get, "/infer", params={"text": "하나"})
        assert synthesis_spy.started.acquire(timeout=10)
        queued = threads.submit(client.get, "/infer", params={"text": "둘"})
        wait_for(lambda: client.get("/health").json()["queue"]["waiting"] == 1)

        rejected = client.get("/infer", params={"text": "셋"})
        assert rejected.status_code == 503
        assert int(rejected.headers["retry-after"]) >= 1
        assert rejected.json()["error"]["code"] == "server_busy"

        synthesis_spy.release()
        assert running.result().status_code == 200
        assert queued.result().status_code == 200
    assert client.get("/infer", params={"text": "셋"}).status_code == 200
    assert 'moksori_errors_total{code="server_busy"} 1.0' in client.get("/metrics").text


def test_a_job_that_cannot_start_in_time_gets_503(make_client, synthesis_spy) -> None:
    client = make_client(max_concurrency=1, max_queue=4, queue_timeout_s=0.3)
    synthesis_spy.block()
    with ThreadPoolExecutor(1) as threads:
        running = threads.submit(client.get, "/infer", params={"text": "하나"})
        assert synthesis_spy.started.acquire(timeout=10)
        timed_out = client.get("/infer", params={"text": "둘"})
        assert timed_out.status_code == 503
        assert "waited 0.3 s" in timed_out.json()["error"]["message"]
        synthesis_spy.release()
        assert running.result().status_code == 200
    assert synthesis_spy.calls == 1  # the cancelled job never ran


def test_cache_hit_skips_synthesis(make_client, synthesis_spy) -> None:
    client = make_client()
    first = client.get("/infer", params={"text": "캐시 시험입니다."})
    second = client.get("/infer", params={"text": "캐시 시험입니다."})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert synthesis_spy.calls == 1
    client.get("/infer", params={"text": "캐시 시험입니다.", "speed": 1.5})
    client.get("/infer", params={"text": "캐시 시험입니다.", "format": "mp3"})
    assert synthesis_spy.calls == 3  # speed and format are part of the key


def test_cache_can_be_off(make_client, synthesis_spy) -> None:
    client = make_client(cache_entries=0)
    for _ in range(2):
        client.get("/infer", params={"text": "캐시 없음"})
    assert synthesis_spy.calls == 2


def test_cache_is_bounded_by_bytes_as_well_as_entries() -> None:
    cache = AudioCache(max_entries=100, max_bytes=1000)
    for index in range(5):
        cache.put(("text", str(index), 1.0, "wav"), CachedAudio(b"x" * 300, "audio/wav", 1.0))
    assert len(cache) == 3 and cache.bytes == 900  # the two oldest were evicted for the bytes
    assert cache.get(("text", "0", 1.0, "wav")) is None and cache.get(("text", "4", 1.0, "wav")) is not None
    cache.put(("huge", "v", 1.0, "wav"), CachedAudio(b"x" * 1001, "audio/wav", 1.0))
    assert cache.get(("huge", "v", 1.0, "wav")) is None and len(cache) == 3  # too large to keep at all
    cache.put(("text", "4", 1.0, "wav"), CachedAudio(b"x" * 10, "audio/wav", 1.0))
    assert cache.bytes == 610  # a replaced entry's bytes are given back


def test_cache_byte_limit_is_a_server_setting(make_client) -> None:
    assert ServerSettings.from_env({"MOKSORI_SERVER_CACHE_MAX_BYTES": "4096"}).cache_max_bytes == 4096
    client = make_client(cache_max_bytes=4096)
    assert client.app.state.moksori.cache.max_bytes == 4096
    client.get("/infer", params={"text": "캐시에 남지 않는 긴 소리입니다."})  # a WAV of more than 4 KiB
    assert client.get("/infer", params={"text": "캐시에 남지 않는 긴 소리입니다."}).headers["x-cache"] == "miss"


def test_token_bucket_refills_at_the_key_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(3):
        limiter.check("k", 3)
    with pytest.raises(ApiError) as caught:
        limiter.check("k", 3)
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "20"
    now[0] = 20.0  # 3 a minute: one token every 20 s
    limiter.check("k", 3)
    with pytest.raises(ApiError):
        limiter.check("k", 3)
    limiter.check("other", 3)


def test_stream_consumer_leaving_stops_the_worker_between_items() -> None:
    produced: list[int] = []
    gate = threading.Event()

    def items():
        for index in range(10):
            produced.append(index)
            yield index
            gate.wait(timeout=5)  # hold the worker until the consumer has left

    async def consume_one() -> int:
        stream = pool.stream(items)
        first = await anext(stream)
        await stream.aclose()
        return first

    pool = SynthesisPool(1, 0, 5.0)
    assert asyncio.run(consume_one()) == 0
    gate.set()
    wait_for(lambda: pool.stats.in_flight == 0)
    # At most the item in progress when the consumer left is finished; nothing after it.
    assert produced in ([0], [0, 1])
    pool.shutdown()

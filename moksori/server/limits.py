"""Back-pressure and fairness: a bounded synthesis pool and per-key token buckets.

The pool runs at most ``max_concurrency`` jobs in threads and lets at most ``max_queue`` more
wait; beyond that, and for a job that waited longer than ``queue_timeout_s`` without starting,
the request gets 503 with Retry-After instead of piling up memory and latency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from moksori.server.errors import ApiError

T = TypeVar("T")


class PoolStats:
    """Counters the metrics module reads (plain ints, updated under the pool's lock)."""

    def __init__(self) -> None:
        self.in_flight = 0  # admitted and not finished: running + waiting
        self.running = 0
        self.rejected = 0

    @property
    def waiting(self) -> int:
        return self.in_flight - self.running


class SynthesisPool:
    """A fixed set of worker threads with a bounded queue in front of them."""

    def __init__(
        self,
        max_concurrency: int,
        max_queue: int,
        queue_timeout_s: float,
        *,
        on_idle: Callable[[], Any] | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self.stats = PoolStats()
        self._on_idle = on_idle
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_concurrency, thread_name_prefix="moksori-synth")

    def retry_after_s(self) -> int:
        """A rough wait before a retry is likely to be admitted: one second per job per worker."""
        return max(1, math.ceil(self.stats.in_flight / self.max_concurrency))

    def _admit(self) -> None:
        with self._lock:
            if self.stats.in_flight >= self.max_concurrency + self.max_queue:
                self.stats.rejected += 1
                raise self._busy(f"the server is busy: {self.stats.in_flight} requests are being synthesised or waiting")
            self.stats.in_flight += 1

    def _busy(self, message: str) -> ApiError:
        retry = self.retry_after_s()
        return ApiError(503, "server_busy", f"{message}; retry in {retry} s", headers={"Retry-After": str(retry)})

    def _finished(self, _future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self.stats.in_flight -= 1
            idle = self.stats.in_flight == 0
        if idle and self._on_idle is not None:
            self._on_idle()

    def _call(self, function: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._lock:
            self.stats.running += 1
        try:
            return function(*args)
        finally:
            with self._lock:
                self.stats.running -= 1

    def submit(self, function: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Admit and queue a job (raises the 503 ApiError when the queue is full)."""
        self._admit()
        try:
            future = self._executor.submit(self._call, function, args)
        except RuntimeError:  # shut down
            with self._lock:
                self.stats.in_flight -= 1
            raise ApiError(503, "shutting_down", "the server is shutting down", headers={"Retry-After": "5"}) from None
        future.add_done_callback(self._finished)
        return future

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on a worker; 503 when the queue is full or the job does not
        start within ``queue_timeout_s``. A started job always runs to its end."""
        future = self.submit(function, *args)
        waiter = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout_s)
        except TimeoutError:
            if future.cancel():  # only succeeds while the job has not started
                raise self._busy(f"the request waited {self.queue_timeout_s:g} s in the queue without starting") from None
            return await waiter
        except asyncio.CancelledError:
            future.cancel()  # the caller is gone: a job still queued never starts (a running one is the job's to stop)
            waiter.add_done_callback(_retrieve)  # its outcome has no reader any more
            raise

    async def stream(self, make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        """Run an iterator on one worker, yielding its items as they come. The worker stops
        between items once the consumer goes away (``aclose``, cancellation)."""
        channel: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            channel.put((kind, value))
            loop.call_soon_threadsafe(ready.set)

        def produce() -> None:
            try:
                if stop.is_set():  # the client left while the job waited in the queue
                    return
                iterator = iter(make_iterator())
                while not stop.is_set():  # checked before each item: a left client costs nothing more
                    try:
                        item = next(iterator)
                    except StopIteration:
                        return
                    put("item", item)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
                put("error", error)
            finally:
                put("end", None)

        # Started through run() so that queue limits and the start timeout apply; the job
        # itself returns at once only after the iterator is exhausted or stopped.
        job = asyncio.ensure_future(self.run(produce))
        try:
            while True:
                await _wait_either(ready, job)
                if job.done() and job.exception() is not None:
                    raise job.exception()  # type: ignore[misc]
                ready.clear()
                while not channel.empty():
                    kind, value = channel.get()
                    if kind == "error":
                        raise value
                    if kind == "end":
                        return
                    yield value
        finally:
            stop.set()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _wait_either(event: asyncio.Event, job: asyncio.Future[Any]) -> None:
    if event.is_set() or job.done():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter, job}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per key: ``per_minute`` requests a minute, bursts up to ``per_minute``.

    Buckets live in this process; with several workers or instances each keeps its own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key: str, per_minute: int, what: str = "this API key") -> None:
        """Take one token from ``key``'s bucket, or raise 429 with Retry-After (``what`` names
        whose limit it is in the message)."""
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(per_minute), now))
            bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            retry = max(1, math.ceil((1.0 - bucket.tokens) / rate))
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {per_minute} requests a minute reached for {what}; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )

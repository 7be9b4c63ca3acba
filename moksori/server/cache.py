"""An in-memory LRU cache of finished audio: (text, voice, speed, format) → encoded bytes."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class CachedAudio:
    body: bytes
    media_type: str
    seconds: float
    alignment: str = ""  # "failed; <reasons>" when an attention model's alignment failed, else empty

    @cached_property
    def etag(self) -> str:
        """A strong HTTP entity tag of the body, hashed once per cached entry (not per request)."""
        return '"' + hashlib.blake2b(self.body, digest_size=16).hexdigest() + '"'


CacheKey = tuple[str, str, float, str]


class AudioCache:
    """Least-recently-used, bounded by entry count and by the bytes it holds; ``max_entries`` 0
    disables it. An entry larger than ``max_bytes`` is not kept (one long text, or SSML breaks,
    can make a 100 MB file: 256 of them would hold the server's memory)."""

    def __init__(self, max_entries: int, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[CacheKey, CachedAudio] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str, voice_key: str, speed: float, audio_format: str) -> CacheKey:
        return (text, voice_key, round(float(speed), 4), audio_format)

    def get(self, key: CacheKey) -> CachedAudio | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: CacheKey, entry: CachedAudio) -> None:
        if self.max_entries <= 0 or len(entry.body) > self.max_bytes:
            return
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self.bytes -= len(replaced.body)
            self._entries[key] = entry
            self.bytes += len(entry.body)
            while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= len(evicted.body)

    def __len__(self) -> int:
        return len(self._entries)

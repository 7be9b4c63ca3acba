"""An in-memory LRU cache of finished audio: (text, voice, speed, format) → encoded bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedAudio:
    body: bytes
    media_type: str
    seconds: float
    alignment: str = ""  # "failed; <reasons>" when an attention model's alignment failed, else empty


CacheKey = tuple[str, str, float, str]


class AudioCache:
    """Least-recently-used, bounded by entry count; ``max_entries`` 0 disables it."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
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
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

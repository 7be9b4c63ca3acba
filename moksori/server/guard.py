"""Failed sign-ins: a lockout per account and per client address (issue 14, item 8).

Each failed sign-in is counted against the username tried and against the client's address.
``account_failures`` failures of one account within ``window_s`` lock that account for
``lockout_s`` (doubling with each further lockout, up to ``max_lockout_s``);
``address_failures`` failures from one address (any usernames) lock that address likewise.
A locked attempt is answered 429 with Retry-After *before* the password is hashed, so guessing
costs the server nothing. A successful sign-in clears its account's count (not the address's).

Unknown usernames count like real ones, so the answers do not tell which accounts exist. Counts
live in this process; with several workers each keeps its own (the limits are per worker).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from moksori.server.errors import ApiError

MAX_RECORDS = 10_000  # beyond this, records with nothing to remember are dropped


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    lockouts: int = 0


class SignInGuard:
    def __init__(
        self,
        account_failures: int = 5,
        address_failures: int = 20,
        window_s: float = 900.0,
        lockout_s: float = 60.0,
        max_lockout_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"account": account_failures, "address": address_failures}
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_lockout_s = max_lockout_s
        self._clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    def check(self, username: str | None, address: str | None) -> None:
        """Raise 429 ``too_many_attempts`` (with Retry-After) when the account or the address is
        locked; otherwise return."""
        now = self._clock()
        with self._lock:
            for kind, name in self._keys(username, address):
                record = self._records.get((kind, name))
                if record is not None and record.locked_until > now:
                    retry = max(1, math.ceil(record.locked_until - now))
                    what = "this account" if kind == "account" else "your address"
                    raise ApiError(429, "too_many_attempts",
                                   f"too many failed sign-ins for {what}; try again in {retry} s",
                                   headers={"Retry-After": str(retry)}, details={"retry_after_s": retry})

    def failed(self, username: str | None, address: str | None) -> None:
        now = self._clock()
        with self._lock:
            if len(self._records) > MAX_RECORDS:
                self._prune(now)
            for kind, name in self._keys(username, address):
                record = self._records.setdefault((kind, name), _Record())
                record.failures.append(now)
                while record.failures and record.failures[0] < now - self.window_s:
                    record.failures.popleft()
                if len(record.failures) >= self.limits[kind]:
                    record.lockouts += 1
                    record.locked_until = now + min(self.max_lockout_s, self.lockout_s * 2 ** (record.lockouts - 1))
                    record.failures.clear()

    def succeeded(self, username: str | None) -> None:
        with self._lock:
            self._records.pop(("account", _account(username)), None)

    def _keys(self, username: str | None, address: str | None) -> list[tuple[str, str]]:
        return [("account", _account(username)), ("address", address or "unknown")]

    def _prune(self, now: float) -> None:
        stale = [key for key, record in self._records.items()
                 if record.locked_until <= now and (not record.failures or record.failures[-1] < now - self.window_s)]
        for key in stale:
            del self._records[key]


def _account(username: str | None) -> str:
    return (username or "").strip().lower()[:64]

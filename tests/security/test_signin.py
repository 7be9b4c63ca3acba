"""Issue 14.8, sign-in: ten concurrent sign-ins cost 640 MB (one 64 MiB Argon2 hash each, all at
once); 100 wrong passwords were all checked, none refused; and signing out left the old cookie
working. Now hashing runs in a few slots, failed sign-ins lock the account and the address
(429 + Retry-After, before any hashing), and sign-out ends the session on the server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from moksori.server.guard import SignInGuard
from moksori.store import Database, StudioSession
from moksori.store import accounts

ALICE = {"username": "alice", "password": "correct horse battery"}


class HashCounter:
    """Wraps the password hasher: counts calls and the most that ran at the same time."""

    def __init__(self, hasher, pause_s: float = 0.05) -> None:
        self.hasher = hasher
        self.pause_s = pause_s
        self.running = 0
        self.most = 0
        self.calls = 0
        self.lock = threading.Lock()

    def _measured(self, function, *args):
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.pause_s)  # long enough for the others to pile up if nothing stops them
            return function(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password):
        return self._measured(self.hasher.hash, password)

    def verify(self, password_hash, password):
        return self._measured(self.hasher.verify, password_hash, password)

    def check_needs_rehash(self, password_hash):
        return self.hasher.check_needs_rehash(password_hash)


@pytest.fixture
def counter(monkeypatch) -> HashCounter:
    counter = HashCounter(accounts._hasher)
    monkeypatch.setattr(accounts, "_hasher", counter)
    return counter


def test_concurrent_sign_ins_hash_a_few_at_a_time(tmp_path, counter):
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    accounts.create_user(db, ALICE["username"], ALICE["password"])
    counter.most = 0
    with ThreadPoolExecutor(10) as pool:
        users = list(pool.map(lambda _: accounts.authenticate(db, ALICE["username"], ALICE["password"]), range(10)))
    db.dispose()
    assert all(user is not None for user in users)
    assert counter.most <= accounts.MAX_CONCURRENT_HASHES  # was 10: 10 × 64 MiB at once


def test_wrong_passwords_lock_the_account_with_retry_after_and_without_hashing(make_site, counter):
    client = make_site().client(host="127.0.0.1")
    assert client.post("/api/studio/account/signup", json=ALICE).status_code == 201
    statuses = []
    for attempt in range(8):
        response = client.post("/api/studio/account/signin", json={**ALICE, "password": f"wrong guess {attempt}"})
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    assert response.json()["error"]["code"] == "too_many_attempts"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    hashed = counter.calls
    # Locked: even the right password is refused, and refusing costs no hash.
    assert client.post("/api/studio/account/signin", json=ALICE).status_code == 429
    assert counter.calls == hashed


def test_one_address_guessing_many_accounts_is_locked_out():
    guard = SignInGuard(account_failures=5, address_failures=20)
    for index in range(20):
        guard.check(f"user{index}", "10.0.0.9")
        guard.failed(f"user{index}", "10.0.0.9")
    with pytest.raises(Exception) as refused:
        guard.check("someone-else", "10.0.0.9")
    assert refused.value.status == 429 and refused.value.code == "too_many_attempts"
    guard.check("someone-else", "10.0.0.10")  # another address is not affected


def test_lockouts_expire_and_double():
    now = [0.0]
    guard = SignInGuard(account_failures=3, address_failures=100, lockout_s=60, clock=lambda: now[0])
    for _ in range(3):
        guard.failed("bob", "a")
    with pytest.raises(Exception) as first:
        guard.check("bob", "a")
    assert first.value.headers["Retry-After"] == "60"
    now[0] = 61.0
    guard.check("bob", "a")  # expired
    for _ in range(3):
        guard.failed("bob", "a")
    with pytest.raises(Exception) as second:
        guard.check("bob", "a")
    assert second.value.headers["Retry-After"] == "120"
    guard.succeeded("bob")
    guard.check("bob", "a")


def test_sign_out_ends_the_session_on_the_server(make_site):
    site = make_site()
    client = site.client(host="127.0.0.1")
    response = client.post("/api/studio/account/signup", json=ALICE)
    cookie = response.cookies["moksori_studio"]
    assert client.get("/api/studio/account").json()["user"]["username"] == "alice"
    assert client.post("/api/studio/account/signout").status_code == 200
    # The attack: keep a copy of the cookie and send it after signing out.
    client.cookies.set("moksori_studio", cookie)
    assert client.get("/api/studio/account").json()["user"] is None
    database = Database(site.db_url)
    with database.session() as session:
        assert session.scalars(select(StudioSession)).all() == []
    database.dispose()


def test_session_tokens_are_stored_hashed(make_site):
    site = make_site()
    client = site.client(host="127.0.0.1")
    cookie = client.post("/api/studio/account/signup", json=ALICE).cookies["moksori_studio"]
    raw = (site.root / "moksori.db").read_bytes() + (site.root / "moksori.db-wal").read_bytes()
    assert cookie.encode() not in raw


def test_sign_ups_from_one_address_are_rate_limited(make_site):
    client = make_site().client(host="127.0.0.1")
    statuses = [client.post("/api/studio/account/signup", json={"username": f"user{i:02d}", "password": "long enough pw"}
                            ).status_code for i in range(13)]
    # 10 a minute: the bucket refills a little while the others are hashed
    assert statuses[:10] == [201] * 10 and statuses[-1] == 429 and statuses.count(201) <= 11

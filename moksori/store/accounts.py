"""User accounts: creation and password checks.

Passwords are hashed with Argon2id, 19 MiB, 2 passes, 1 lane (OWASP's recommended setting).
Argon2id is memory-hard, which makes guessing on GPUs expensive, and its encoded hash carries
its own salt and parameters, so they can change (``authenticate`` rehashes hashes made with other
parameters, such as argon2-cffi's default 64 MiB of earlier versions, at the next sign-in).
Memory is what a crowd of sign-ins costs the server, so at most :data:`MAX_CONCURRENT_HASHES` run
at once in a process and the others wait their turn: ten concurrent sign-ins raised the server's
peak memory by 642 MB with the old parameters and no bound, by about 60 MB now.

Sessions (:func:`create_session`) are random tokens whose SHA-256 is stored in ``sessions``;
:func:`end_session` deletes the row, so a signed-out cookie stops working everywhere.

Usernames: 3–32 characters of letters, digits, ``_ . -``, starting with a letter or digit.
They are stored in lower case, so ``Alice`` and ``alice`` are the same account.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from moksori.store.database import Database
from moksori.store.models import StudioSession, User, utcnow

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
MIN_PASSWORD_LENGTH = 8
# Hashing a megabyte "password" is an easy way to tie up a server.
MAX_PASSWORD_LENGTH = 1024

# A hash takes ~30 ms, so one at a time still serves ~30 sign-ins a second per process.
MAX_CONCURRENT_HASHES = 1
SESSION_DAYS = 30

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


@contextmanager
def _hash_slot() -> Iterator[None]:
    """One of the few slots in which a password hash may run (waits for one)."""
    with _hash_slots:
        yield


def _hash(password: str) -> str:
    with _hash_slot():
        return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user does not exist, so both cases take the same time."""
    return _hash("moksori-no-such-user")


def normalize_username(username: str) -> str:
    """The stored form of ``username``; ValueError saying what is wrong with a bad one."""
    name = username.strip().lower() if isinstance(username, str) else ""
    if not USERNAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid username {username!r}: use 3-32 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    if not _encodable(password):
        raise ValueError("password holds a lone surrogate (not Unicode text)")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def create_user(db: Database, username: str, password: str) -> User:
    """A new user; ValueError for a bad username or password, or a username already taken."""
    name = normalize_username(username)
    _check_password(password)
    user = User(username=name, password_hash=_hash(password))
    try:
        with db.session() as session:
            if session.scalar(select(User.id).where(User.username == name)) is not None:
                raise ValueError(f"username {name!r} is already taken")
            session.add(user)
    except IntegrityError as error:  # lost a race with another create_user
        raise ValueError(f"username {name!r} is already taken") from error
    return user


def authenticate(db: Database, username: str, password: str) -> User | None:
    """The user whose name and password match, or None."""
    try:
        name = normalize_username(username)
    except ValueError:
        return None
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH or not _encodable(password):
        return None
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == name))
        if user is None:
            _verify(_dummy_hash(), password)
            return None
        if not _verify(user.password_hash, password):
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hash(password)
        return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        with _hash_slot():
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- sessions ----------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_session(db: Database, user_id: int, days: int = SESSION_DAYS) -> str:
    """A new session of ``user_id`` for ``days``; returns its token (the cookie value), which is
    not stored. The user's expired sessions are removed on the way."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.session() as session:
        session.execute(delete(StudioSession).where(StudioSession.user_id == user_id, StudioSession.expires_at < now))
        session.add(StudioSession(token_hash=_token_hash(token), user_id=user_id, created_at=now,
                                  expires_at=now + timedelta(days=days)))
    return token


def session_user(db: Database, token: str | None) -> User | None:
    """The user of an unexpired session token, else None."""
    if not token or len(token) > 128:
        return None
    with db.session() as session:
        row = session.scalar(select(StudioSession).where(StudioSession.token_hash == _token_hash(token)))
        if row is None or row.expires_at < utcnow():
            return None
        return session.get(User, row.user_id)


def end_session(db: Database, token: str | None) -> bool:
    """End one session (sign-out); True when there was one."""
    if not token or len(token) > 128:
        return False
    with db.session() as session:
        result = session.execute(delete(StudioSession).where(StudioSession.token_hash == _token_hash(token)))
        return bool(result.rowcount)


def end_all_sessions(db: Database, user_id: int) -> int:
    """End every session of a user (e.g. after a password change); returns how many."""
    with db.session() as session:
        return int(session.execute(delete(StudioSession).where(StudioSession.user_id == user_id)).rowcount or 0)

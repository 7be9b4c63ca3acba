"""User accounts: creation and password checks.

Passwords are hashed with Argon2id (argon2-cffi, its default parameters: 64 MiB, 3 passes).
Argon2id is memory-hard, which makes guessing on GPUs expensive, and its encoded hash carries
its own salt and parameters, so they can be raised later (``authenticate`` rehashes old hashes).

Usernames: 3–32 characters of letters, digits, ``_ . -``, starting with a letter or digit.
They are stored in lower case, so ``Alice`` and ``alice`` are the same account.
"""

from __future__ import annotations

import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from moksori.store.database import Database
from moksori.store.models import User

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
MIN_PASSWORD_LENGTH = 8
# Hashing a megabyte "password" is an easy way to tie up a server.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user does not exist, so both cases take the same time."""
    return _hasher.hash("moksori-no-such-user")


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


def create_user(db: Database, username: str, password: str) -> User:
    """A new user; ValueError for a bad username or password, or a username already taken."""
    name = normalize_username(username)
    _check_password(password)
    user = User(username=name, password_hash=_hasher.hash(password))
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
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return None
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == name))
        if user is None:
            _verify(_dummy_hash(), password)
            return None
        if not _verify(user.password_hash, password):
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from moksori.store import Database, User, accounts
from moksori.store.accounts import authenticate, create_user

PASSWORD = "correct horse battery"


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap Argon2 parameters: the real ones cost a quarter second per hash, by design."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def test_create_then_authenticate_with_the_real_parameters(db: Database) -> None:
    user = create_user(db, "Jiwoo", PASSWORD)
    assert user.id is not None and user.username == "jiwoo"
    assert authenticate(db, "jiwoo", PASSWORD).id == user.id
    assert authenticate(db, "JIWOO", PASSWORD).id == user.id
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_hashes_made_with_the_old_parameters_still_work_and_are_upgraded(db: Database) -> None:
    old = PasswordHasher().hash(PASSWORD)  # argon2-cffi's defaults, which earlier versions used
    with db.session() as session:
        session.add(User(username="old-timer", password_hash=old))
    assert authenticate(db, "old-timer", PASSWORD) is not None
    with db.session() as session:
        assert session.scalar(select(User.password_hash)).startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_password_is_hashed_not_stored(fast_hashing: None, sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db  # reads the database file's bytes
    user = create_user(db, "jiwoo", PASSWORD)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    with db.session() as session:
        assert session.scalar(select(User.password_hash)) == user.password_hash
    db.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("moksori.db"))
    assert PASSWORD.encode() not in stored and b"jiwoo" in stored


def test_same_password_gets_different_salts(fast_hashing: None, db: Database) -> None:
    assert (
        create_user(db, "aaa", PASSWORD).password_hash
        != create_user(db, "bbb", PASSWORD).password_hash
    )


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("jiwoo", "wrong password"),
        ("nobody", PASSWORD),
        ("jiwoo", ""),
        ("!!", PASSWORD),
        ("jiwoo", "x" * 2000),
    ],
)
def test_wrong_credentials_fail(
    fast_hashing: None, db: Database, username: str, password: str
) -> None:
    create_user(db, "jiwoo", PASSWORD)
    assert authenticate(db, username, password) is None


def test_duplicate_username_is_a_clear_error(fast_hashing: None, db: Database) -> None:
    create_user(db, "jiwoo", PASSWORD)
    with pytest.raises(ValueError, match="already taken"):
        create_user(db, "JiWoo", "another password")
    with db.session() as session:
        assert session.query(User).count() == 1


@pytest.mark.parametrize(
    "username", ["", "ab", "a" * 33, "has space", "-dash", "slash/y", "한글이름", None]
)
def test_bad_usernames_are_refused(fast_hashing: None, db: Database, username: object) -> None:
    with pytest.raises(ValueError, match="username"):
        create_user(db, username, PASSWORD)


@pytest.mark.parametrize(
    ("password", "reason"), [("short", "too short"), ("x" * 1025, "too long"), (None, "too short")]
)
def test_bad_passwords_are_refused(
    fast_hashing: None, db: Database, password: object, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        create_user(db, "jiwoo", password)


def test_weak_hash_parameters_are_upgraded_on_login(fast_hashing: None, db: Database) -> None:
    user = create_user(db, "jiwoo", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with db.session() as session:
        session.get(User, user.id).password_hash = weak
    assert authenticate(db, "jiwoo", PASSWORD) is not None
    with db.session() as session:
        assert session.get(User, user.id).password_hash != weak
    assert authenticate(db, "jiwoo", PASSWORD) is not None

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moksori.store import Database
from moksori.store.keys import (
    create_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)


def test_created_key_verifies_and_marks_last_use(db: Database) -> None:
    key, plaintext = create_api_key(db, "studio", rate_limit_per_minute=30)
    assert plaintext.startswith("mk_") and len(plaintext) == 35
    assert key.prefix == plaintext[:8] and key.last_used_at is None
    verified = verify_api_key(db, plaintext)
    assert verified is not None and verified.id == key.id
    assert verified.rate_limit_per_minute == 30
    assert abs(verified.last_used_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert list_api_keys(db)[0].last_used_at == verified.last_used_at


def test_keys_are_random(db: Database) -> None:
    plaintexts = {create_api_key(db, f"k{i}")[1] for i in range(20)}
    assert len(plaintexts) == 20


@pytest.mark.parametrize("wrong", ["", "mk_", "not-a-key", "mk_" + "A" * 32, None, 42])
def test_wrong_keys_are_refused(db: Database, wrong: object) -> None:
    create_api_key(db, "real")
    assert verify_api_key(db, wrong) is None


def test_key_with_right_prefix_but_wrong_rest_is_refused(db: Database) -> None:
    _, plaintext = create_api_key(db, "real")
    tampered = plaintext[:-1] + ("a" if plaintext[-1] != "a" else "b")
    assert verify_api_key(db, tampered) is None


def test_revoked_key_no_longer_verifies(db: Database) -> None:
    key, plaintext = create_api_key(db, "old")
    _, other_plaintext = create_api_key(db, "new")
    revoked = revoke_api_key(db, key.id)
    assert revoked.revoked_at is not None
    assert verify_api_key(db, plaintext) is None
    assert verify_api_key(db, other_plaintext) is not None


def test_revoke_by_prefix_and_by_id_string(db: Database) -> None:
    first, first_plain = create_api_key(db, "a")
    second, second_plain = create_api_key(db, "b")
    assert revoke_api_key(db, first.prefix).id == first.id
    assert revoke_api_key(db, str(second.id)).id == second.id
    assert verify_api_key(db, first_plain) is None and verify_api_key(db, second_plain) is None


def test_revoking_twice_keeps_the_first_time(db: Database) -> None:
    key, _ = create_api_key(db, "a")
    first = revoke_api_key(db, key.id).revoked_at
    assert revoke_api_key(db, key.id).revoked_at == first


@pytest.mark.parametrize("unknown", [999, "mk_zzzzz"])
def test_revoking_an_unknown_key_names_it(db: Database, unknown: int | str) -> None:
    with pytest.raises(LookupError, match=str(unknown)):
        revoke_api_key(db, unknown)


def test_list_shows_every_key_with_its_state(db: Database) -> None:
    a, _ = create_api_key(db, "a")
    create_api_key(db, "b", rate_limit_per_minute=5)
    revoke_api_key(db, a.id)
    listed = list_api_keys(db)
    assert [(k.name, k.revoked_at is not None, k.rate_limit_per_minute) for k in listed] == [
        ("a", True, 60),
        ("b", False, 5),
    ]


def test_bad_arguments_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="name"):
        create_api_key(db, "  ")
    with pytest.raises(ValueError, match="rate_limit"):
        create_api_key(db, "x", rate_limit_per_minute=0)


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with Database(path) as db:
        key, plaintext = create_api_key(db, "secret")
        assert verify_api_key(db, plaintext) is not None
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys.db"))
    assert plaintext.encode() not in stored
    assert plaintext[8:].encode() not in stored  # not even the secret part
    # ...while the search does see what the database holds.
    assert key.key_hash.encode() in stored


def test_concurrent_verification_from_threads(db: Database) -> None:
    # The server verifies keys from a thread pool; every check also writes last_used_at.
    keys = [create_api_key(db, f"k{i}")[1] for i in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda k: verify_api_key(db, k), keys * 25))
    assert all(r is not None for r in results)
    assert all(k.last_used_at is not None for k in list_api_keys(db))

"""API keys: when they are required, what a key grants, rate limits and private voices."""

from __future__ import annotations

import pytest

from moksori.store import Database, Voice
from moksori.store.accounts import create_user
from moksori.store.keys import create_api_key, revoke_api_key


@pytest.fixture
def keyed(make_client, db_url):
    """A client with keys required, the database and one valid key (10 requests a minute)."""
    database = Database(db_url)
    _, plaintext = create_api_key(database, "test", rate_limit_per_minute=10)
    client = make_client(db_url=db_url, require_api_keys=True)
    yield client, database, plaintext
    database.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_on_by_default_only_off_loopback(make_client, db_url) -> None:
    assert make_client(db_url=db_url, require_api_keys=None, host="127.0.0.1").get("/voices").status_code == 200
    assert make_client(db_url=db_url, require_api_keys=None, host="::1").get("/voices").status_code == 200
    assert make_client(db_url=db_url, require_api_keys=None, host="0.0.0.0").get("/voices").status_code == 401


def test_missing_invalid_and_revoked_keys_get_401(keyed) -> None:
    client, database, plaintext = keyed
    cases = {
        "missing_api_key": {},
        "invalid_authorization": {"Authorization": f"Basic {plaintext}"},
        "invalid_api_key": bearer("mk_" + "x" * 32),
    }
    for code, headers in cases.items():
        response = client.get("/infer", params={"text": "안녕"}, headers=headers)
        assert response.status_code == 401, code
        assert response.json()["error"]["code"] == code
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/infer", params={"text": "안녕"}, headers=bearer(plaintext)).status_code == 200
    revoke_api_key(database, plaintext[:8])
    response = client.get("/infer", params={"text": "안녕"}, headers=bearer(plaintext))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_health_is_open_and_everything_else_needs_a_key(keyed) -> None:
    client, _, plaintext = keyed
    assert client.get("/health").status_code == 200
    for method, path, body in [("GET", "/voices", None), ("GET", "/metrics", None),
                               ("POST", "/v1/audio/speech", {"input": "안녕"}), ("POST", "/synthesize", {"text": "안녕"})]:
        assert client.request(method, path, json=body).status_code == 401, path
        assert client.request(method, path, json=body, headers=bearer(plaintext)).status_code == 200, path


def test_rate_limit_gives_429_with_retry_after(make_client, db_url) -> None:
    database = Database(db_url)
    _, slow_key = create_api_key(database, "slow", rate_limit_per_minute=2)
    _, other_key = create_api_key(database, "other", rate_limit_per_minute=2)
    client = make_client(db_url=db_url, require_api_keys=True)
    statuses = [client.get("/infer", params={"text": "안녕"}, headers=bearer(slow_key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = client.get("/infer", params={"text": "안녕"}, headers=bearer(slow_key))
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 30  # one token every 30 s
    assert "2 requests a minute" in response.json()["error"]["message"]
    # Buckets are per key.
    assert client.get("/infer", params={"text": "안녕"}, headers=bearer(other_key)).status_code == 200
    database.dispose()


def test_private_voice_is_seen_and_used_only_with_its_owners_key(make_client, db_url, voices_dir) -> None:
    database = Database(db_url)
    alice = create_user(database, "alice", "correct horse battery")
    bob = create_user(database, "bob", "correct horse battery")
    with database.session() as session:
        row = Voice(name="tiny", language="ko", owner_id=alice.id, is_private=True, bundle_path=str(voices_dir / "tiny"))
        session.add(row)
    _, alice_key = create_api_key(database, "alice", owner_id=alice.id)
    _, bob_key = create_api_key(database, "bob", owner_id=bob.id)
    client = make_client(db_url=db_url, require_api_keys=True)

    alice_voices = client.get("/voices", headers=bearer(alice_key)).json()["voices"]
    assert [(v["id"], v["private"]) for v in alice_voices] == [(str(row.id), True)]
    assert client.get("/voices", headers=bearer(bob_key)).json()["voices"] == []
    ok = client.get("/infer", params={"text": "안녕", "voice": str(row.id)}, headers=bearer(alice_key))
    assert ok.status_code == 200
    for voice in (str(row.id), "tiny"):
        denied = client.get("/infer", params={"text": "안녕", "voice": voice}, headers=bearer(bob_key))
        assert denied.status_code == 404, voice
    database.dispose()


def test_with_keys_off_a_valid_key_still_identifies_its_owner(make_client, db_url, voices_dir) -> None:
    database = Database(db_url)
    alice = create_user(database, "alice", "correct horse battery")
    with database.session() as session:
        session.add(Voice(name="secret", language="ko", owner_id=alice.id, is_private=True, bundle_path=str(voices_dir / "tiny")))
    _, alice_key = create_api_key(database, "alice", owner_id=alice.id)
    client = make_client(db_url=db_url, require_api_keys=False)
    assert client.get("/voices").json()["voices"] == []
    assert client.get("/voices", headers=bearer("sk-whatever")).json()["voices"] == []
    # A proxy's Basic auth passed on (nginx auth_basic does) is not a key either: ignored, not a 401.
    basic = client.get("/voices", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 200 and basic.json()["voices"] == [], basic.text
    assert [v["name"] for v in client.get("/voices", headers=bearer(alice_key)).json()["voices"]] == ["secret"]
    response = client.get("/infer", params={"text": "안녕", "voice": "secret"}, headers=bearer(alice_key))
    assert response.status_code == 200 and response.headers["x-voice"] == "secret"
    database.dispose()

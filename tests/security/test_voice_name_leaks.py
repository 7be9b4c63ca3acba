"""Issue 14.6: private voice names leaked through /health (``loaded_voices``, no key needed) and
through /metrics labels to every other key."""

from __future__ import annotations

import json
import shutil

import pytest

from moksori.bench.serve import build_tiny_voice
from moksori.store import Database, User, Voice
from moksori.store.keys import create_api_key

SECRET = "alices-secret-voice"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    return build_tiny_voice(tmp_path_factory.mktemp("bundles") / "tiny", name="tiny")


@pytest.fixture
def server(make_site, tiny_bundle):
    """A keys-required server with a public operator voice and Alice's private voice (its
    bundle's own voice.json name is the secret too); keys for Alice and Bob."""
    site = make_site()
    shutil.copytree(tiny_bundle, site.voices_dir / "public")
    shutil.copytree(tiny_bundle, site.voices_dir / "private")
    meta = json.loads((site.voices_dir / "private" / "voice.json").read_text())
    (site.voices_dir / "private" / "voice.json").write_text(json.dumps({**meta, "name": SECRET}))
    site.client()  # creates the database
    database = Database(site.db_url)
    with database.session() as session:
        alice, bob = User(username="alice", password_hash="x"), User(username="bob", password_hash="x")
        session.add_all([alice, bob])
        session.flush()
        session.add(Voice(name=SECRET, language="ko", owner_id=alice.id, is_private=True,
                          bundle_path=str(site.voices_dir / "private")))
        alice_id, bob_id = alice.id, bob.id
    _, alice_key = create_api_key(database, "alice", owner_id=alice_id)
    _, bob_key = create_api_key(database, "bob", owner_id=bob_id)
    database.dispose()
    client = site.client(require_api_keys=True)
    for key, voice in ((alice_key, SECRET), (bob_key, "tiny")):
        response = client.get("/infer", params={"text": "안녕", "voice": voice}, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
    return client, alice_key, bob_key


def test_health_names_no_private_voice(server):
    client, _, _ = server
    body = client.get("/health").json()  # no key
    assert SECRET not in str(body)
    assert body["loaded_voices"] == ["tiny"] and body["loaded_private_voices"] == 1


def test_metrics_name_no_private_voice(server):
    client, _, bob_key = server
    text = client.get("/metrics", headers={"Authorization": f"Bearer {bob_key}"}).text
    assert SECRET not in text
    assert 'moksori_audio_seconds_total{voice="tiny"}' in text
    assert 'moksori_audio_seconds_total{voice="(private)"}' in text

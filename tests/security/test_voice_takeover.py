"""Issue 14.2, voice takeover: a studio user's trained public voice named like the shipped or an
operator voice must not shadow it, and must never become the server's default voice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from moksori.bench.serve import build_tiny_voice
from moksori.store import Database, Voice
from moksori.voices import DEFAULT_VOICE_NAME, default_voice_available, default_voice_path


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    return build_tiny_voice(tmp_path_factory.mktemp("bundles") / "tiny", name="tiny")


def trained_studio_voice(site, bundle: Path, name: str, owner_id: int | None = None, private: bool = False) -> int:
    """What a finished studio training run leaves: a row with bundle_path studio-<id> and the
    bundle there, its voice.json named after the voice."""
    database = Database(site.db_url)
    with database.session() as session:
        row = Voice(name=name, language="ko", owner_id=owner_id, is_private=private)
        session.add(row)
        session.flush()
        row.bundle_path = f"studio-{row.id}"
        voice_id = row.id
    database.dispose()
    target = site.voices_dir / f"studio-{voice_id}"
    shutil.copytree(bundle, target)
    meta = json.loads((target / "voice.json").read_text())
    (target / "voice.json").write_text(json.dumps({**meta, "name": name}))
    return voice_id


def _operator_voice(site, bundle: Path, folder: str = "operator") -> None:
    shutil.copytree(bundle, site.voices_dir / folder)


@pytest.mark.skipif(not default_voice_available(), reason="the shipped voice is not in this checkout")
def test_studio_voice_named_ko_default_does_not_shadow_the_shipped_voice(make_site, tiny_bundle):
    site = make_site()
    site.client()  # creates the database
    studio_id = trained_studio_voice(site, tiny_bundle, DEFAULT_VOICE_NAME)
    client = site.client(include_default_voice=True)

    listed = client.get("/voices").json()
    ids = [v["id"] for v in listed["voices"]]
    assert DEFAULT_VOICE_NAME in ids and str(studio_id) in ids  # both listed, the shipped one not hidden
    registry = client.app.state.moksori.voices
    found = registry.find(DEFAULT_VOICE_NAME, None)
    assert found.path == default_voice_path().resolve() and not found.studio
    assert registry.find(str(studio_id), None).studio  # the studio voice stays reachable by its id
    assert listed["default_voice"] == DEFAULT_VOICE_NAME  # not the studio voice


def test_studio_voice_named_like_an_operator_voice_does_not_shadow_it(make_site, tiny_bundle):
    site = make_site()
    _operator_voice(site, tiny_bundle, "announcer")
    site.client()
    trained_studio_voice(site, tiny_bundle, "announcer")
    trained_studio_voice(site, tiny_bundle, "tiny")  # the operator bundle's voice.json name
    client = site.client()
    registry = client.app.state.moksori.voices
    for wanted in ("announcer", "tiny"):
        assert registry.find(wanted, None).path == (site.voices_dir / "announcer").resolve(), wanted
    response = client.get("/infer", params={"text": "안녕", "voice": "announcer"})
    assert response.status_code == 200 and response.headers["x-voice"] == "tiny"  # the operator's bundle


def test_trained_studio_voice_never_becomes_the_default(make_site, tiny_bundle):
    site = make_site()
    site.client()
    trained_studio_voice(site, tiny_bundle, "aaa public studio voice")  # sorts before every other name
    only_studio = site.client()
    assert only_studio.get("/voices").json()["default_voice"] is None
    response = only_studio.get("/infer", params={"text": "안녕"})
    assert response.status_code == 404 and "no default voice" in response.json()["error"]["message"]

    _operator_voice(site, tiny_bundle, "operator")
    with_operator = site.client()
    assert with_operator.get("/voices").json()["default_voice"] == "operator"
    # The operator's default_voice setting is the one way to change it, and it prefers operator voices.
    configured = site.client(default_voice="tiny")
    assert configured.get("/voices").json()["default_voice"] == "operator"


def test_openai_voice_names_do_not_reach_studio_voices(make_site, tiny_bundle):
    site = make_site()
    _operator_voice(site, tiny_bundle, "operator")
    site.client()
    studio_id = trained_studio_voice(site, tiny_bundle, "alloy")
    client = site.client()
    registry = client.app.state.moksori.voices
    calls = []
    original = registry.find
    registry.find = lambda wanted, owner: calls.append(wanted) or original(wanted, owner)
    response = client.post("/v1/audio/speech", json={"input": "안녕", "voice": "alloy", "response_format": "wav"})
    assert response.status_code == 200
    assert calls[-1] is None  # 'alloy' fell back to the operator's default, not studio voice studio_id
    assert registry.find(None, None).id == "operator" and str(studio_id) != "operator"


def test_orphaned_studio_bundle_is_not_served_as_an_operator_voice(make_site, tiny_bundle):
    site = make_site()
    shutil.copytree(tiny_bundle, site.voices_dir / "studio-999")  # no row: e.g. left by a crash
    client = site.client()
    assert client.get("/voices").json()["voices"] == []


@pytest.mark.parametrize("name", ["ko_default", "KO_DEFAULT", "operator", "tiny", "alloy", "Nova", "42", "studio-7"])
def test_studio_refuses_reserved_voice_names(make_site, tiny_bundle, sec, name):
    site = make_site()
    _operator_voice(site, tiny_bundle, "operator")
    client = site.client()
    response = client.post("/api/studio/voices", json={"name": name, "language": "ko"})
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "voice_name_reserved"
    assert sec.new_voice(client, "지민")  # an ordinary name still works

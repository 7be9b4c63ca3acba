"""Settings from the environment, the app factory, key management commands."""

from __future__ import annotations

import pytest

from moksori.server.run import app_from_env, keys_create, keys_list, keys_revoke
from moksori.server.settings import ServerSettings, is_loopback


def test_settings_survive_the_environment_round_trip(tmp_path) -> None:
    settings = ServerSettings(voices_dir=tmp_path, default_voice="tiny", db_url=None, require_api_keys=True,
                              max_concurrency=3, queue_timeout_s=2.5, synthesis_threads=None)
    assert ServerSettings.from_env(settings.to_env()) == settings
    assert ServerSettings.from_env({}) == ServerSettings()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="MOKSORI_SERVER_MAX_QUEUE"):
        ServerSettings.from_env({"MOKSORI_SERVER_MAX_QUEUE": "lots"})
    with pytest.raises(ValueError, match="REQUIRE_API_KEYS"):
        ServerSettings.from_env({"MOKSORI_SERVER_REQUIRE_API_KEYS": "maybe"})
    with pytest.raises(ValueError, match="max_concurrency"):
        ServerSettings(max_concurrency=0)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("0.0.0.0", False), ("::", False), ("192.168.0.5", False), ("example.com", False)])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert ServerSettings(host=host).keys_required is not loopback


def test_app_factory_reads_the_environment(monkeypatch, voices_dir) -> None:
    settings = ServerSettings(voices_dir=voices_dir, db_url=None, max_text_chars=7, require_api_keys=False)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    app = app_from_env()
    assert app.state.moksori.settings == settings


def test_public_host_without_database_is_refused(voices_dir) -> None:
    from moksori.server import create_app

    with pytest.raises(ValueError, match="db_url"):
        create_app(ServerSettings(voices_dir=voices_dir, db_url=None, host="0.0.0.0"))


def test_key_commands(db_url, capsys) -> None:
    plaintext = keys_create(db_url, "laptop", 30)
    out = capsys.readouterr().out
    assert plaintext in out and "30 requests/minute" in out
    keys_list(db_url)
    listing = capsys.readouterr().out
    assert "laptop" in listing and plaintext[:8] in listing and "active" in listing
    assert plaintext not in listing
    keys_revoke(db_url, plaintext[:8])
    assert "revoked" in capsys.readouterr().out
    keys_list(db_url)
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(LookupError):
        keys_revoke(db_url, "mk_nope0")


def test_serve_runs_uvicorn_with_the_guarded_protocol_and_env_timeouts(monkeypatch, tmp_path, voices_dir) -> None:
    import os

    import uvicorn

    from moksori.server import run
    from moksori.server.protocol import GuardedH11Protocol, MAX_HEAD_BYTES

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))
    monkeypatch.setenv("MOKSORI_SERVER_HEADER_TIMEOUT_S", "3")
    monkeypatch.setenv("MOKSORI_SERVER_BODY_TIMEOUT_S", "7")
    for name in list(os.environ):  # serve() writes its settings into the environment for its workers
        if name.startswith("MOKSORI_SERVER_") and name not in ("MOKSORI_SERVER_HEADER_TIMEOUT_S", "MOKSORI_SERVER_BODY_TIMEOUT_S"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    run.serve(voices_dir=voices_dir, db_url=f"sqlite:///{tmp_path / 'm.db'}", workers=2)
    assert uvicorn.importer.import_from_string(seen["http"]) is GuardedH11Protocol  # by name: workers import it
    assert seen["h11_max_incomplete_event_size"] == MAX_HEAD_BYTES and seen["timeout_worker_healthcheck"] >= 30
    assert os.environ["MOKSORI_SERVER_HEADER_TIMEOUT_S"] == "3.0" and os.environ["MOKSORI_SERVER_BODY_TIMEOUT_S"] == "7.0"

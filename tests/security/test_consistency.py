"""Issue 14.13, consistency: invalid UTF-8 JSON was answered ``http_error``; prompt files with
emoji, Chinese or NUL lines were taken without a word; rate limits did not cover /voices and
/metrics. (Control characters in text: tests/security/test_no_500s.py; plain-text protocol
errors: tests/security/test_slow_and_gone_clients.py.)"""

from __future__ import annotations

import pytest

from moksori.store import Database
from moksori.store.keys import create_api_key


@pytest.mark.parametrize("path", ["/synthesize", "/v1/audio/speech", "/api/studio/voices"])
def test_json_that_is_not_utf8_is_invalid_json(make_site, path):
    client = make_site().client(host="127.0.0.1")
    response = client.post(path, content=b'{"text": "\xff\xfe", "input": "\xc3"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def _upload(client, text: bytes):
    return client.post("/api/studio/prompt-sets", data={"name": "mine", "language": "ko"},
                       files={"file": ("prompts.txt", text, "text/plain")})


def test_prompt_file_lines_a_voice_cannot_read_are_named(make_site):
    client = make_site().client(host="127.0.0.1")
    text = "안녕하세요.\n오늘 기분 최고 😀\n你好世界\n널\x00문자\n반갑습니다.\n".encode()
    response = _upload(client, text)
    assert response.status_code == 201, response.text
    body = response.json()
    warnings = "\n".join(body["warnings"])
    assert ":2:" in warnings and "U+1F600" in warnings
    assert ":3:" in warnings and "U+4F60" in warnings
    assert ":4:" in warnings and "U+0000" in warnings and "skipped" in warnings
    assert body["prompts"] == 4  # the NUL line is left out, the others can still be recorded
    prompts = client.get(f"/api/studio/prompt-sets/{body['id']}/prompts").json()["prompts"]
    assert all("\x00" not in p["text"] for p in prompts)


def test_a_prompt_file_of_only_control_characters_is_refused(make_site):
    client = make_site().client(host="127.0.0.1")
    response = _upload(client, b"\x00\x01\n\x02\n")
    assert response.status_code == 400 and "control characters" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/voices", "/metrics"])
def test_rate_limits_cover_voices_and_metrics(make_site, path):
    site = make_site()
    client = site.client(host="0.0.0.0", require_api_keys=None)
    database = Database(site.db_url)
    _, key = create_api_key(database, "limited", rate_limit_per_minute=3)
    database.dispose()
    statuses = [client.get(path, headers={"Authorization": f"Bearer {key}"}).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]


def test_an_old_database_gets_the_sessions_table_and_keeps_its_users(tmp_path):
    from sqlalchemy import inspect

    from moksori.store.accounts import authenticate, create_session, session_user

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url, migrate=False)
    old.upgrade("0001")
    with old.engine.begin() as connection:
        from argon2 import PasswordHasher

        connection.exec_driver_sql("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                                   ("alice", PasswordHasher().hash("correct horse battery"), "2026-01-01 00:00:00"))
    old.dispose()
    with Database(url) as db:
        assert "sessions" in inspect(db.engine).get_table_names()
        user = authenticate(db, "alice", "correct horse battery")
        assert session_user(db, create_session(db, user.id)).username == "alice"

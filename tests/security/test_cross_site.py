"""Issue 14.11: a page on another site could make a signed-in user's browser upload takes and
prompt sets (no Origin check); /studio could be framed (no X-Frame-Options/CSP); the database
file was created readable by everyone (0644). Also: the page showed a sign-up form on servers
where sign-up is off."""

from __future__ import annotations

import re
import stat

import pytest

from moksori.store import Database

ALICE = {"username": "alice", "password": "correct horse battery"}
EVIL = "https://evil.example"


@pytest.fixture
def signed_in(make_site):
    client = make_site().client(host="127.0.0.1")
    assert client.post("/api/studio/account/signup", json=ALICE).status_code == 201
    return client


def test_foreign_origin_cannot_change_anything(signed_in, sec):
    client = signed_in
    response = client.post("/api/studio/voices", json={"name": "csrf", "language": "ko"}, headers={"Origin": EVIL})
    assert response.status_code == 403 and response.json()["error"]["code"] == "cross_origin"
    response = client.post("/api/studio/prompt-sets", data={"name": "csrf", "language": "ko"},
                           files={"file": ("p.txt", "안녕하세요.\n".encode(), "text/plain")}, headers={"Origin": EVIL})
    assert response.status_code == 403
    # no Origin but a foreign Referer (older browsers), a sandboxed frame's "null", a login CSRF
    assert client.post("/api/studio/voices", json={"name": "x", "language": "ko"},
                       headers={"Referer": f"{EVIL}/page"}).status_code == 403
    assert client.post("/api/studio/voices", json={"name": "x", "language": "ko"},
                       headers={"Origin": "null"}).status_code == 403
    assert client.post("/api/studio/account/signin", json=ALICE, headers={"Origin": EVIL}).status_code == 403
    assert client.get("/api/studio/voices").json()["voices"] == []  # nothing was made


def test_same_origin_and_api_clients_pass(signed_in):
    client = signed_in
    own = client.post("/api/studio/voices", json={"name": "own", "language": "ko"}, headers={"Origin": "http://testserver"})
    assert own.status_code == 201
    referer = client.post("/api/studio/voices", json={"name": "ref", "language": "ko"},
                          headers={"Referer": "http://testserver/studio"})
    assert referer.status_code == 201
    plain = client.post("/api/studio/voices", json={"name": "plain", "language": "ko"})  # curl, scripts: no Origin
    assert plain.status_code == 201
    # reading is not a change: a foreign Origin on GET is not refused (cookies are SameSite=Lax anyway)
    assert client.get("/api/studio/voices", headers={"Origin": EVIL}).status_code == 200


def test_operator_can_allow_another_origin(make_site):
    client = make_site().client(host="127.0.0.1", allowed_origins="https://studio.example.org")
    ok = client.post("/api/studio/voices", json={"name": "a", "language": "ko"}, headers={"Origin": "https://studio.example.org"})
    assert ok.status_code == 201
    assert client.post("/api/studio/voices", json={"name": "b", "language": "ko"}, headers={"Origin": EVIL}).status_code == 403


def test_studio_pages_cannot_be_framed_and_load_nothing_from_elsewhere(make_site):
    client = make_site().client(host="127.0.0.1")
    for path in ("/studio", "/studio/static/studio.js"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["x-frame-options"] == "DENY"
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
        assert "http" not in policy and "*" not in policy and "unsafe-inline" not in policy
    page = client.get("/studio").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(("/", "data:", "#")) for s in sources)
    assert "<script>" not in page and " style=" not in page  # nothing inline for the policy to allow


def test_sign_up_form_only_where_sign_up_is_on(make_site):
    closed = make_site().client(host="0.0.0.0", require_api_keys=None)
    page = closed.get("/studio").text
    assert 'data-action="signup"' not in page and "or sign up" not in page
    assert 'data-action="signin"' in page
    open_ = make_site().client(host="127.0.0.1")
    assert 'data-action="signup"' in open_.get("/studio").text


def test_database_file_is_private(tmp_path):
    path = tmp_path / "fresh" / "moksori.db"
    Database(f"sqlite:///{path}").dispose()
    for file in [path, *path.parent.glob("moksori.db-*")]:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file

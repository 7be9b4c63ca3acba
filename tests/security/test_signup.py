"""Issue 14.3, open sign-up: on a server reachable from other machines, anyone could create an
account with full studio access (training included). Sign-up is off there unless the operator
turns it on."""

from __future__ import annotations

from sqlalchemy import func, select

from moksori.store import Database, User

ALICE = {"username": "alice", "password": "correct horse battery"}


def _users(site) -> int:
    database = Database(site.db_url)
    with database.session() as session:
        count = session.scalar(select(func.count()).select_from(User))
    database.dispose()
    return count


def test_signup_is_off_on_a_public_bind(make_site):
    site = make_site()
    client = site.client(host="0.0.0.0", require_api_keys=None)
    response = client.post("/api/studio/account/signup", json=ALICE)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "signup_disabled" and "MOKSORI_STUDIO_ALLOW_SIGNUP" in error["message"]
    assert "moksori_studio" not in response.cookies and _users(site) == 0
    assert client.get("/api/studio/account").json()["signup_allowed"] is False
    # and nothing in the studio works without an account
    assert client.post("/api/studio/voices", json={"name": "x", "language": "ko"}).status_code == 401


def test_signup_is_off_when_the_operator_requires_keys_on_loopback(make_site):
    client = make_site().client(host="127.0.0.1", require_api_keys=True)
    assert client.post("/api/studio/account/signup", json=ALICE).status_code == 403


def test_operator_can_turn_signup_on(make_site):
    site = make_site(allow_signup=True)
    client = site.client(host="0.0.0.0", require_api_keys=None)
    response = client.post("/api/studio/account/signup", json=ALICE)
    assert response.status_code == 201 and _users(site) == 1


def test_signup_stays_on_for_a_loopback_server(make_site):
    client = make_site().client(host="127.0.0.1", require_api_keys=None)
    assert client.post("/api/studio/account/signup", json=ALICE).status_code == 201


def test_allow_signup_reads_from_the_environment():
    from moksori.studio import StudioSettings

    assert StudioSettings.from_env({"MOKSORI_STUDIO_ALLOW_SIGNUP": "true"}).allow_signup is True
    assert StudioSettings.from_env({"MOKSORI_STUDIO_ALLOW_SIGNUP": ""}).allow_signup is None

"""Issue 14.7: ``uvicorn moksori.server.run:app_from_env --factory --host 0.0.0.0`` without
MOKSORI_SERVER_HOST served /voices, /infer and the studio with no key, because the settings
assumed 127.0.0.1. The bind address uvicorn got is unknown to the app: unknown counts as public."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import warnings

import httpx
import pytest

from moksori.server.run import app_from_env
from moksori.server.settings import ENV_PREFIX, ServerSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith((ENV_PREFIX, "MOKSORI_STUDIO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv(ENV_PREFIX + "DB_URL", f"sqlite:///{tmp_path / 'moksori.db'}")
    monkeypatch.setenv(ENV_PREFIX + "VOICES_DIR", str(tmp_path / "voices"))
    monkeypatch.setenv("MOKSORI_STUDIO_DATA_DIR", str(tmp_path / "studio"))
    return tmp_path


def test_settings_without_a_host_require_keys():
    assert ServerSettings().host is None and ServerSettings().keys_required
    assert ServerSettings.from_env({}).keys_required
    assert ServerSettings.from_env({ENV_PREFIX + "HOST": ""}).keys_required
    assert not ServerSettings(host="127.0.0.1").keys_required
    assert ServerSettings.from_env(ServerSettings(host="::1").to_env()).host == "::1"


def test_app_factory_without_host_fails_closed(clean_env):
    with TestClient(app_from_env()) as client:
        for path in ("/voices", "/metrics"):
            response = client.get(path)
            assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key", path
        assert client.get("/infer", params={"text": "안녕"}).status_code == 401
        assert client.get("/api/studio/voices").status_code == 401
        signup = client.post("/api/studio/account/signup", json={"username": "eve", "password": "long enough pw"})
        assert signup.status_code == 403 and signup.json()["error"]["code"] == "signup_disabled"
        assert client.get("/health").status_code == 200  # liveness stays open


def test_app_factory_with_loopback_host_stays_open(clean_env, monkeypatch):
    monkeypatch.setenv(ENV_PREFIX + "HOST", "127.0.0.1")
    with TestClient(app_from_env()) as client:
        assert client.get("/voices").status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_plain_uvicorn_command_requires_keys(clean_env):
    """The command of the report, as a process (bound to loopback here: the app cannot tell)."""
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "moksori.server.run:app_from_env", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/voices", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"uvicorn did not start: {process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
    finally:
        process.terminate()
        process.wait(timeout=30)

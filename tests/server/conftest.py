"""A tiny voice (random weights) built once, and factories for apps and clients around it."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moksori.bench.serve import build_tiny_voice
from moksori.server import ServerSettings, create_app

with warnings.catch_warnings():
    # Starlette suggests httpx2 for its TestClient; plain httpx is what this project installs.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    build_tiny_voice(root / "tiny", name="tiny")
    return root


@pytest.fixture
def make_client(voices_dir: Path, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: a started TestClient; defaults: the tiny voice, no database,
    keys off."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        values: dict[str, Any] = {"voices_dir": voices_dir, "db_url": None, "require_api_keys": False}
        values.update(overrides)
        client = TestClient(create_app(ServerSettings(**values)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'moksori.db'}"


class SynthesisSpy:
    """Counts Synthesizer.synthesize calls; ``block()`` makes them wait until ``release()``."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.calls = 0
        self.started = threading.Semaphore(0)
        self._gate = threading.Event()
        self._gate.set()

    def block(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def __call__(self, synthesizer: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.started.release()
        if not self._gate.wait(timeout=30):
            raise TimeoutError("the test never released the synthesis")
        return self.original(synthesizer, *args, **kwargs)


@pytest.fixture
def synthesis_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[SynthesisSpy]:
    from moksori.synthesis.synthesizer import Synthesizer

    # synthesize() goes through synthesize_report(), which the server calls: one spy sees both.
    spy = SynthesisSpy(Synthesizer.synthesize_report)
    monkeypatch.setattr(Synthesizer, "synthesize_report", lambda self, *a, **k: spy(self, *a, **k))
    yield spy
    spy.release()

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

# Tests run two per machine (pytest -n 2 on 2 cores): one intra-op thread each avoids oversubscription.
torch.set_num_threads(1)

# A developer's own global pronunciation lexicon (~/.config/moksori/lexicon.json) must not change what
# tests hear: every test process (and the commands it starts) reads an empty one of its own.
os.environ["MOKSORI_LEXICON"] = str(Path(tempfile.mkdtemp(prefix="moksori-test-lexicon-")) / "lexicon.json")

# The shared prompt corpora live beside the checkout (`../shared/data`), as in CI; MOKSORI_SHARED_DATA
# points elsewhere. Tests that read them skip, saying where they looked, when they are absent.
SHARED_DATA = Path(os.environ.get("MOKSORI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _no_background_take_judges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The studio's background take judges (Whisper, DNSMOS) cost seconds of CPU per take and change
    verdicts after the upload: off in every studio a test starts (browser servers included);
    tests/studio/test_take_judges.py installs its own."""
    from moksori.studio import judging, service

    monkeypatch.setattr(service, "BackgroundJudges", lambda enabled=True: judging.BackgroundJudges(enabled=False))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_DATA} (set MOKSORI_SHARED_DATA)")
    return SHARED_DATA


class StudioSite:
    """One server's folders (voices, database, studio data); ``client(**server)`` starts an app on
    them (several in turn = restarts). Shared by the studio and security tests."""

    def __init__(self, root: Path, **studio: Any) -> None:
        from moksori.studio import StudioSettings

        self.root = root
        self.voices_dir = root / "voices"
        self.voices_dir.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite:///{root / 'moksori.db'}"
        # The background take judges (speech recogniser, DNSMOS) cost seconds of CPU per take: off unless a test asks.
        self.studio = StudioSettings(data_dir=root / "studio", **{"judges": False, **studio})
        self.clients: list[Any] = []

    def client(self, **server: Any) -> Any:
        from moksori.server import ServerSettings, create_app
        from moksori.server.studio import configure

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        values: dict[str, Any] = {"voices_dir": self.voices_dir, "db_url": self.db_url, "require_api_keys": False}
        values.update(server)
        app = create_app(ServerSettings(**values))
        configure(app, self.studio)
        client = TestClient(app)
        client.__enter__()
        self.clients.append(client)
        return client

    def stop(self, client: Any) -> None:
        client.__exit__(None, None, None)
        self.clients.remove(client)

    def close(self) -> None:
        for client in list(self.clients):
            self.stop(client)


@pytest.fixture
def site_factory(tmp_path: Path) -> Iterator[Callable[..., StudioSite]]:
    """``site_factory(**studio_settings)``: a new :class:`StudioSite` under ``tmp_path``, closed after the test."""
    sites: list[StudioSite] = []

    def make(**studio: Any) -> StudioSite:
        site = StudioSite(tmp_path / f"site{len(sites)}", **studio)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


def _start_service(factory: Callable[[], Any]) -> Any:
    """Start a throwaway local service (moksori.services); skip when it is not installed, unless
    MOKSORI_REQUIRE_SERVICES=1 (set by .ci/run) says it must be: then the test fails."""
    from moksori.services import ServiceUnavailable, services_required

    service = factory()
    try:
        service.start()
    except ServiceUnavailable as error:
        service.stop()
        if services_required():
            pytest.fail(f"{service.name} is required (MOKSORI_REQUIRE_SERVICES=1) but could not start: {error}")
        pytest.skip(f"{service.name} not available: {error}")
    return service


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster for this test process (moksori.services.LocalPostgres)."""
    from moksori.services import LocalPostgres

    server = _start_service(LocalPostgres)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A throwaway redis-server for this test process (moksori.services.LocalRedis)."""
    from moksori.services import LocalRedis

    server = _start_service(LocalRedis)
    yield server
    server.stop()

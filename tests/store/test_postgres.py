"""What only PostgreSQL has: native column types, and migrations from separate processes.

The whole store suite already runs on PostgreSQL (the `db` fixture's second backend). Setting
MOKSORI_TEST_POSTGRES_URL to a throwaway database points these tests at that server instead of
the local cluster; they migrate it up and back down to nothing.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect

from moksori.store import Database, downgrade
from moksori.store.accounts import authenticate, create_user
from moksori.store.keys import create_api_key, revoke_api_key, verify_api_key


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if url := os.environ.get("MOKSORI_TEST_POSTGRES_URL"):
        yield url
        assert downgrade(url, "base") is None
        return
    server: Any = request.getfixturevalue("postgres_server")
    name = f"p_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


def test_timestamps_are_timestamptz_and_round_trips_work(pg_url: str) -> None:
    with Database(pg_url) as db:
        columns = {c["name"]: c["type"] for c in inspect(db.engine).get_columns("users")}
        assert columns["created_at"].timezone is True  # timestamptz, not text as on SQLite
        user = create_user(db, "pg-user", "pg password 1")
        assert authenticate(db, "pg-user", "pg password 1").id == user.id
        key, plaintext = create_api_key(db, "pg", owner_id=user.id)
        assert verify_api_key(db, plaintext).id == key.id
        revoke_api_key(db, key.id)
        assert verify_api_key(db, plaintext) is None


def test_processes_starting_together_migrate_a_new_database_once(pg_url: str) -> None:
    # Web instances and workers on other machines open the same new database at once; the
    # advisory lock makes them take turns (threads share a pool, so this uses processes).
    code = "import sys; from moksori.store import upgrade; print(upgrade(sys.argv[1]))"
    processes = [subprocess.Popen([sys.executable, "-c", code, pg_url], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0]
    assert outputs == ["0003"] * 3

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moksori.store import Database, Prompt, PromptSet, User, Voice

# Every store test that takes `db` or `empty_url` runs twice: on a SQLite file and on a real
# PostgreSQL server (a throwaway cluster started once per test process; see tests/conftest.py).
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One freshly migrated database file; creating the tables is the slow part of opening."""
    path = tmp_path_factory.mktemp("template") / "moksori.db"
    Database(path).dispose()  # disposing checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: Any) -> str:
    """A migrated PostgreSQL database that each test's database is copied from."""
    name = "moksori_template"
    Database(postgres_server.create_database(name)).dispose()  # no connection may stay open on a template
    return name


def _sqlite_db(tmp_path: Path, template: Path) -> Database:
    path = tmp_path / "moksori.db"
    shutil.copyfile(template, path)
    return Database(f"sqlite:///{path}")  # still checks the revision on open


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path) -> Iterator[Database]:
    """A migrated database private to the test: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        database = _sqlite_db(tmp_path, migrated_template)
        yield database
        database.dispose()
        return
    server = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    database = Database(server.create_database(name, template=request.getfixturevalue("postgres_template")))
    yield database
    database.dispose()
    server.drop_database(name)


@pytest.fixture
def sqlite_db(tmp_path: Path, migrated_template: Path) -> Iterator[Database]:
    """A migrated SQLite file database, for tests about SQLite itself (pragmas, the file's bytes)."""
    database = _sqlite_db(tmp_path, migrated_template)
    yield database
    database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it yet: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"e_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def voice_and_prompt(db: Database) -> tuple[int, int]:
    """Ids of one owned voice and one prompt to record it with."""
    with db.session() as session:
        user = User(username="minji", password_hash="x")
        voice = Voice(name="minji", language="ko", owner=user)
        prompt_set = PromptSet(name="ko-basic", language="ko", source="builtin")
        prompt = Prompt(position=1, text="안녕하세요.", prompt_set=prompt_set)
        session.add_all([voice, prompt])
        session.flush()
        return voice.id, prompt.id

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from moksori.store import Database, Prompt, PromptSet, User, Voice


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One freshly migrated database file; creating the tables is the slow part of opening."""
    path = tmp_path_factory.mktemp("template") / "moksori.db"
    Database(path).dispose()  # disposing checkpoints the WAL into the file
    return path


@pytest.fixture
def db(tmp_path: Path, migrated_template: Path) -> Iterator[Database]:
    """A migrated SQLite file database, private to the test."""
    path = tmp_path / "moksori.db"
    shutil.copyfile(migrated_template, path)
    database = Database(f"sqlite:///{path}")  # still checks the revision on open
    yield database
    database.dispose()


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

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from moksori.store import Base, Database, User, downgrade, upgrade

TABLES = {"users", "voices", "prompt_sets", "prompts", "recordings", "training_runs", "api_keys", "sessions",
          "lexicon_entries"}
HEAD = "0003"


def test_fresh_file_gets_every_table_at_head(db: Database) -> None:
    assert TABLES <= set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) == TABLES
    assert db.revision() == HEAD


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_comparison_notices_a_schema_that_drifted(db: Database) -> None:
    # Guards the test above: a missing index must show up as a difference.
    with db.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_api_keys_prefix"))
        context = MigrationContext.configure(connection)
        diffs = compare_metadata(context, Base.metadata)
    assert [d[0] for d in diffs] == ["add_index"]


def test_sqlite_pragmas_are_on(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_downgrade_to_base_and_up_again(empty_url: str) -> None:
    url = empty_url
    assert upgrade(url) == HEAD
    assert downgrade(url, "base") is None
    with Database(url, migrate=False) as db:
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    assert upgrade(url) == HEAD


def test_reopening_keeps_data_and_a_bare_path_means_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "moksori.db"  # parent folders are created
    with Database(path) as db, db.session() as session:
        session.add(User(username="haneul", password_hash="x"))
    with Database(f"sqlite:///{path}") as db, db.session() as session:
        assert session.query(User).one().username == "haneul"


def test_in_memory_database_survives_across_sessions() -> None:
    with Database.in_memory() as db:
        assert db.revision() == HEAD
        with db.session() as session:
            session.add(User(username="solmi", password_hash="x"))
        with db.session() as session:
            assert session.query(User).count() == 1


def test_session_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(User(username="lost", password_hash="x"))
        session.flush()
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.query(User).count() == 0


def test_databases_opened_together_on_a_new_file_migrate_it_once(empty_url: str) -> None:
    # Server workers and a trainer may all start at once on a database that does not exist yet.
    url = empty_url
    start = threading.Barrier(6)

    def open_and_check(_: int) -> str | None:
        start.wait()
        return upgrade(url)

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(open_and_check, range(6))) == [HEAD] * 6


def test_each_revision_steps_down_and_up_one_at_a_time(empty_url: str) -> None:
    assert upgrade(empty_url) == HEAD
    assert downgrade(empty_url, "0002") == "0002"
    with Database(empty_url, migrate=False) as db:
        assert "lexicon_entries" not in inspect(db.engine).get_table_names()
        assert "sessions" in inspect(db.engine).get_table_names()
    assert downgrade(empty_url, "0001") == "0001"
    with Database(empty_url, migrate=False) as db:
        assert "sessions" not in inspect(db.engine).get_table_names()
        assert "users" in inspect(db.engine).get_table_names()
    assert downgrade(empty_url, "base") is None
    assert upgrade(empty_url) == HEAD

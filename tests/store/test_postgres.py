"""The same schema and key/account round trips on PostgreSQL, when one is provided.

Set MOKSORI_TEST_POSTGRES_URL (e.g. postgresql+psycopg://user:pass@localhost/moksori_test)
to a throwaway database: the test migrates it up and back down to nothing.
"""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from moksori.store import Base, Database, downgrade
from moksori.store.accounts import authenticate, create_user
from moksori.store.keys import create_api_key, revoke_api_key, verify_api_key

URL = os.environ.get("MOKSORI_TEST_POSTGRES_URL")

pytestmark = pytest.mark.skipif(not URL, reason="MOKSORI_TEST_POSTGRES_URL is not set")


def test_postgres_schema_keys_and_accounts() -> None:
    db = Database(URL)
    try:
        with db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        user = create_user(db, "pg-user", "pg password 1")
        assert authenticate(db, "pg-user", "pg password 1").id == user.id
        key, plaintext = create_api_key(db, "pg", owner_id=user.id)
        assert verify_api_key(db, plaintext).id == key.id
        revoke_api_key(db, key.id)
        assert verify_api_key(db, plaintext) is None
    finally:
        db.dispose()
        assert downgrade(URL, "base") is None

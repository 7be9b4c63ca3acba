"""Storage: the database (SQLAlchemy, SQLite by default, PostgreSQL by URL) and files on disk.

Nothing here knows about HTTP. ``Database`` migrates its schema on open; ``keys`` and
``accounts`` hold API keys and users; ``FileStore`` writes files atomically under one root.
"""

from moksori.store.database import Database, downgrade, upgrade
from moksori.store.files import FileStore
from moksori.store.models import (
    PROMPT_SOURCES,
    RUN_STATUSES,
    ApiKey,
    Base,
    Prompt,
    PromptSet,
    Recording,
    StudioSession,
    TrainingRun,
    User,
    Voice,
)

__all__ = [
    "PROMPT_SOURCES",
    "RUN_STATUSES",
    "ApiKey",
    "Base",
    "Database",
    "FileStore",
    "Prompt",
    "PromptSet",
    "Recording",
    "StudioSession",
    "TrainingRun",
    "User",
    "Voice",
    "downgrade",
    "upgrade",
]

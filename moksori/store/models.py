"""The database tables, as SQLAlchemy 2.0 declarative models.

Every timestamp is a timezone-aware UTC ``datetime``: SQLite stores it as naive UTC text,
PostgreSQL as ``timestamptz``; either way it comes back aware (see ``UTCDateTime``).

Sessions from ``Database.session()`` do not expire objects on commit, so an object returned by
a store function keeps its column values after the session closes. Its relationships are not
loaded, though: touching one on a detached object raises ``DetachedInstanceError``; query
inside a session when you need them.

``Recording.quality`` is a plain JSON column: assign a new dict to change it, because in-place
edits of the old dict are not tracked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    validates,
)
from sqlalchemy.types import TypeDecorator

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
PROMPT_SOURCES = ("builtin", "upload")

# Fixed constraint names, so migrations name them the same on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that must be timezone-aware going in and is aware UTC coming out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite's DATETIME text has no offset; storing naive UTC keeps the ordering right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # passive_deletes="all": deleting a user must not quietly turn their voices into ownerless
    # (public) ones; the foreign key refuses the delete while they still own voices.
    voices: Mapped[list[Voice]] = relationship(back_populates="owner", passive_deletes="all")

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r})"


class Voice(Base):
    __tablename__ = "voices"
    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        # NULLs never collide in a unique constraint, so voices without an owner need their own.
        Index(
            "uq_voices_name_unowned",
            "name",
            unique=True,
            sqlite_where=text("owner_id IS NULL"),
            postgresql_where=text("owner_id IS NULL"),
        ),
        CheckConstraint("sample_rate > 0", name="sample_rate_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    is_private: Mapped[bool] = mapped_column(default=False)
    bundle_path: Mapped[str | None] = mapped_column(String(500))
    sample_rate: Mapped[int] = mapped_column(default=22050)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship(back_populates="voices")
    recordings: Mapped[list[Recording]] = relationship(
        back_populates="voice", cascade="all, delete-orphan", passive_deletes=True
    )
    training_runs: Mapped[list[TrainingRun]] = relationship(
        back_populates="voice", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Voice(id={self.id!r}, name={self.name!r}, owner_id={self.owner_id!r})"


class PromptSet(Base):
    __tablename__ = "prompt_sets"
    __table_args__ = (CheckConstraint(_in_list("source", PROMPT_SOURCES), name="source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    prompts: Mapped[list[Prompt]] = relationship(
        back_populates="prompt_set",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Prompt.position",
    )

    @validates("source")
    def _check_source(self, key: str, value: str) -> str:
        if value not in PROMPT_SOURCES:
            raise ValueError(f"prompt set source {value!r} is not one of {PROMPT_SOURCES}")
        return value

    def __repr__(self) -> str:
        return f"PromptSet(id={self.id!r}, name={self.name!r}, source={self.source!r})"


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("prompt_set_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_set_id: Mapped[int] = mapped_column(ForeignKey("prompt_sets.id", ondelete="CASCADE"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)

    prompt_set: Mapped[PromptSet] = relationship(back_populates="prompts")

    def __repr__(self) -> str:
        return f"Prompt(id={self.id!r}, set={self.prompt_set_id!r}, position={self.position!r})"


class Recording(Base):
    """One take of one prompt. ``path`` is relative to the FileStore root."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("voice_id", "prompt_id", "take"),
        CheckConstraint("take >= 1", name="take_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    voice_id: Mapped[int] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    # No cascade: a prompt set cannot be deleted while recordings still read its prompts.
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"))
    take: Mapped[int] = mapped_column(default=1)
    path: Mapped[str] = mapped_column(String(500))
    sample_rate: Mapped[int]
    duration_s: Mapped[float]
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verdict: Mapped[str] = mapped_column(String(200), default="ok")
    kept: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    voice: Mapped[Voice] = relationship(back_populates="recordings")
    prompt: Mapped[Prompt] = relationship()

    def __repr__(self) -> str:
        return (
            f"Recording(id={self.id!r}, voice_id={self.voice_id!r}, "
            f"prompt_id={self.prompt_id!r}, take={self.take!r})"
        )


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(_in_list("status", RUN_STATUSES), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    voice_id: Mapped[int] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    recipe: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(default=0.0)
    step: Mapped[int] = mapped_column(default=0)
    log_path: Mapped[str | None] = mapped_column(String(500))
    run_dir: Mapped[str | None] = mapped_column(String(500))
    checkpoint_path: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    voice: Mapped[Voice] = relationship(back_populates="training_runs")

    @validates("status")
    def _check_status(self, key: str, value: str) -> str:
        if value not in RUN_STATUSES:
            raise ValueError(f"training run status {value!r} is not one of {RUN_STATUSES}")
        return value

    @validates("progress")
    def _check_progress(self, key: str, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"training run progress {value!r} is outside 0..1")
        return value

    def __repr__(self) -> str:
        return f"TrainingRun(id={self.id!r}, voice_id={self.voice_id!r}, status={self.status!r})"


class StudioSession(Base):
    """A signed-in studio session. The cookie holds a random token and only its SHA-256 is stored
    here: signing out deletes the row, so a copied cookie stops working at once, and a copy of the
    database hands out no sessions."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"StudioSession(id={self.id!r}, user_id={self.user_id!r})"


class ApiKey(Base):
    """An API key. Only the SHA-256 of the key is stored; ``prefix`` is its first 8 characters."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("rate_limit_per_minute > 0", name="rate_limit_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(8), index=True)
    # A deleted user's keys must stop working, so they go with the user.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rate_limit_per_minute: Mapped[int] = mapped_column(default=60)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        # Never the hash: reprs end up in logs.
        return f"ApiKey(id={self.id!r}, name={self.name!r}, prefix={self.prefix!r})"


class LexiconEntry(Base):
    """One entry of a studio voice's pronunciation lexicon (moksori.text.lexicon): ``written`` is
    said as ``spoken``. Deleted with its voice."""

    __tablename__ = "lexicon_entries"
    __table_args__ = (UniqueConstraint("voice_id", "written"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    voice_id: Mapped[int] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    written: Mapped[str] = mapped_column(String(100))
    spoken: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"LexiconEntry(id={self.id!r}, voice_id={self.voice_id!r}, written={self.written!r})"

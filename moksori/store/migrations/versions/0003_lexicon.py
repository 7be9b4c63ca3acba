"""Pronunciation lexicons of studio voices (issue 16: a user lexicon, per voice).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lexicon_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("voice_id", sa.Integer(), nullable=False),
        sa.Column("written", sa.String(length=100), nullable=False),
        sa.Column("spoken", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["voice_id"], ["voices.id"], name="fk_lexicon_entries_voice_id_voices", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_lexicon_entries"),
        sa.UniqueConstraint("voice_id", "written", name="uq_lexicon_entries_voice_id_written"),
    )
    op.create_index("ix_lexicon_entries_voice_id", "lexicon_entries", ["voice_id"])


def downgrade() -> None:
    op.drop_index("ix_lexicon_entries_voice_id", table_name="lexicon_entries")
    op.drop_table("lexicon_entries")

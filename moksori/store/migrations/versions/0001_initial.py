"""Initial schema: users, voices, prompt sets and prompts, recordings, training runs, API keys.

Revision ID: 0001
Revises:
Create Date: 2025-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "voices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("is_private", sa.Boolean(), nullable=False),
        sa.Column("bundle_path", sa.String(length=500), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint("sample_rate > 0", name="ck_voices_sample_rate_positive"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_voices_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_voices"),
        sa.UniqueConstraint("owner_id", "name", name="uq_voices_owner_id_name"),
    )
    op.create_index(
        "uq_voices_name_unowned",
        "voices",
        ["name"],
        unique=True,
        sqlite_where=sa.text("owner_id IS NULL"),
        postgresql_where=sa.text("owner_id IS NULL"),
    )
    op.create_table(
        "prompt_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint("source IN ('builtin', 'upload')", name="ck_prompt_sets_source"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_prompt_sets_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_prompt_sets"),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_set_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_set_id"],
            ["prompt_sets.id"],
            name="fk_prompts_prompt_set_id_prompt_sets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.UniqueConstraint("prompt_set_id", "position", name="uq_prompts_prompt_set_id_position"),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("voice_id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("take", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("verdict", sa.String(length=200), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint("take >= 1", name="ck_recordings_take_positive"),
        sa.ForeignKeyConstraint(
            ["prompt_id"], ["prompts.id"], name="fk_recordings_prompt_id_prompts"
        ),
        sa.ForeignKeyConstraint(
            ["voice_id"], ["voices.id"], name="fk_recordings_voice_id_voices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
        sa.UniqueConstraint(
            "voice_id", "prompt_id", "take", name="uq_recordings_voice_id_prompt_id_take"
        ),
    )
    op.create_index("ix_recordings_voice_id", "recordings", ["voice_id"])
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("voice_id", sa.Integer(), nullable=False),
        sa.Column("recipe", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("log_path", sa.String(length=500), nullable=True),
        sa.Column("run_dir", sa.String(length=500), nullable=True),
        sa.Column("checkpoint_path", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="ck_training_runs_status",
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 1", name="ck_training_runs_progress_range"
        ),
        sa.ForeignKeyConstraint(
            ["voice_id"], ["voices.id"], name="fk_training_runs_voice_id_voices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_training_runs"),
    )
    op.create_index("ix_training_runs_voice_id", "training_runs", ["voice_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.CheckConstraint("rate_limit_per_minute > 0", name="ck_api_keys_rate_limit_positive"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_api_keys_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_prefix", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_training_runs_voice_id", table_name="training_runs")
    op.drop_table("training_runs")
    op.drop_index("ix_recordings_voice_id", table_name="recordings")
    op.drop_table("recordings")
    op.drop_table("prompts")
    op.drop_table("prompt_sets")
    op.drop_index("uq_voices_name_unowned", table_name="voices")
    op.drop_table("voices")
    op.drop_table("users")

"""The console: racers' models (recipes and their training jobs), browser sessions, and per-league and
per-racer training quotas.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leagues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quota_concurrent_jobs", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("quota_minutes_per_day", sa.Float(), nullable=False, server_default="60")
        )
    with op.batch_alter_table("racers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quota_concurrent_jobs", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("quota_minutes_per_day", sa.Float(), nullable=True))
    op.create_table(
        "racer_models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("league_id", sa.Integer(), sa.ForeignKey("leagues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("racer_id", sa.Integer(), sa.ForeignKey("racers.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "parent_id", sa.Integer(), sa.ForeignKey("racer_models.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("budget_minutes", sa.Float(), nullable=False),
        sa.Column("training_s", sa.Float(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_racer_models_racer_id", "racer_models", ["racer_id"])
    op.create_index("ix_racer_models_parent_id", "racer_models", ["parent_id"])
    op.create_index("ix_racer_models_status_id", "racer_models", ["status", "id"])
    op.create_index("ix_racer_models_league_id_shared", "racer_models", ["league_id", "shared"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("racer_id", sa.Integer(), sa.ForeignKey("racers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_console_sessions_token_hash"),
    )
    op.create_index("ix_console_sessions_racer_id", "console_sessions", ["racer_id"])


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("racer_models")
    with op.batch_alter_table("racers", schema=None) as batch_op:
        batch_op.drop_column("quota_minutes_per_day")
        batch_op.drop_column("quota_concurrent_jobs")
    with op.batch_alter_table("leagues", schema=None) as batch_op:
        batch_op.drop_column("quota_minutes_per_day")
        batch_op.drop_column("quota_concurrent_jobs")

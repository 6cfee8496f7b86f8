"""Virtual races: racers with tokens and aliases (and leagues that show only the aliases), races that evaluate submitted models, the submissions and
their evaluation jobs, and the league's simulator car that their laps are stored on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 23:20:00

Batch mode: SQLite cannot add a constraint to an existing table in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leagues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("public_aliases", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("racers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alias", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("token_hash", sa.String(64), nullable=True))
        batch_op.create_unique_constraint("uq_racers_token_hash", ["token_hash"])
    with op.batch_alter_table("races", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="physical"))
        batch_op.add_column(sa.Column("virtual_spec", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("max_submissions", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("counts", sa.String(8), nullable=False, server_default="best"))
    with op.batch_alter_table("cars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("simulated", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("race_id", sa.Integer(), sa.ForeignKey("races.id", ondelete="CASCADE"), nullable=False),
        sa.Column("racer_id", sa.Integer(), sa.ForeignKey("racers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("stored_path", sa.String(500), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("race_id", "racer_id", "sha256", name="uq_submissions_race_id_racer_id_sha256"),
    )
    op.create_index("ix_submissions_race_id", "submissions", ["race_id"])
    op.create_index("ix_submissions_racer_id", "submissions", ["racer_id"])
    op.create_index("ix_submissions_status_id", "submissions", ["status", "id"])


def downgrade() -> None:
    op.drop_table("submissions")
    with op.batch_alter_table("cars", schema=None) as batch_op:
        batch_op.drop_column("simulated")
    with op.batch_alter_table("races", schema=None) as batch_op:
        for column in ("counts", "max_submissions", "virtual_spec", "kind"):
            batch_op.drop_column(column)
    with op.batch_alter_table("racers", schema=None) as batch_op:
        batch_op.drop_constraint("uq_racers_token_hash", type_="unique")
        batch_op.drop_column("token_hash")
        batch_op.drop_column("alias")
    with op.batch_alter_table("leagues", schema=None) as batch_op:
        batch_op.drop_column("public_aliases")

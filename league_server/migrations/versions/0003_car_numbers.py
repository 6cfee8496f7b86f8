"""Cars carry a racing number (shown on the big screen; unique within a league, optional).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 17:00:00

Batch mode: SQLite cannot add a constraint to an existing table in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_cars_league_id_number", ["league_id", "number"])


def downgrade() -> None:
    with op.batch_alter_table("cars", schema=None) as batch_op:
        batch_op.drop_constraint("uq_cars_league_id_number", type_="unique")
        batch_op.drop_column("number")

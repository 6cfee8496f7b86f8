"""Trackside timers (registry and credentials, as cars) and the crossings they report.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:31:02.104781

New tables only (no ALTER of existing ones), so SQLite and PostgreSQL run the same statements; indexes go
through batch mode as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("league_id", sa.Integer(), nullable=False),
        sa.Column("timer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("mqtt_username", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("hmac_secret", sa.String(length=255), nullable=False),
        sa.Column("race_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["league_id"], ["leagues.id"], name=op.f("fk_timers_league_id_leagues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["race_id"], ["races.id"], name=op.f("fk_timers_race_id_races"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
        sa.UniqueConstraint("mqtt_username", name=op.f("uq_timers_mqtt_username")),
        sa.UniqueConstraint("timer_id", name=op.f("uq_timers_timer_id")),
    )
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timers_league_id"), ["league_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_timers_race_id"), ["race_id"], unique=False)

    op.create_table(
        "timer_crossings",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("timer_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("car_id", sa.String(length=64), nullable=True),
        sa.Column("race_id", sa.Integer(), nullable=True),
        sa.Column("crossed_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("lap_id", _BIGINT, nullable=True),
        sa.ForeignKeyConstraint(
            ["lap_id"], ["laps.id"], name=op.f("fk_timer_crossings_lap_id_laps"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["race_id"], ["races.id"], name=op.f("fk_timer_crossings_race_id_races"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["timer_id"],
            ["timers.timer_id"],
            name=op.f("fk_timer_crossings_timer_id_timers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timer_crossings")),
        sa.UniqueConstraint("timer_id", "run_id", "seq", name="uq_timer_crossings_timer_id_run_id_seq"),
    )
    with op.batch_alter_table("timer_crossings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_timer_crossings_pairing", ["timer_id", "race_id", "car_id", "crossed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("timer_crossings", schema=None) as batch_op:
        batch_op.drop_index("ix_timer_crossings_pairing")
    op.drop_table("timer_crossings")
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timers_race_id"))
        batch_op.drop_index(batch_op.f("ix_timers_league_id"))
    op.drop_table("timers")

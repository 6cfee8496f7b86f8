"""SQLAlchemy 2.0 models of a league: who races (teams, racers, cars), who times (trackside timers), where
and how (events, tracks, races and their rules), what happened (laps, with soft delete; timer crossings),
and what was changed or refused (audit log, dead letters), plus each car's presence.

Times: lap times in integer milliseconds (exact, as cars report them); race rules in seconds, as
`contracts.race.RaceRules` takes them. Datetimes are stored as naive UTC and read back timezone-aware (UTC).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names: Alembic batch mode on SQLite and PostgreSQL both need stable names.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SLUG = 64
NAME = 200
REASON = 500


def utc_now() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones); returned timezone-aware in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class League(Base):
    """public_aliases: public pages, feeds and exports show racers' aliases ("racer <id>" without one), never
    their names (a class of students); the organiser's admin API and audit log keep the names."""

    __tablename__ = "leagues"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG), unique=True)
    name: Mapped[str] = mapped_column(String(NAME))
    public_aliases: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    #: console quotas for every racer of the league (a racer's own values override them)
    quota_concurrent_jobs: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    quota_minutes_per_day: Mapped[float] = mapped_column(Float, default=60.0, server_default="60")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Season(Base):
    __tablename__ = "seasons"
    __table_args__ = (UniqueConstraint("league_id", "name", name="uq_seasons_league_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Track(Base):
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG), unique=True)
    name: Mapped[str] = mapped_column(String(NAME))
    length_m: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    season_id: Mapped[int | None] = mapped_column(ForeignKey("seasons.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(NAME))
    location: Mapped[str | None] = mapped_column(String(NAME))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Race(Base):
    """One race and its rules (the columns map one to one onto `contracts.race.RaceRules`).

    max_resets counts per lap (a lap with more resets is not valid); min_lap_time_s is the plausibility floor
    ingest checks; window_start/end bound when laps are accepted (None = open); status: open | closed.

    kind: "physical" (laps from cars and timers) or "virtual" (laps from the server's simulator: racers submit
    models during window_start/end, each evaluated under `virtual_spec`, a `contracts.virtual_race.
    VirtualRaceSpec`); max_submissions: per racer (None = no cap); counts: which of a racer's evaluated
    submissions ranks, "best" or "last".
    """

    __tablename__ = "races"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(NAME))
    format: Mapped[str] = mapped_column(String(32), default="time_trial")
    ranking: Mapped[str] = mapped_column(String(32), default="best_lap")
    ranked_laps: Mapped[int] = mapped_column(Integer, default=3)
    laps: Mapped[int] = mapped_column(Integer, default=3)
    offtrack_penalty_s: Mapped[float] = mapped_column(Float, default=2.0)
    max_resets: Mapped[int | None] = mapped_column(Integer)
    min_lap_time_s: Mapped[float] = mapped_column(Float, default=1.0)
    time_window_s: Mapped[float | None] = mapped_column(Float)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    kind: Mapped[str] = mapped_column(String(16), default="physical", server_default="physical")
    virtual_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    max_submissions: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[str] = mapped_column(String(8), default="best", server_default="best")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    event: Mapped[Event] = relationship(lazy="joined")
    track: Mapped[Track | None] = relationship(lazy="joined")

    @property
    def track_slug(self) -> str | None:
        """The track's slug (the name lap reports give), or None for a race that names no track."""
        return self.track.slug if self.track is not None else None


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("league_id", "name", name="uq_teams_league_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Racer(Base):
    """A person who races (a student, an employee), distinct from the cars they drive. alias: the name public
    pages show in a league that hides names. token_hash: SHA-256 of the racer's secret token (shown once at
    import; a token is 32 random bytes, so a fast hash is as good as a slow one and lets a request find its
    racer by one indexed lookup)."""

    __tablename__ = "racers"

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(NAME))
    alias: Mapped[str | None] = mapped_column(String(NAME))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: this racer's console quotas; None: the league's
    quota_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    quota_minutes_per_day: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    team: Mapped[Team | None] = relationship(lazy="joined")
    league: Mapped[League] = relationship()


class Car(Base):
    """A car and its credentials. password_hash: Mosquitto `$7$` hash; hmac_secret: the lap-signing key
    (kept, because the server verifies signatures with it). race_id: the race its laps count for.
    number: its racing number (shown on the big screen), unique within the league, optional."""

    __tablename__ = "cars"
    __table_args__ = (UniqueConstraint("league_id", "number", name="uq_cars_league_id_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    car_id: Mapped[str] = mapped_column(String(SLUG), unique=True)
    name: Mapped[str | None] = mapped_column(String(NAME))
    number: Mapped[int | None] = mapped_column(Integer)
    mqtt_username: Mapped[str] = mapped_column(String(SLUG), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    hmac_secret: Mapped[str] = mapped_column(String(255))
    racer_id: Mapped[int | None] = mapped_column(ForeignKey("racers.id", ondelete="SET NULL"))
    race_id: Mapped[int | None] = mapped_column(ForeignKey("races.id", ondelete="SET NULL"), index=True)
    #: the league's simulator car, which drives virtual races' evaluations: no broker login is made for it
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    racer: Mapped[Racer | None] = relationship(lazy="joined")


class Timer(Base):
    """A trackside timer (beam break, pressure strip) and its credentials, as `Car`: password_hash is a
    Mosquitto `$7$` hash, hmac_secret signs its crossings. race_id: the race its crossings are laps of."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), index=True)
    timer_id: Mapped[str] = mapped_column(String(SLUG), unique=True)
    name: Mapped[str | None] = mapped_column(String(NAME))
    mqtt_username: Mapped[str] = mapped_column(String(NAME), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    hmac_secret: Mapped[str] = mapped_column(String(255))
    race_id: Mapped[int | None] = mapped_column(ForeignKey("races.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class TimerCrossing(Base):
    """A crossing a timer reported, stored once per (timer_id, run_id, seq). car_id: the timer's reading of
    the car (None: unidentified; no foreign key, so a crossing is kept whatever the registry says later);
    race_id: the race the timer timed when it arrived; lap_id: the lap this crossing closed (None: the car's
    first crossing, an unidentified car, or a late crossing inside an already paired lap)."""

    __tablename__ = "timer_crossings"
    __table_args__ = (
        UniqueConstraint("timer_id", "run_id", "seq", name="uq_timer_crossings_timer_id_run_id_seq"),
        Index("ix_timer_crossings_pairing", "timer_id", "race_id", "car_id", "crossed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    timer_id: Mapped[str] = mapped_column(ForeignKey("timers.timer_id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(SLUG))
    seq: Mapped[int] = mapped_column(Integer)
    car_id: Mapped[str | None] = mapped_column(String(SLUG))
    race_id: Mapped[int | None] = mapped_column(ForeignKey("races.id", ondelete="SET NULL"))
    crossed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    lap_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("laps.id", ondelete="SET NULL")
    )


class Lap(Base):
    """One lap. lap_time_ms: clock time without penalties; penalty_ms: extra penalty a marshal added (the
    race's off-track penalty is applied by the ranking from offtrack_count, so a rules change re-ranks).
    valid=False: invalidated by a marshal (still a driven lap: it breaks consecutive runs and uses time in
    most-laps-in). deleted_at: soft-deleted (a bogus entry): ignored everywhere except the audit log."""

    __tablename__ = "laps"
    __table_args__ = (
        UniqueConstraint("car_id", "run_id", "seq", name="uq_laps_car_id_run_id_seq"),
        Index("ix_laps_race_id_car_id", "race_id", "car_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    race_id: Mapped[int] = mapped_column(ForeignKey("races.id", ondelete="CASCADE"))
    car_id: Mapped[str] = mapped_column(ForeignKey("cars.car_id", ondelete="CASCADE"))
    racer_id: Mapped[int | None] = mapped_column(ForeignKey("racers.id", ondelete="SET NULL"))
    run_id: Mapped[str] = mapped_column(String(SLUG))
    seq: Mapped[int] = mapped_column(Integer)
    lap_number: Mapped[int] = mapped_column(Integer)
    lap_time_ms: Mapped[int] = mapped_column(Integer)
    offtrack_count: Mapped[int] = mapped_column(Integer, default=0)
    reset_count: Mapped[int] = mapped_column(Integer, default=0)
    penalty_ms: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(16))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    raw_payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    invalid_reason: Mapped[str | None] = mapped_column(String(REASON))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_reason: Mapped[str | None] = mapped_column(String(REASON))


class Submission(Base):
    """A model a racer submitted to a virtual race, and its evaluation job.

    The upload is stored once by its SHA-256 (`stored_path`, relative to the server's data folder); the same
    file from the same racer in the same race is the same submission. status: queued -> running -> finished,
    or failed with `reason`; attempts: times a worker started it (a job running when the server stopped runs
    again once). outcome: the job's `EvaluationOutcome` (laps in seconds), whose laps are also stored as
    `Lap` rows (source "sim") on the league's simulator car."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("race_id", "racer_id", "sha256", name="uq_submissions_race_id_racer_id_sha256"),
        Index("ix_submissions_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    race_id: Mapped[int] = mapped_column(ForeignKey("races.id", ondelete="CASCADE"), index=True)
    racer_id: Mapped[int] = mapped_column(ForeignKey("racers.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    stored_path: Mapped[str] = mapped_column(String(REASON))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RacerModel(Base):
    """A model a racer made in the console: its recipe (`contracts.recipe.Recipe` as JSON) and its training job.

    status: draft (not trained yet) -> queued -> running -> finished | failed (with `reason`) | stopped (the
    racer stopped it; what it learned was exported). parent_id: the model it was remixed from; shared: its
    recipe is in the league's gallery (readable by the league's racers). budget_minutes: the training time the
    job may use (charged to the racer's daily quota while queued or running); training_s: what it used.
    progress: the latest `TrainingProgress`; outcome: the job's `TrainingOutcome`."""

    __tablename__ = "racer_models"
    __table_args__ = (
        Index("ix_racer_models_status_id", "status", "id"),
        Index("ix_racer_models_league_id_shared", "league_id", "shared"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"))
    racer_id: Mapped[int] = mapped_column(ForeignKey("racers.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("racer_models.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(NAME))
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    status: Mapped[str] = mapped_column(String(16), default="draft")
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    budget_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    training_s: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    racer: Mapped[Racer] = relationship(lazy="joined")


class ConsoleSession(Base):
    """A racer signed in to the console in a browser: the cookie's SHA-256 (the cookie itself is never
    stored), the CSRF token its pages send back, and when it expires."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    racer_id: Mapped[int] = mapped_column(ForeignKey("racers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    racer: Mapped[Racer] = relationship(lazy="joined")


class AuditLog(Base):
    """Every edit an admin (API or CLI) made: who, what, why, and the changed fields before/after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(NAME))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(SLUG))
    reason: Mapped[str | None] = mapped_column(String(REASON))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DeadLetter(Base):
    """A broker message ingest refused, kept verbatim (bytes: it may not even be UTF-8) with the reason."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)


class CarPresence(Base):
    """A car's last status (retained status topic / last will). No foreign key: presence of a car the
    registry does not know yet is still worth showing to an operator."""

    __tablename__ = "car_presence"

    car_id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str | None] = mapped_column(String(SLUG))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

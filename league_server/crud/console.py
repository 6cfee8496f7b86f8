"""The console in the database: racers' models (a recipe and its training job), quotas, sharing and remixes.

    model = create_model(session, racer, recipe)           # a draft
    queue_training(session, model)                         # QuotaError when the racer is over a quota
    model = claim_next_training(session)                   # queued -> running (one worker wins a job)
    record_progress(session, model.id, line)               # the latest TrainingProgress
    finish_training(session, model.id, outcome, failure)   # finished | failed | stopped
    copy = remix(session, racer, shared_model)             # a draft copy whose parent is that model

Who sees what: a racer sees their own models and the shared models of their league; only the owner changes a
model. `visible_model` answers 404 for anything else, so another racer's private model is not even confirmed
to exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from contracts.recipe import Recipe, RemixedFrom
from league_server.crud.virtual import claim_oldest_queued
from league_server.errors import ConflictError, NotFoundError
from league_server.models import Race, Racer, RacerModel, Submission, utc_now

#: a training job is started at most this often: once, and once more after the server stopped while it ran
MAX_ATTEMPTS = 2
ACTIVE = ("queued", "running")


class QuotaError(ConflictError):
    """Training that would take a racer over a quota the organiser set (names the quota and the figures)."""


class NotDraftError(ConflictError):
    """A change only a draft (a model not trained yet) accepts."""


@dataclass(frozen=True)
class Quota:
    """What one racer may use: training jobs queued or running at once, minutes of training per UTC day."""

    concurrent_jobs: int
    minutes_per_day: float


@dataclass(frozen=True)
class Usage:
    """What one racer uses now: jobs queued or running, minutes of training charged today (UTC)."""

    active_jobs: int
    minutes_today: float


def quota_of(racer: Racer) -> Quota:
    league = racer.league
    return Quota(
        racer.quota_concurrent_jobs
        if racer.quota_concurrent_jobs is not None
        else league.quota_concurrent_jobs,
        racer.quota_minutes_per_day
        if racer.quota_minutes_per_day is not None
        else league.quota_minutes_per_day,
    )


def usage_of(session: Session, racer: Racer, now: datetime | None = None) -> Usage:
    """Jobs queued or running, and minutes charged since UTC midnight: a queued or running job is charged its
    whole budget (so a racer cannot queue past the quota), an ended one what it used (at most its budget)."""
    now = now or utc_now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = session.execute(
        select(RacerModel.status, RacerModel.budget_minutes, RacerModel.training_s).where(
            RacerModel.racer_id == racer.id, RacerModel.queued_at >= midnight
        )
    ).all()
    active = session.scalar(
        select(func.count()).where(RacerModel.racer_id == racer.id, RacerModel.status.in_(ACTIVE))
    )
    minutes = sum(
        budget if status in ACTIVE else min(budget, (used_s or 0.0) / 60.0) for status, budget, used_s in rows
    )
    return Usage(int(active or 0), round(minutes, 2))


def set_quota(
    session: Session, target: Any, *, concurrent_jobs: int | None = None, minutes_per_day: float | None = None
) -> None:
    """Set a league's (or one racer's) quotas; a value left None is unchanged."""
    if concurrent_jobs is not None:
        if concurrent_jobs < 0:
            raise ConflictError(f"concurrent_jobs: expected 0 or more, got {concurrent_jobs}")
        target.quota_concurrent_jobs = concurrent_jobs
    if minutes_per_day is not None:
        if minutes_per_day < 0:
            raise ConflictError(f"minutes_per_day: expected 0 or more, got {minutes_per_day:g}")
        target.quota_minutes_per_day = minutes_per_day
    session.flush()


# ------------------------------------------------------------------------------------------------ models


def create_model(
    session: Session, racer: Racer, recipe: Recipe, *, parent: RacerModel | None = None, shared: bool = False
) -> RacerModel:
    model = RacerModel(league_id=racer.league_id, racer_id=racer.id, name=recipe.name,
                       recipe=recipe.model_dump(mode="json"), parent_id=parent.id if parent else None,
                       shared=shared, status="draft", attempts=0, budget_minutes=0.0)  # fmt: skip
    session.add(model)
    session.flush()
    return model


def recipe_of(model: RacerModel) -> Recipe:
    return Recipe.model_validate(model.recipe)


def update_draft(session: Session, model: RacerModel, recipe: Recipe) -> RacerModel:
    if model.status != "draft":
        raise NotDraftError(
            f"model {model.id} is {model.status}: only a draft can be edited (remix it instead)"
        )
    model.recipe, model.name = recipe.model_dump(mode="json"), recipe.name
    session.flush()
    return model


def visible_model(session: Session, model_id: int, racer: Racer, *, owner: bool = False) -> RacerModel:
    """The model if `racer` may see it (theirs, or shared in their league; `owner`: theirs only)."""
    model = session.get(RacerModel, model_id)
    mine = model is not None and model.racer_id == racer.id
    shared_here = model is not None and model.shared and model.league_id == racer.league_id
    if not (mine or (shared_here and not owner)):
        raise NotFoundError("model", model_id)
    return model


def list_models(session: Session, racer: Racer) -> list[RacerModel]:
    """The racer's own models, newest first."""
    return list(
        session.scalars(
            select(RacerModel).where(RacerModel.racer_id == racer.id).order_by(RacerModel.id.desc())
        )
    )


def set_shared(session: Session, model: RacerModel, shared: bool) -> RacerModel:
    model.shared = shared
    session.flush()
    return model


def remix(session: Session, racer: Racer, source: RacerModel, *, url: str | None = None) -> RacerModel:
    """A draft copy of `source`'s recipe in `racer`'s models; its recipe says where it came from."""
    recipe = recipe_of(source).model_copy(
        update={
            "name": _remix_name(source.name),
            "remixed_from": RemixedFrom(name=source.name, author=author_name(source.racer), url=url),
        }
    )
    return create_model(session, racer, recipe, parent=source)


def _remix_name(name: str) -> str:
    return (name if name.endswith("(remix)") else f"{name} (remix)")[:64]


def author_name(racer: Racer) -> str:
    """What the league sees of a racer: the alias when the league shows aliases only."""
    return racer.alias if racer.league.public_aliases and racer.alias else racer.name


def remix_counts(session: Session, model_ids: list[int]) -> dict[int, int]:
    if not model_ids:
        return {}
    rows = session.execute(
        select(RacerModel.parent_id, func.count())
        .where(RacerModel.parent_id.in_(model_ids))
        .group_by(RacerModel.parent_id)
    ).all()
    return {parent: count for parent, count in rows}


# ------------------------------------------------------------------------------------------- training


def queue_training(session: Session, model: RacerModel, now: datetime | None = None) -> RacerModel:
    """Queue the draft's training under the racer's quotas (QuotaError names the one it would break)."""
    if model.status != "draft":
        raise NotDraftError(
            f"model {model.id} is {model.status}: it was trained already (remix it to train again)"
        )
    budget = recipe_of(model).stop.minutes
    check_quota(session, model.racer, budget, now)
    model.status, model.budget_minutes, model.queued_at = "queued", budget, now or utc_now()
    model.reason = None
    session.flush()
    return model


def check_quota(session: Session, racer: Racer, budget_minutes: float, now: datetime | None = None) -> None:
    """QuotaError when queueing `budget_minutes` of training would take `racer` over a quota."""
    quota, usage = quota_of(racer), usage_of(session, racer, now)
    if usage.active_jobs >= quota.concurrent_jobs:
        raise QuotaError(
            f"quota: {usage.active_jobs} of your training jobs are queued or running and your organiser allows "
            f"{quota.concurrent_jobs} at once; wait for one to end"
        )
    if usage.minutes_today + budget_minutes > quota.minutes_per_day + 1e-9:
        left = max(0.0, quota.minutes_per_day - usage.minutes_today)
        raise QuotaError(
            f"quota: this model asks for {budget_minutes:g} min of training; you have {left:g} of your "
            f"{quota.minutes_per_day:g} min left today (UTC); shorten its stop condition or wait until tomorrow"
        )


def claim_next_training(session: Session) -> RacerModel | None:
    """The oldest queued training job, now running (attempts + 1), or None; two servers never claim the same
    job (`virtual.claim_oldest_queued`)."""
    return claim_oldest_queued(session, RacerModel)


def record_progress(session: Session, model_id: int, line: dict[str, Any]) -> None:
    values: dict[str, Any] = {"progress": line}
    if isinstance(line.get("t_s"), (int, float)):
        values["training_s"] = float(line["t_s"])
    session.execute(update(RacerModel).where(RacerModel.id == model_id).values(**values))


def finish_training(
    session: Session,
    model_id: int,
    outcome: dict[str, Any] | None,
    failure: str | None,
    *,
    stopped: bool = False,
) -> RacerModel:
    """Store how a training job ended: `failure` makes it failed (unless the racer stopped it: `stopped`)."""
    model = session.get(RacerModel, model_id)
    if model is None:
        raise NotFoundError("model", model_id)
    model.finished_at, model.outcome = utc_now(), outcome
    if outcome is not None and outcome.get("training_s") is not None:
        model.training_s = float(outcome["training_s"])
    if failure is not None:
        model.status, model.reason = ("stopped" if stopped else "failed"), failure
    else:
        model.status, model.reason = ("stopped" if stopped else "finished"), None
    session.flush()
    return model


def stop_requested(session: Session, model: RacerModel) -> RacerModel:
    """A queued job stops at once (its budget is given back); a running one is marked and stops itself."""
    if model.status == "queued":
        model.status, model.reason, model.finished_at = "stopped", "stopped before it started", utc_now()
        model.budget_minutes = 0.0
    elif model.status != "running":
        raise ConflictError(
            f"model {model.id} is {model.status}: only a queued or running job can be stopped"
        )
    session.flush()
    return model


def requeue_interrupted_training(session: Session) -> tuple[int, int]:
    """At start-up: training left running by a stopped server runs again if it has attempts left, else fails."""
    requeued = failed = 0
    for model in session.scalars(select(RacerModel).where(RacerModel.status == "running")):
        if model.attempts < MAX_ATTEMPTS:
            model.status, requeued = "queued", requeued + 1
        else:
            model.status, model.reason = "failed", "the server stopped twice while training it"
            model.finished_at, failed = utc_now(), failed + 1
    session.flush()
    return requeued, failed


# -------------------------------------------------------------------------------------------- gallery


@dataclass(frozen=True)
class RaceResult:
    race_id: int
    race: str
    best_lap_s: float | None


def race_results(session: Session, models: list[RacerModel]) -> dict[int, list[RaceResult]]:
    """Each model's finished submissions (matched by its exported file's SHA-256): the race and best lap."""
    by_sha = {
        m.outcome.get("model_sha256"): m.id for m in models if m.outcome and m.outcome.get("model_sha256")
    }
    out: dict[int, list[RaceResult]] = {m.id: [] for m in models}
    if not by_sha:
        return out
    rows = session.execute(
        select(Submission, Race.name)
        .join(Race, Race.id == Submission.race_id)
        .where(Submission.sha256.in_(list(by_sha)), Submission.status == "finished")
        .order_by(Submission.id)
    ).all()
    for sub, race_name in rows:
        laps = [lap["lap_time_s"] for lap in (sub.outcome or {}).get("laps", []) if lap.get("completed")]
        out[by_sha[sub.sha256]].append(RaceResult(sub.race_id, race_name, min(laps) if laps else None))
    return out


def gallery(session: Session, league_id: int) -> list[RacerModel]:
    """The league's shared models, newest first."""
    return list(
        session.scalars(
            select(RacerModel)
            .where(RacerModel.league_id == league_id, RacerModel.shared.is_(True))
            .order_by(RacerModel.id.desc())
        )
    )


def racer_named(session: Session, league_id: int, name: str) -> Racer | None:
    return session.scalar(select(Racer).where(Racer.league_id == league_id, Racer.name == name))

"""Virtual races in the database: the roster's racers and their tokens, submissions, and their evaluation jobs.

    tokens = import_roster(session, league_id, rows)          # (racer, token) each: the token is shown once
    sub, new = record_submission(session, race, racer, upload)  # refuses a closed window or a racer over the cap
    job = claim_next_job(session)                             # queued -> running (one worker wins a job)
    finish_job(session, job.id, outcome)                      # finished + laps (source "sim"), or failed

Jobs live in the `submissions` table, so a queued job survives a restart; `requeue_interrupted` at start-up
runs again, once, a job that was running when the server stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from contracts.race import LapRecord, RaceRules, rank_key, sortable
from contracts.virtual_race import VirtualRaceSpec
from league_server.core.security import hash_mqtt_password, new_car_credentials, new_racer_token, token_digest
from league_server.crud.laps import insert_laps_idempotent
from league_server.crud.leagues import _add, get_league
from league_server.crud.races import rules_of
from league_server.errors import ConflictError, NotFoundError, RuleError
from league_server.models import Car, Race, Racer, Submission, Team, utc_now

#: a job is started at most this often: once, and once more after the server stopped while it ran
MAX_ATTEMPTS = 2


class SubmissionWindowError(ConflictError):
    """A submission outside the race's submission window (names the window)."""


@dataclass(frozen=True)
class RosterRow:
    """One line of a roster CSV: name, team (optional), alias (optional, what public pages may show)."""

    name: str
    team: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class Upload:
    """A checked upload, already stored by its hash: what `record_submission` keeps."""

    sha256: str
    size_bytes: int
    stored_path: str
    card: dict[str, Any]


# ------------------------------------------------------------------------------------------------ racers


def import_roster(session: Session, league_id: int, rows: list[RosterRow]) -> list[tuple[Racer, str]]:
    """Racers for `rows` (teams created as needed), each with a new secret token: (racer, token), the only time
    the tokens are seen. ConflictError for a name already on the league's roster or listed twice."""
    get_league(session, league_id)
    names = [row.name for row in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConflictError(f"the roster lists {', '.join(twice)} more than once")
    taken = session.scalars(
        select(Racer.name).where(Racer.league_id == league_id, Racer.name.in_(names))
    ).all()
    if taken:
        raise ConflictError(f"already on the league's roster: {', '.join(sorted(taken))}")
    teams = _teams(session, league_id, {row.team for row in rows if row.team})
    out = []
    for row in rows:
        token = new_racer_token()
        racer = Racer(league_id=league_id, name=row.name, alias=row.alias, token_hash=token_digest(token),
                      team_id=teams[row.team].id if row.team else None)  # fmt: skip
        _add(session, racer, f"racer {row.name!r}")
        out.append((racer, token))
    return out


def _teams(session: Session, league_id: int, names: set[str]) -> dict[str, Team]:
    existing = {t.name: t for t in session.scalars(select(Team).where(Team.league_id == league_id))}
    for name in sorted(names - set(existing)):
        team = Team(league_id=league_id, name=name)
        _add(session, team, f"team {name!r}")
        existing[name] = team
    return existing


def racer_by_token(session: Session, token: str) -> Racer | None:
    """The racer whose token this is, or None."""
    return session.scalar(select(Racer).where(Racer.token_hash == token_digest(token)))


def issue_token(session: Session, racer: Racer) -> str:
    """A new token for `racer` (the old one stops working); shown once."""
    token = new_racer_token()
    racer.token_hash = token_digest(token)
    session.flush()
    return token


# --------------------------------------------------------------------------------------- virtual races


def make_virtual(
    session: Session,
    race: Race,
    spec: VirtualRaceSpec,
    *,
    max_submissions: int | None = None,
    counts: str = "best",
) -> Race:
    """Turn `race` into a virtual race evaluated under `spec` (whose rules become the race's own columns, so
    the one ranking code ranks it). RuleError for a `counts` other than best / last or a cap below 1."""
    if counts not in ("best", "last"):
        raise RuleError("counts", f"expected 'best' or 'last', got {counts!r}")
    if max_submissions is not None and max_submissions < 1:
        raise RuleError("max_submissions", f"expected at least 1 (or no cap), got {max_submissions}")
    rules = spec.race_rules()
    race.kind, race.virtual_spec = "virtual", spec.model_dump(mode="json")
    race.max_submissions, race.counts = max_submissions, counts
    race.laps, race.offtrack_penalty_s, race.max_resets = (
        rules.laps,
        rules.offtrack_penalty_s,
        rules.max_resets,
    )
    race.ranking, race.ranked_laps, race.time_window_s = rules.ranking, rules.ranked_laps, rules.time_window_s
    session.flush()
    return race


def race_spec(race: Race) -> VirtualRaceSpec:
    """The conditions a virtual race evaluates under; RuleError for a race that is not virtual."""
    if race.kind != "virtual" or race.virtual_spec is None:
        raise RuleError("kind", f"race {race.id} is not a virtual race")
    return VirtualRaceSpec.model_validate(race.virtual_spec)


def simulator_car(session: Session, league_id: int) -> Car:
    """The league's simulator car (created on first use), which virtual races' laps are stored on. Its MQTT
    password is generated and thrown away, and broker configs skip it: no one can report laps as it."""
    league = get_league(session, league_id)
    car_id = f"sim-{league.slug}"
    car = session.scalar(select(Car).where(Car.car_id == car_id))
    if car is None:
        creds = new_car_credentials(car_id)
        car = Car(league_id=league_id, car_id=car_id, name="simulator", simulated=True,
                  mqtt_username=creds.mqtt_username, password_hash=hash_mqtt_password(creds.mqtt_password),
                  hmac_secret=creds.hmac_secret)  # fmt: skip
        _add(session, car, f"simulator car {car_id!r}")
    return car


# ---------------------------------------------------------------------------------------------- submissions


def record_submission(
    session: Session, race: Race, racer: Racer, upload: Upload, *, now: datetime | None = None
) -> tuple[Submission, bool]:
    """Queue `upload` for evaluation in `race`: (submission, True), or (the earlier one, False) for the same
    file again. SubmissionWindowError outside the window; ConflictError over the race's cap (it says the cap);
    RuleError for a racer of another league or a race that is not virtual."""
    race_spec(race)
    if racer.league_id != race.event.league_id:
        raise RuleError("racer", "belongs to another league than the race")
    same = find_submission(session, race.id, racer.id, upload.sha256)
    if same is not None:
        return same, False
    check_open(race, now)
    if (
        race.max_submissions is not None
        and submission_count(session, race.id, racer.id) >= race.max_submissions
    ):
        raise ConflictError(f"the race takes at most {race.max_submissions} submissions per racer")
    sub = Submission(race_id=race.id, racer_id=racer.id, sha256=upload.sha256, size_bytes=upload.size_bytes,
                     stored_path=upload.stored_path, card=upload.card, status="queued", attempts=0)  # fmt: skip
    _add(session, sub, f"submission {upload.sha256[:12]} of racer {racer.id}")
    return sub, True


def find_submission(session: Session, race_id: int, racer_id: int, sha256: str) -> Submission | None:
    """The racer's submission of the file with this hash to this race, if they made one."""
    query = select(Submission).where(
        Submission.race_id == race_id, Submission.racer_id == racer_id, Submission.sha256 == sha256
    )
    return session.scalar(query)


def check_open(race: Race, now: datetime | None = None) -> None:
    """SubmissionWindowError unless `race` takes submissions at `now` (default: now): open, inside its window."""
    now = now or utc_now()
    start, end = race.window_start, race.window_end
    if race.status != "open":
        raise SubmissionWindowError(f"race {race.id} is {race.status}: it takes no submissions")
    if start is not None and now < start:
        raise SubmissionWindowError(f"submissions open at {start.isoformat()}")
    if end is not None and now >= end:
        raise SubmissionWindowError(f"submissions closed at {end.isoformat()}")


def submission_count(session: Session, race_id: int, racer_id: int) -> int:
    query = select(func.count()).where(Submission.race_id == race_id, Submission.racer_id == racer_id)
    return int(session.scalar(query) or 0)


def list_submissions(
    session: Session, *, race_id: int | None = None, racer_id: int | None = None
) -> list[Submission]:
    query = select(Submission).order_by(Submission.id)
    if race_id is not None:
        query = query.where(Submission.race_id == race_id)
    if racer_id is not None:
        query = query.where(Submission.racer_id == racer_id)
    return list(session.scalars(query))


# --------------------------------------------------------------------------------------------------- jobs


def claim_next_job(session: Session) -> Submission | None:
    """The oldest queued submission, now running (attempts + 1), or None (`claim_oldest_queued`)."""
    return claim_oldest_queued(session, Submission)


def claim_oldest_queued(session: Session, table: Any) -> Any | None:
    """The oldest row of `table` (a job table: id, status, attempts, started_at) whose status is queued, now
    running with one more attempt, or None. Two workers never claim the same job: the claim is one UPDATE
    guarded by the status it expects."""
    while True:
        job_id = session.scalar(select(table.id).where(table.status == "queued").order_by(table.id).limit(1))
        if job_id is None:
            return None
        claimed = session.execute(
            update(table)
            .where(table.id == job_id, table.status == "queued")
            .values(status="running", attempts=table.attempts + 1, started_at=utc_now())
        )
        if claimed.rowcount == 1:
            session.flush()
            row = session.get(table, job_id)
            session.refresh(row)
            return row


def finish_job(
    session: Session, job_id: int, outcome: dict[str, Any] | None, failure: str | None
) -> Submission:
    """Store how job `job_id` ended: `failure` (a reason) makes it failed; else its `outcome`'s laps become
    `Lap` rows (source "sim") of the racer on the league's simulator car, once (a job finished twice keeps its
    first laps)."""
    sub = session.get(Submission, job_id)
    if sub is None:
        raise NotFoundError("submission", job_id)
    sub.finished_at, sub.outcome = utc_now(), outcome
    if failure is not None:
        sub.status, sub.reason = "failed", failure
        session.flush()
        return sub
    sub.status, sub.reason = "finished", None
    race = session.get(Race, sub.race_id)
    car = simulator_car(session, race.event.league_id)
    completed = [lap for lap in outcome["laps"] if lap["completed"]]
    insert_laps_idempotent(session, [_lap_row(sub, car, n, lap) for n, lap in enumerate(completed, 1)])
    session.flush()
    return sub


def _lap_row(sub: Submission, car: Car, number: int, lap: dict[str, Any]) -> dict[str, Any]:
    """A completed lap as ingest stores one: the clock time without penalties (the ranking applies the
    race's off-track penalty and reset limit, as for a car's laps)."""
    return {
        "race_id": sub.race_id, "car_id": car.car_id, "racer_id": sub.racer_id, "run_id": run_id(sub.id),
        "seq": number, "lap_number": number, "lap_time_ms": round(lap["raw_time_s"] * 1000),
        "offtrack_count": lap["offtrack"], "reset_count": lap["resets"], "source": "sim",
        "model_sha256": sub.sha256,
    }  # fmt: skip


def run_id(submission_id: int) -> str:
    """The `run_id` of a submission's laps."""
    return f"submission-{submission_id}"


def counted_runs(session: Session, race: Race, rules: RaceRules) -> set[str]:
    """The lap runs that rank in virtual race `race` (those of `counted_submissions`)."""
    return {run_id(sub.id) for sub in counted_submissions(session, race, rules).values()}


def counted_submissions(session: Session, race: Race, rules: RaceRules) -> dict[int, Submission]:
    """racer id -> the submission that ranks in virtual race `race`: the finished one whose own laps rank
    best under `rules` (counts "best"), or the latest finished one (counts "last")."""
    finished = session.scalars(
        select(Submission)
        .where(Submission.race_id == race.id, Submission.status == "finished")
        .order_by(Submission.id)
    )
    chosen: dict[int, tuple[Any, Submission]] = {}
    for sub in finished:
        key = _submission_key(sub, rules) if race.counts == "best" else ()
        held = chosen.get(sub.racer_id)
        if held is None or race.counts == "last" or key < held[0]:
            chosen[sub.racer_id] = (key, sub)
    return {racer_id: sub for racer_id, (_, sub) in chosen.items()}


def _submission_key(sub: Submission, rules: RaceRules) -> tuple[bool, tuple[float, ...]]:
    laps = [LapRecord(**lap) for lap in (sub.outcome or {}).get("laps", [])]
    return sortable(rank_key(laps, rules) if laps else None)


@dataclass(frozen=True)
class ReplayEntry:
    """A racer's ranked evaluation, as the replay pages list it (name: as public pages show it, the alias in a
    league that shows aliases only)."""

    submission_id: int
    racer_id: int
    name: str
    best_lap_s: float | None


def replay_entries(session: Session, race: Race) -> list[ReplayEntry]:
    """Each racer's counted evaluation in virtual race `race` (the one the leaderboard ranks), fastest first."""
    runs = counted_runs(session, race, rules_of(race))
    ids = [int(run.removeprefix("submission-")) for run in runs]
    subs = session.scalars(select(Submission).where(Submission.id.in_(ids))) if ids else []
    subs = list(subs)
    from league_server.ranking import racer_names  # ranking reads this module's counted_runs

    names = racer_names(session, {sub.racer_id for sub in subs})
    out = []
    for sub in subs:
        laps = [lap["lap_time_s"] for lap in (sub.outcome or {}).get("laps", []) if lap["completed"]]
        out.append(ReplayEntry(sub.id, sub.racer_id, names[sub.racer_id][0], min(laps) if laps else None))
    return sorted(out, key=lambda e: (e.best_lap_s is None, e.best_lap_s or 0.0, e.submission_id))


def requeue_interrupted(session: Session) -> tuple[int, int]:
    """At start-up: jobs left running by a stopped server run again if they have attempts left, else fail.
    (requeued, failed)."""
    running = list(session.scalars(select(Submission).where(Submission.status == "running")))
    requeued = failed = 0
    for sub in running:
        if sub.attempts < MAX_ATTEMPTS:
            sub.status, requeued = "queued", requeued + 1
        else:
            sub.status, sub.reason, failed = (
                "failed",
                "the server stopped twice while evaluating it",
                failed + 1,
            )
            sub.finished_at = utc_now()
    session.flush()
    return requeued, failed

"""Racers' side of a virtual race: submit a model, follow its evaluation.

A racer authenticates with the token the organiser's roster import gave them (`Authorization: Bearer <token>`);
a token only ever acts as its own racer, in its own league.

    POST /api/races/{race_id}/submissions   multipart: `model` (the .onnx) and `card` (its model.json)
    GET  /api/submissions                   the caller's submissions, newest first, with status and laps

A submission is checked before it is queued (in a child process with limits, `league_server.jobs.uploads`):
what is wrong comes back as 422 with every reason; over the race's size limit is 413, over its cap or outside
its window 409, the same file again 200 with the submission it already is.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile, status
from pydantic import BaseModel

from contracts.virtual_race import Replay
from league_server.api.deps import RaceId, RacerDep, SessionDep
from league_server.api.errors import ERROR_RESPONSES
from league_server.crud import races as races_crud
from league_server.crud import virtual
from league_server.jobs.uploads import UploadError, check_upload, job_output, parse_card, store_upload
from league_server.models import Racer, Submission

router = APIRouter(prefix="/api", tags=["virtual races"])
#: bytes read from an upload at a time: a 1 GB body is refused after the limit, never held in memory
_CHUNK = 1 << 20


class SubmissionOut(BaseModel):
    id: int
    race_id: int
    sha256: str
    size_bytes: int
    status: str
    reason: str | None
    attempts: int
    laps: list[dict[str, Any]]

    @classmethod
    def of(cls, sub: Submission) -> SubmissionOut:
        laps = list((sub.outcome or {}).get("laps", [])) if sub.status == "finished" else []
        return cls(id=sub.id, race_id=sub.race_id, sha256=sub.sha256, size_bytes=sub.size_bytes,
                   status=sub.status, reason=sub.reason, attempts=sub.attempts, laps=laps)  # fmt: skip


@router.post(
    "/races/{race_id}/submissions",
    response_model=SubmissionOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERROR_RESPONSES,
    summary="Submit a model to a virtual race",
)
def submit(
    race_id: RaceId,
    request: Request,
    response: Response,
    session: SessionDep,
    racer: RacerDep,
    model: Annotated[UploadFile, File(description="the exported .onnx model")],
    card: Annotated[UploadFile, File(description="its model card, model.json")],
) -> SubmissionOut:
    race = races_crud.get_race(session, race_id)
    _same_league(race, racer)
    model_bytes = _read_limited(model, virtual.race_spec(race).limits.max_upload_bytes)
    try:
        card_dict = parse_card(_read_limited(card, 1_000_000, what="model.json"))
    except UploadError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    sub, created = submit_model(request, session, racer, race, model_bytes, card_dict)
    if not created:
        response.status_code = status.HTTP_200_OK
    return SubmissionOut.of(sub)


def submit_model(
    request: Request, session: Any, racer: Racer, race: Any, model_bytes: bytes, card_dict: dict[str, Any]
) -> tuple[Submission, bool]:
    """A racer's model (the .onnx bytes and its card) submitted to `race`: checked, stored and queued, or the
    submission the same file already is (created False). HTTPException for every refusal."""
    _same_league(race, racer)
    spec = virtual.race_spec(race)
    if len(model_bytes) > spec.limits.max_upload_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"model.onnx: over the race's limit of {spec.limits.max_upload_bytes / 1e6:.1f} MB",
        )
    data_dir = request.app.state.settings.data_dir
    known = virtual.find_submission(session, race.id, racer.id, hashlib.sha256(model_bytes).hexdigest())
    if known is not None:  # the same file again: checked and stored when it came first
        return known, False
    virtual.check_open(race)  # a closed window is said before the check's second of work
    problems = check_upload(data_dir, model_bytes, card_dict, spec)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(problems))
    sub, created = virtual.record_submission(
        session, race, racer, store_upload(data_dir, model_bytes, card_dict)
    )
    session.commit()
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if created and dispatcher is not None:
        dispatcher.wake()
    return sub, created


def _same_league(race: Any, racer: Racer) -> None:
    if race.event.league_id != racer.league_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="your token is for another league than this race"
        )


class ReplayOut(BaseModel):
    submission_id: int
    racer_id: int
    name: str
    best_lap_s: float | None


@router.get(
    "/races/{race_id}/replays", response_model=list[ReplayOut], summary="A virtual race's ranked evaluations"
)
def race_replays(race_id: RaceId, session: SessionDep) -> list[ReplayOut]:
    """Each racer's counted evaluation (the one the leaderboard ranks), fastest first: what the ghost race shows."""
    race = races_crud.get_race(session, race_id)
    return [ReplayOut(**vars(entry)) for entry in virtual.replay_entries(session, race)]


@router.get("/races/{race_id}/replays/{submission_id}", summary="One evaluation's drive, frame by frame")
def replay(race_id: RaceId, submission_id: RaceId, request: Request, session: SessionDep) -> Response:
    """The evaluation's `contracts.virtual_race.Replay` (track borders, path, speeds, laps) as JSON."""
    sub = session.get(Submission, submission_id)
    if sub is None or sub.race_id != race_id or sub.status != "finished":
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no finished evaluation {submission_id} in race {race_id}"
        )
    path = job_output(request.app.state.settings.data_dir, sub.id, "replay.json")
    try:
        body = Replay.model_validate_json(path.read_bytes()).model_dump_json()
    except (OSError, ValueError):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"evaluation {submission_id} kept no replay"
        ) from None
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/submissions", response_model=list[SubmissionOut], summary="My submissions")
def my_submissions(session: SessionDep, racer: RacerDep) -> list[SubmissionOut]:
    return [SubmissionOut.of(s) for s in reversed(virtual.list_submissions(session, racer_id=racer.id))]


def _read_limited(upload: UploadFile, max_bytes: int, *, what: str = "model.onnx") -> bytes:
    """The file's bytes; 413 as soon as it passes `max_bytes` (the rest is never read)."""
    chunks, size = [], 0
    while chunk := upload.file.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                detail=f"{what}: over the race's limit of {max_bytes / 1e6:.1f} MB",
            )
        chunks.append(chunk)
    return b"".join(chunks)

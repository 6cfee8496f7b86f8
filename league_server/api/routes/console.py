"""The console's API: racers create models from recipes, train them as jobs under quotas, watch them, download
them for the car, submit them to virtual races, and share and remix recipes.

Auth: the console's session cookie (set by `POST /console/sign-in`; unsafe requests must echo the session's
CSRF token, `league_server.core.sessions`) or `Authorization: Bearer <racer token>` (the command line). A racer
sees their own models and the shared models of their league; only the owner changes one.

Untrusted input never runs here: a recipe's reward function is checked (`POST /api/console/check`) and
trained in a child process with limits (`python -m trainer.job`, `league_server.jobs`).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel
from sqlalchemy.orm import Session

from contracts import recipe as recipes
from contracts.errors import RecipeError
from contracts.recipe import TRAINING_FILES, Recipe, RecipeCheck, TrainingJob
from league_server.api.deps import RaceId, RacerDep, SessionDep, racer_bearer, require_racer
from league_server.api.routes.submissions import SubmissionOut, submit_model
from league_server.core import sessions
from league_server.crud import console
from league_server.crud import races as races_crud
from league_server.jobs.dispatch import training_output
from league_server.jobs.engine import TRAINING, run_job
from league_server.jobs.sandbox import Limits
from league_server.models import Racer, RacerModel
from league_server.robustness import RobustnessOut, robustness_of
from league_server.web.routes import StreamCleanup, hub_stream, stream_cleanup

log = logging.getLogger(__name__)
router = APIRouter(tags=["console"])
ModelId = RaceId  # the same bounds: a positive 32-bit id
#: a recipe check runs the reward function on a few thousand realistic params in a child process
CHECK_LIMITS = Limits(cpu_s=30.0, memory_mb=2048, wall_s=60.0)
#: files of a finished model that go to the car, in the archive
ARCHIVE_ROLES = ("onnx", "int8", "card", "parity", "recipe")


ConsoleRacer = RacerDep


# ------------------------------------------------------------------------------------------ sign-in


@router.post("/console/sign-in", include_in_schema=False)
def sign_in(request: Request, session: SessionDep, token: Annotated[str, Form()] = "") -> Response:
    new = sessions.sign_in(session, token)
    if new is None:
        return RedirectResponse("/console/sign-in?error=unknown+token", status.HTTP_303_SEE_OTHER)
    session.commit()
    response = RedirectResponse("/console", status.HTTP_303_SEE_OTHER)
    secure = request.url.scheme == "https"
    response.set_cookie(**sessions.cookie_args(new.cookie, secure=secure))
    return response


@router.post("/console/sign-out", include_in_schema=False)
def sign_out(
    request: Request, session: SessionDep, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    signed_in = sessions.current_racer(request, session)
    if signed_in is not None:
        sessions.require_csrf(request, signed_in, csrf_token)
        sessions.sign_out(session, signed_in)
        session.commit()
    response = RedirectResponse("/console/sign-in", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------------------------------ reading


class ModelRef(BaseModel):
    id: int
    name: str
    author: str


class ModelOut(BaseModel):
    id: int
    name: str
    status: str
    reason: str | None
    shared: bool
    mine: bool
    owner: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    training_s: float | None
    budget_minutes: float
    track: str
    observation: str
    training_algorithm: str
    best_eval_lap_s: float | None
    laps: list[dict[str, Any]]
    parity: dict[str, Any] | None
    progress: dict[str, Any] | None
    parent: ModelRef | None
    remixes: int
    files: dict[str, str]


class ModelDetail(ModelOut):
    """One model in full; `robustness`: its exported card's robustness (`measured` False when the card has
    none), None until the model is exported."""

    recipe: dict[str, Any]
    progress_history: list[dict[str, Any]]
    robustness: RobustnessOut | None = None


def model_out(model: RacerModel, racer: Racer, parent: ModelRef | None, remixes: int) -> ModelOut:
    """What a racer sees of a model (`racer`: who asks; `parent`: what it was remixed from)."""
    recipe, outcome = model.recipe, model.outcome or {}
    finished = model.status in ("finished", "stopped") and bool(outcome.get("files"))
    base = f"/api/console/models/{model.id}"
    files = {"recipe": f"{base}/recipe.toml"}
    if finished:
        files |= {
            "archive": f"{base}/archive.zip",
            "png": f"{base}/evaluation.png",
            "replay": f"{base}/replay",
        }
    return ModelOut(
        id=model.id, name=model.name, status=model.status, reason=model.reason, shared=model.shared,
        mine=model.racer_id == racer.id, owner=console.author_name(model.racer),
        created_at=_iso(model.created_at), started_at=_iso(model.started_at), finished_at=_iso(model.finished_at),
        training_s=model.training_s, budget_minutes=model.budget_minutes or recipe["stop"]["minutes"],
        track=recipe["track"], observation=recipe["observation"],
        training_algorithm=recipe["training_algorithm"], best_eval_lap_s=outcome.get("best_eval_lap_s"),
        laps=list(outcome.get("laps", [])), parity=outcome.get("parity"), progress=model.progress,
        parent=parent, remixes=remixes, files=files,
    )  # fmt: skip


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _outs(session: Session, models: list[RacerModel], racer: Racer) -> list[ModelOut]:
    parents = {
        parent.id: ModelRef(id=parent.id, name=parent.name, author=console.author_name(parent.racer))
        for parent in (session.get(RacerModel, m.parent_id) for m in models if m.parent_id)
        if parent is not None
    }
    counts = console.remix_counts(session, [m.id for m in models])
    return [model_out(m, racer, parents.get(m.parent_id), counts.get(m.id, 0)) for m in models]


@router.get("/api/console/me", summary="Who I am, my quotas and what I use")
def me(session: SessionDep, racer: ConsoleRacer) -> dict[str, Any]:
    quota, usage = console.quota_of(racer), console.usage_of(session, racer)
    return {
        "racer": {
            "id": racer.id,
            "name": racer.name,
            "league_id": racer.league_id,
            "league": racer.league.name,
        },
        "quota": {"concurrent_jobs": quota.concurrent_jobs, "minutes_per_day": quota.minutes_per_day},
        "usage": {"running_jobs": usage.active_jobs, "minutes_today": usage.minutes_today},
    }


@router.get("/api/console/defaults", summary="A new recipe's defaults, the reward templates and the limits")
def defaults(racer: ConsoleRacer) -> dict[str, Any]:
    return {
        "recipe": Recipe().model_dump(mode="json"),
        "templates": recipes.reward_templates(),
        "limits": {
            "max_discrete_actions": recipes.MAX_DISCRETE_ACTIONS,
            "steering_limit_deg": recipes.STEERING_LIMIT_DEG,
            "speed_range_mps": list(recipes.SPEED_RANGE_MPS),
            "min_minutes": recipes.MIN_TRAINING_MINUTES,
            "max_minutes": recipes.MAX_TRAINING_MINUTES,
        },
        "observations": ["state", "camera"],
        "algorithms": ["clipped_ppo", "sac"],
    }


@router.get("/api/console/models", response_model=list[ModelOut], summary="My models, newest first")
def my_models(request: Request, session: SessionDep, racer: ConsoleRacer) -> list[ModelOut]:
    return _outs(session, console.list_models(session, racer), racer)


@router.get("/api/console/models/{model_id}", response_model=ModelDetail, summary="One model")
def one_model(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> ModelDetail:
    model = console.visible_model(session, model_id, racer)
    (out,) = _outs(session, [model], racer)
    data_dir = request.app.state.settings.data_dir
    history = _progress_history(training_output(data_dir, model.id, "progress.jsonl"))
    robustness = _robustness(training_output(data_dir, model.id, "card")) if "archive" in out.files else None
    return ModelDetail(
        **out.model_dump(), recipe=model.recipe, progress_history=history, robustness=robustness
    )


def _robustness(card_path: Path) -> RobustnessOut:
    """The exported card's robustness (`model.json`'s `robustness`); not measured when it has none or the
    card cannot be read."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the model card (%s); robustness shown as not measured", card_path, exc)
        card = None
    return RobustnessOut.of(robustness_of(card, where=str(card_path)))


def _progress_history(path: Path, max_lines: int = 2000) -> list[dict[str, Any]]:
    """The progress lines the job wrote (evenly thinned to `max_lines`)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    step = max(1, len(lines) // max_lines)
    out = []
    for line in lines[::step]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


# ------------------------------------------------------------------------------------------ checking


def _parse_recipe(body: Any) -> Recipe:
    """The request's recipe; 422 with the problems (each naming its key) when it is not one."""
    try:
        return Recipe.from_dict(body, source="recipe")
    except RecipeError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"detail": str(exc), "problems": _problems(exc)}
        ) from None


def _problems(exc: RecipeError) -> list[dict[str, Any]]:
    """RecipeError's problems as ProblemAt dicts (the whole message when it is not about a field: not TOML)."""
    found = [{"field": key, "message": message, "line": None} for key, message in exc.problems]
    return found or [{"field": "recipe", "message": str(exc), "line": None}]


#: recipe checks running at once (each is a child process): a class pressing Check together queues here
#: rather than starting a process per click
_CHECKS = threading.BoundedSemaphore(2)


def check_recipe(data_dir: Path, recipe: Recipe) -> RecipeCheck:
    """Run `python -m trainer.job --check` on the recipe in a sandboxed child process."""
    with _CHECKS:
        return _check_in_child(data_dir, recipe)


def _check_in_child(data_dir: Path, recipe: Recipe) -> RecipeCheck:
    checks = data_dir / "checks"
    checks.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=checks))
    try:
        TrainingJob(recipe=recipe).write(folder / "job.json")
        run = run_job(folder, CHECK_LIMITS, module=TRAINING, check_only=True, result="check.json")
        if run.outcome is None:
            reason = f"the check {run.sandbox.reason or 'wrote no result'}"
            return RecipeCheck(ok=False, problems=({"field": "reward_function", "message": reason},))
        return RecipeCheck.model_validate(run.outcome)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@router.post(
    "/api/console/check", response_model=RecipeCheck, summary="Check a recipe (reward function included)"
)
def check(request: Request, racer: ConsoleRacer, body: Annotated[dict[str, Any], Body()]) -> RecipeCheck:
    try:
        recipe = Recipe.from_dict(body.get("recipe"), source="recipe")
    except RecipeError as exc:
        return RecipeCheck(ok=False, problems=tuple(_problems(exc)))
    return check_recipe(request.app.state.settings.data_dir, recipe)


# ------------------------------------------------------------------------------------------ changing


class CreateIn(BaseModel):
    recipe: dict[str, Any]
    train: bool = True


def _queue(request: Request, session: Session, model: RacerModel) -> None:
    """Check the recipe (422 with the problems) and queue its training (409 over a quota)."""
    console.check_quota(
        session, model.racer, console.recipe_of(model).stop.minutes
    )  # before the check's work
    result = check_recipe(request.app.state.settings.data_dir, console.recipe_of(model))
    if not result.ok:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={
                "detail": "the recipe has problems",
                "problems": [p.model_dump() for p in result.problems],
            },
        )
    console.queue_training(session, model)
    session.commit()
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()


@router.post("/api/console/models", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def create(request: Request, session: SessionDep, racer: ConsoleRacer, body: CreateIn) -> ModelOut:
    """A new model from a recipe; `train`: check it and queue its training now (else a draft)."""
    model = console.create_model(session, racer, _parse_recipe(body.recipe))
    if body.train:
        _queue(request, session, model)  # a refused check or quota rolls the new model back too
    session.commit()
    return _outs(session, [model], racer)[0]


class EditIn(BaseModel):
    recipe: dict[str, Any]
    train: bool = False


@router.put("/api/console/models/{model_id}", response_model=ModelOut, summary="Edit a draft's recipe")
def edit(
    model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer, body: EditIn
) -> ModelOut:
    model = console.visible_model(session, model_id, racer, owner=True)
    console.update_draft(session, model, _parse_recipe(body.recipe))
    if body.train:
        _queue(request, session, model)
    session.commit()
    return _outs(session, [model], racer)[0]


@router.post("/api/console/models/{model_id}/train", response_model=ModelOut, summary="Train a draft")
def train(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> ModelOut:
    model = console.visible_model(session, model_id, racer, owner=True)
    _queue(request, session, model)
    return _outs(session, [model], racer)[0]


@router.post("/api/console/models/{model_id}/stop", response_model=ModelOut, summary="Stop training early")
def stop(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> ModelOut:
    model = console.visible_model(session, model_id, racer, owner=True)
    console.stop_requested(session, model)
    session.commit()
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if model.status == "running" and dispatcher is not None:
        dispatcher.stop_training(model.id)
    return _outs(session, [model], racer)[0]


class ShareIn(BaseModel):
    shared: bool


@router.post("/api/console/models/{model_id}/share", response_model=ModelOut, summary="Share with the league")
def share(
    model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer, body: ShareIn
) -> ModelOut:
    model = console.set_shared(
        session, console.visible_model(session, model_id, racer, owner=True), body.shared
    )
    session.commit()
    return _outs(session, [model], racer)[0]


@router.post(
    "/api/console/models/{model_id}/remix", response_model=ModelOut, status_code=status.HTTP_201_CREATED
)
def remix(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> ModelOut:
    """A draft copy of a model's recipe (mine, or shared in my league) in my models."""
    source = console.visible_model(session, model_id, racer)
    url = str(request.base_url).rstrip("/") + f"/api/recipes/{source.id}.toml"
    copy = console.remix(session, racer, source, url=url)
    session.commit()
    return _outs(session, [copy], racer)[0]


class SubmitIn(BaseModel):
    race_id: int


@router.post(
    "/api/console/models/{model_id}/submit", response_model=SubmissionOut, summary="Submit to a race"
)
def submit(
    model_id: ModelId, request: Request, response: Response, session: SessionDep, racer: ConsoleRacer,
    body: SubmitIn,
) -> SubmissionOut:  # fmt: skip
    """The model's exported files submitted to a virtual race (as `pitlane submit` would send them)."""
    model = console.visible_model(session, model_id, racer, owner=True)
    data_dir = request.app.state.settings.data_dir
    onnx, card = training_output(data_dir, model.id, "onnx"), training_output(data_dir, model.id, "card")
    if model.status not in ("finished", "stopped") or not onnx.is_file() or not card.is_file():
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"model {model.id} has no exported model yet")
    race = races_crud.get_race(session, body.race_id)
    sub, created = submit_model(
        request, session, racer, race, onnx.read_bytes(), json.loads(card.read_text(encoding="utf-8"))
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return SubmissionOut.of(sub)


# ------------------------------------------------------------------------------------------ files


def _finished_file(request: Request, model: RacerModel, role: str) -> Path:
    """A file the model's finished training job wrote; 404 when there is none."""
    path = training_output(request.app.state.settings.data_dir, model.id, role)
    if model.status not in ("finished", "stopped") or not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"model {model.id} has no {TRAINING_FILES[role]}"
        )
    return path


@router.get("/api/console/models/{model_id}/archive.zip", summary="The files the car takes, as one archive")
def archive(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> Response:
    """model.onnx, model.int8.onnx, model.json, parity.json and recipe.toml: what `pitlane drive` takes."""
    model = console.visible_model(session, model_id, racer, owner=True)
    for required in ("onnx", "card"):  # 404 unless the model was exported
        _finished_file(request, model, required)
    data_dir = request.app.state.settings.data_dir
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in (training_output(data_dir, model.id, role) for role in ARCHIVE_ROLES):
            if path.is_file():  # int8 is missing when the export kept fp32 only
                zf.write(path, path.name)
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in model.name).strip("-") or "model"
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}-{model.id}.zip"'},
    )


@router.get("/api/console/models/{model_id}/evaluation.png", summary="The evaluation's trajectory picture")
def evaluation_png(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> Response:
    return FileResponse(
        _finished_file(request, console.visible_model(session, model_id, racer), "png"),
        media_type="image/png",
    )


@router.get("/api/console/models/{model_id}/replay", summary="The evaluation's drive, frame by frame")
def replay(model_id: ModelId, request: Request, session: SessionDep, racer: ConsoleRacer) -> Response:
    path = _finished_file(request, console.visible_model(session, model_id, racer), "replay")
    return Response(path.read_bytes(), media_type="application/json")


@router.get("/api/console/models/{model_id}/recipe.toml", summary="The model's recipe as TOML")
def model_recipe(model_id: ModelId, session: SessionDep, racer: ConsoleRacer) -> Response:
    model = console.visible_model(session, model_id, racer)
    return _toml_response(model)


def _toml_response(model: RacerModel) -> Response:
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in model.name).strip("-") or "recipe"
    return Response(
        console.recipe_of(model).to_toml(),
        media_type="application/toml",
        headers={"Content-Disposition": f'inline; filename="{name}.toml"'},
    )


# ------------------------------------------------------------------------------------------ gallery


@router.get("/api/recipes", summary="The league's shared recipes, with their race results and lineage")
def gallery(request: Request, session: SessionDep, racer: ConsoleRacer) -> list[dict[str, Any]]:
    models = console.gallery(session, racer.league_id)
    outs = _outs(session, models, racer)
    results = console.race_results(session, models)
    return [
        out.model_dump(include={"id", "name", "owner", "track", "observation", "training_algorithm", "status",
                                "best_eval_lap_s", "parent", "remixes", "mine"})
        | {"author": out.owner, "races": [vars(r) for r in results.get(out.id, [])],
           "recipe": f"/api/recipes/{out.id}.toml"}
        for out in outs
    ]  # fmt: skip


@router.get("/api/recipes/{model_id}.toml", summary="A shared recipe as TOML")
def shared_recipe(model_id: ModelId, session: SessionDep, racer: ConsoleRacer) -> Response:
    return _toml_response(console.visible_model(session, model_id, racer))


class PublishIn(BaseModel):
    toml: str


@router.post("/api/recipes", status_code=status.HTTP_201_CREATED, summary="Publish a recipe to the gallery")
def publish(request: Request, session: SessionDep, racer: ConsoleRacer, body: PublishIn) -> dict[str, Any]:
    """A recipe from the command line (`pitlane recipe publish`): a shared draft in my models."""
    try:
        recipe = Recipe.from_toml(body.toml, source="recipe")
    except RecipeError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"detail": str(exc), "problems": _problems(exc)}
        ) from None
    model = console.create_model(session, racer, recipe, shared=True)
    session.commit()
    base = str(request.base_url).rstrip("/")
    return {
        "id": model.id,
        "url": f"{base}/console/models/{model.id}",
        "recipe": f"{base}/api/recipes/{model.id}.toml",
    }


# ------------------------------------------------------------------------------------------ live


def watchable_model_id(
    model_id: ModelId,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(racer_bearer)],
) -> int:
    """The model's id when the request's racer (token or session) may watch it (401/404 otherwise), checked
    with a session of its own: a stream must not hold a database session for its whole life."""
    with request.app.state.sessionmaker() as session:
        console.visible_model(session, model_id, require_racer(request, session, credentials))
    return model_id


@router.get("/api/console/models/{model_id}/events", response_class=EventSourceResponse)
async def model_events(
    model_id: Annotated[int, Depends(watchable_model_id)],
    request: Request,
    cleanup: Annotated[StreamCleanup, Depends(stream_cleanup)],
) -> AsyncIterator[ServerSentEvent]:
    """text/event-stream of a training job: `event: progress` (a TrainingProgress line, pushed as the job
    writes it) and `event: status` ({status, reason}) when it ends."""
    hub = request.app.state.console_events
    async for message in hub_stream(request, hub, model_id, cleanup, to_sse=_console_event):
        yield message


def _console_event(event: dict[str, Any]) -> ServerSentEvent:
    kind = event.get("type", "progress")
    return ServerSentEvent(event=kind, data={k: v for k, v in event.items() if k != "type"})


# ------------------------------------------------------------------------------------------ tracks


@router.get("/api/console/tracks", summary="The tracks a recipe can name, with thumbnails")
def tracks(request: Request, racer: ConsoleRacer) -> list[dict[str, Any]]:
    folder = track_catalogue(request.app.state.settings.data_dir)
    listed = json.loads((folder / "tracks.json").read_text(encoding="utf-8"))
    return [item | {"thumbnail": f"/api/console/tracks/{item['name']}.png"} for item in listed]


@router.get("/api/console/tracks/{name}.png", summary="A track's thumbnail")
def track_thumbnail(name: str, request: Request) -> Response:
    folder = track_catalogue(request.app.state.settings.data_dir)
    path = folder / f"{name}.png"
    if "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no track {name!r}")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})


_CATALOGUE_LOCK = threading.Lock()
#: seconds the track catalogue (every track's outline drawn once) may take to build
CATALOGUE_TIMEOUT_S = 300


def track_catalogue(data_dir: Path) -> Path:
    """data_dir/track-catalogue: tracks.json and a thumbnail per track, drawn once by the simulator in a child
    process (`python -m sim.tracks.catalogue`: the server never imports the simulator)."""
    folder = data_dir / "track-catalogue"
    with _CATALOGUE_LOCK:
        if not (folder / "tracks.json").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            try:
                subprocess.run([sys.executable, "-m", "sim.tracks.catalogue", str(folder)], check=True,
                               capture_output=True, timeout=CATALOGUE_TIMEOUT_S)  # fmt: skip
            except (OSError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    detail=f"the track list could not be built ({exc}; {detail.decode(errors='replace')[-300:]})",
                ) from None
    return folder

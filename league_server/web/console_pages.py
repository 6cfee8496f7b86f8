"""The console's pages: sign in, my models, create a model, watch one, the gallery; and the console's pinned
third-party files (CodeMirror, uPlot: `assets.py`) under ``/console/assets/``.

The pages are server-rendered shells; their scripts read and write the JSON API (`/api/console/...`,
league_server/api/routes/console.py). `console_router()` is included by `league_server.main.create_app`.

Every page but sign-in needs a signed-in racer (a 303 to ``/console/sign-in`` otherwise) and gets in its
template context: `racer` (models.Racer), `csrf_token` (in ``<meta name="csrf-token">``: scripts send it as
``X-CSRF-Token``), `assets_ok` (the pinned files are in place and verified), `assets_note` (why not, and the
command that fetches them), `assets` (name -> URL: codemirror_js, codemirror_css, codemirror_theme,
codemirror_python, codemirror_brackets, uplot_js, uplot_css) and `nav` (which nav link is the current page).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from contracts import recipe as recipe_contract
from league_server.api.deps import MAX_ID, SessionDep
from league_server.api.ratelimit import page_rate_limited
from league_server.core.sessions import SignedIn, current_racer
from league_server.web.assets import (
    FETCH_COMMAND,
    WEB_ASSETS_DIR,
    AssetLock,
    AssetStatus,
    ensure_assets,
    load_lock,
    shared_cache_dir,
    verify_assets,
)

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
SIGN_IN_PATH = "/console/sign-in"
ASSETS_MOUNT = "/console/assets"
#: the asset URLs carry the package version (`?v=`), so a browser may keep each file for a year
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: pages hold the session's CSRF token: never stored by a shared cache, never shown from history stale
PAGE_CACHE_CONTROL = "private, no-store"
#: the files the templates link, by the name the templates use: (package, path inside it)
ASSET_FILES = {
    "codemirror_js": ("codemirror", "lib/codemirror.js"),
    "codemirror_css": ("codemirror", "lib/codemirror.css"),
    "codemirror_theme": ("codemirror", "theme/material-darker.css"),
    "codemirror_python": ("codemirror", "mode/python/python.js"),
    "codemirror_brackets": ("codemirror", "addon/edit/matchbrackets.js"),
    "uplot_js": ("uplot", "dist/uPlot.iife.min.js"),
    "uplot_css": ("uplot", "dist/uPlot.min.css"),
}
ModelId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="model id")]
FromId = Annotated[int | None, Query(alias="from", ge=1, le=MAX_ID, description="a model to start from")]
ErrorText = Annotated[str | None, Query(max_length=300, description="why the last sign-in failed")]


# -------------------------------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class SettingField:
    """One hyperparameter as the create page shows it: DeepRacer's console label, the unit (or what kind of
    number it is), the bounds and choices from the contract, and which algorithm reads it (None: both)."""

    key: str
    label: str
    unit: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    integer: bool = False
    only: str | None = None

    @property
    def range_text(self) -> str:
        if self.choices:
            return ""
        return f"{self.minimum:g} – {self.maximum:g}"


# DeepRacer console's names for its hyperparameters, the unit of each, and the algorithm that reads it
# (contracts.recipe.DeepRacerHyperparameters: SAC reads batch_size, discount_factor, lr, num_epochs, sac_alpha).
_HYPERPARAMETER_TEXT: dict[str, tuple[str, str, str | None]] = {
    "batch_size": ("Gradient descent batch size", "samples", None),
    "num_epochs": ("Number of epochs", "passes over each batch", None),
    "lr": ("Learning rate", "per update", None),
    "discount_factor": ("Discount factor", "per step", None),
    "beta_entropy": ("Entropy", "weight", "clipped_ppo"),
    "loss_type": ("Loss type", "", "clipped_ppo"),
    "num_episodes_between_training": (
        "Experience episodes between policy updates",
        "episodes",
        "clipped_ppo",
    ),
    "sac_alpha": ("SAC alpha (α)", "weight", "sac"),
}


def hyperparameter_fields() -> list[SettingField]:
    """The create page's hyperparameter inputs, bounds and defaults read from the contract's JSON schema."""
    schema = recipe_contract.DeepRacerHyperparameters.model_json_schema()["properties"]
    fields = []
    for key, (label, unit, only) in _HYPERPARAMETER_TEXT.items():
        prop = schema[key]
        fields.append(
            SettingField(
                key=key,
                label=label,
                unit=unit,
                default=prop.get("default"),
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                choices=tuple(prop.get("enum", ())),
                integer=prop.get("type") == "integer",
                only=only,
            )
        )
    return fields


def _contract_defaults() -> dict[str, Any]:
    """What the create page's editors fall back to: DeepRacer's default actions, both forms."""
    return {
        "discrete": [a.model_dump() for a in recipe_contract.DEFAULT_DISCRETE_ACTIONS],
        "continuous": recipe_contract.DEFAULT_CONTINUOUS_ACTIONS.model_dump(),
        "until_clean_laps": recipe_contract.StopCondition.model_fields["until_clean_laps"].default,
    }


# ----------------------------------------------------------------------------------------------- assets


def assets_folder(app: FastAPI) -> Path:
    """Where this server keeps the console's third-party files: `settings.data_dir / "web-assets"`."""
    return Path(app.state.settings.data_dir) / WEB_ASSETS_DIR


def _lock(app: FastAPI) -> AssetLock:
    lock = getattr(app.state, "console_asset_lock", None)
    if lock is None:
        lock = app.state.console_asset_lock = load_lock()
    return lock


def assets_status(app: FastAPI) -> AssetStatus:
    """The assets' state, verified once and kept while good. Missing or damaged: one background fetch per
    app (the pages meanwhile use their plain fallbacks; the next page load after it finished has them)."""
    folder = assets_folder(app)
    known: AssetStatus | None = getattr(app.state, "console_assets", None)
    if known is not None and known.ok and known.folder == folder:
        return known
    found = verify_assets(folder, _lock(app))
    app.state.console_assets = found
    if not found.ok and getattr(app.state, "console_assets_fetch", None) is None:
        app.state.console_assets_fetch = threading.Thread(
            target=_fetch_assets, args=(folder, _lock(app)), name="console-assets", daemon=True
        )
        app.state.console_assets_fetch.start()
    return found


def _fetch_assets(folder: Path, lock: AssetLock) -> None:
    fetched = ensure_assets(folder, cache=shared_cache_dir(), lock=lock)
    if fetched.ok:
        log.info("console: %s", fetched.message())
    else:
        log.warning("console: %s (the pages use a plain editor and tables meanwhile)", fetched.message())


def asset_urls(lock: AssetLock) -> dict[str, str]:
    """Template name -> URL of each linked asset, with the package version as a cache buster."""
    urls = {}
    for name, (package_name, path) in ASSET_FILES.items():
        package = lock.package(package_name)
        version = package.version if package is not None else "0"
        urls[name] = f"{ASSETS_MOUNT}/{package_name}/{path}?v={version}"
    return urls


# ------------------------------------------------------------------------------------------------ pages


def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=WEB_DIR / "templates")  # autoescapes .html (names are user input)


def _sign_in_redirect() -> RedirectResponse:
    return RedirectResponse(SIGN_IN_PATH, status_code=status.HTTP_303_SEE_OTHER)


def _context(request: Request, signed: SignedIn, nav: str, **extra: Any) -> dict[str, Any]:
    found = assets_status(request.app)
    note = None
    if not found.ok:
        note = (
            "The code editor and the charts (CodeMirror and uPlot, from the npm registry) are not on this "
            "server yet: it is fetching them, reload in a moment. Until then: a plain text box and tables. "
            f"If they never come, the organiser runs `{FETCH_COMMAND}`."
        )
    return {
        "racer": signed.racer,
        "csrf_token": signed.csrf_token,
        "assets_ok": found.ok,
        "assets_note": note,
        "assets": asset_urls(_lock(request.app)),
        "nav": nav,
        **extra,
    }


def console_router() -> APIRouter:
    """The console's pages (rate-limited per client IP, like every page) and its assets (not rate-limited,
    as the other static files); not part of the OpenAPI schema."""
    router = APIRouter(include_in_schema=False)
    limited = [Depends(page_rate_limited)]
    templates = _templates()

    def render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
        response = templates.TemplateResponse(request, template, context)
        response.headers["Cache-Control"] = PAGE_CACHE_CONTROL
        return response

    def page(request: Request, session: Session, template: str, nav: str, **extra: Any) -> Response:
        signed = current_racer(request, session)
        if signed is None:
            return _sign_in_redirect()
        return render(request, template, _context(request, signed, nav, **extra))

    @router.get(SIGN_IN_PATH, response_class=HTMLResponse, name="console-sign-in", dependencies=limited)
    def sign_in_page(request: Request, session: SessionDep, error: ErrorText = None) -> Response:
        """The sign-in form (its POST is the API's); already signed in: straight to my models."""
        if current_racer(request, session) is not None:
            return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)
        return render(request, "console_signin.html", {"racer": None, "error": error, "nav": "sign-in"})

    @router.get("/console", response_class=HTMLResponse, name="console-home", dependencies=limited)
    def home_page(request: Request, session: SessionDep) -> Response:
        """My models and my quota."""
        return page(request, session, "console_home.html", "home")

    @router.get("/console/models/new", response_class=HTMLResponse, name="console-new", dependencies=limited)
    def new_page(request: Request, session: SessionDep, from_id: FromId = None) -> Response:
        """The create page; `?from=<id>`: start from that model's recipe (my draft: edit it in place)."""
        return page(request, session, "console_new.html", "new", from_id=from_id,
                    hyperparameters=hyperparameter_fields(), recipe_defaults=_contract_defaults())  # fmt: skip

    @router.get("/console/models/{model_id}", response_class=HTMLResponse, name="console-model",
                dependencies=limited)  # fmt: skip
    def model_page(request: Request, model_id: ModelId, session: SessionDep) -> Response:
        """One model: live training curves, its evaluation, download, submit, share, lineage."""
        return page(request, session, "console_model.html", "model", model_id=model_id)

    @router.get("/console/gallery", response_class=HTMLResponse, name="console-gallery", dependencies=limited)
    def gallery_page(request: Request, session: SessionDep) -> Response:
        """The league's shared recipes, to remix."""
        return page(request, session, "console_gallery.html", "gallery")

    @router.get(ASSETS_MOUNT + "/{package}/{path:path}", name="console-assets")
    def asset(request: Request, package: str, path: str) -> FileResponse:
        """A pinned file (only the files assets.lock.json lists: nothing else in the folder is served)."""
        pinned = _lock(request.app).package(package)
        if pinned is None or path not in pinned.files:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{package}/{path} is not a console asset")
        file = assets_folder(request.app) / package / path
        if not file.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{package}/{path}: run `{FETCH_COMMAND}`")
        media_type = None if Path(path).suffix else "text/plain; charset=utf-8"
        return FileResponse(file, media_type=media_type, headers={"Cache-Control": ASSET_CACHE_CONTROL})

    return router

"""The app factory. `create_app(settings)` builds nothing heavy: the lifespan creates the engine and the
sessionmaker (migrating first, if `migrate_on_start`), the EventHub, and — when ingest is enabled — the
embedded broker (no broker_url) and the MQTT ingest service; shutdown stops them in reverse order.

Everything it may start is in the `server` extra and imported at the top. What is optional is a setting, not an
installation: `ingest_enabled = false` (an API-only deployment) starts neither broker nor ingest, and a
`broker_url` replaces the embedded broker.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import SecretStr

from league_server.api import errors as api_errors
from league_server.api.fastpath import LeaderboardFastPath
from league_server.api.ratelimit import PublicRateLimit
from league_server.api.routes import admin, console, exports, public, submissions
from league_server.broker.embedded import EmbeddedBroker
from league_server.broker.mosquitto import DEFAULT_SERVER_USERNAME, BrokerUser
from league_server.broker.sync import LoginSync
from league_server.core.config import Settings
from league_server.core.db import make_engine, make_sessionmaker, upgrade_if_behind
from league_server.core.security import hash_mqtt_password
from league_server.events import EventHub
from league_server.ingest import IngestService
from league_server.leaderboard_cache import cache_of
from league_server.web import web_router
from league_server.web.console_pages import console_router

log = logging.getLogger(__name__)

# Seconds the app's startup waits for the ingest to subscribe before it lets cars log in.
START_TIMEOUT_S = 10.0

DESCRIPTION = """Leagues, events and live leaderboards fed by MQTT lap reports.

* **public** (`/api/...`): leaderboards, results, laps — rate-limited per client IP.
* **admin** (`/api/admin/...`): bearer token (`PITLANE_ADMIN_TOKEN`); lap edits are audited.
* **exports** (`/api/races/{race_id}/export/...`): laps CSV, standings CSV, full JSON.

Times are seconds (`_s`) in rankings and milliseconds (`_ms`) for stored lap times.
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pitlane")
    except PackageNotFoundError:
        return "0+unknown"


def _start(app: FastAPI, settings: Settings) -> None:
    if settings.migrate_on_start:
        upgrade_if_behind(settings.database_url)
    engine = make_engine(settings.database_url)
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.events = EventHub()
    app.state.console_events = EventHub()  # keyed by console model id: training progress for watch pages
    app.state.broker = None
    app.state.ingest = None
    app.state.broker_logins = None
    app.state.dispatcher = None
    if settings.jobs_enabled:
        from league_server.jobs.dispatch import JobDispatcher, TrainingSettings
        from league_server.jobs.engine import make_engine as make_job_engine

        jobs = make_job_engine(settings.job_workers)
        app.state.dispatcher = JobDispatcher(
            app.state.sessionmaker,
            jobs,
            settings.data_dir,
            app.state.events,
            app.state.console_events,
            training=TrainingSettings(n_envs=settings.training_n_envs),
        )
        app.state.dispatcher.start()
    if not settings.ingest_enabled:
        return
    if settings.broker_url is None:
        settings = _start_embedded_broker(app, settings)
    # The amqtt fallback broker speaks MQTT 3.1.1 only (league_server/broker/embedded.py).
    protocols = getattr(app.state.broker, "mqtt_protocols", ("5",))
    version = "5" if "5" in protocols else "3.1.1"
    app.state.ingest = IngestService(
        settings, app.state.sessionmaker, app.state.events, protocol_version=version
    ).start()
    if app.state.broker is not None:
        # Cars may log in only once the server's session is subscribed: a lap sent earlier would have no
        # subscriber to wait for (on a data directory's first start; later its session is on disk).
        if not app.state.ingest.wait_connected(START_TIMEOUT_S):
            log.error("ingest did not subscribe within %.0f s; cars may log in anyway", START_TIMEOUT_S)
        app.state.broker_logins = LoginSync(app.state.broker, app.state.sessionmaker).start()


def _start_embedded_broker(app: FastAPI, settings: Settings) -> Settings:
    """Start the local broker in settings.data_dir/broker with a new server login; the settings to ingest with."""
    password = secrets.token_urlsafe(24)
    server = BrokerUser(DEFAULT_SERVER_USERNAME, hash_mqtt_password(password))
    host, port = settings.embedded_broker_host, settings.embedded_broker_port
    app.state.broker = EmbeddedBroker(
        host, port, data_dir=settings.data_dir / "broker", server=server
    ).start()
    log.info("embedded MQTT broker on %s (data in %s)", app.state.broker.url, settings.data_dir / "broker")
    return settings.model_copy(
        update={"mqtt_username": DEFAULT_SERVER_USERNAME, "mqtt_password": SecretStr(password)}
    )


def _stop(app: FastAPI) -> None:
    for name in ("dispatcher", "broker_logins", "ingest", "broker"):
        part = getattr(app.state, name, None)
        if part is not None:
            part.stop()
            setattr(app.state, name, None)
    for name in ("events", "console_events", "leaderboard_cache"):
        part = getattr(app.state, name, None)
        if part is not None and hasattr(part, "close"):
            part.close()
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The league server app (settings default: the environment and `.env`)."""
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            _start(app, settings)
            cache_of(app.state)  # the cache's ranker process starts importing now, not at the first refresh
            # The startup heap (FastAPI, pydantic, SQLAlchemy, ...) is long-lived: moving it out of the
            # collector's reach cut full collections from ~100 ms to ~10 ms, and each one stalls every
            # request in flight (they showed up as the leaderboard's p99 under polling screens).
            gc.collect()
            gc.freeze()
            yield
        finally:
            gc.unfreeze()
            _stop(app)

    app = FastAPI(
        title="pitlane league server", version=_version(), description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.rate_limit = PublicRateLimit(settings.public_rate_limit_per_minute)
    api_errors.install(app)
    app.include_router(public.router)
    app.include_router(exports.router)
    app.include_router(submissions.router)
    app.include_router(console.router)
    app.include_router(console_router())
    app.include_router(admin.router)
    app.include_router(web_router())
    app.add_middleware(LeaderboardFastPath, state_app=app)
    return app

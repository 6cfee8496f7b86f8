"""Server settings: environment variables with the PITLANE_ prefix and a `.env` file (pydantic-settings).

Nothing is built at import time: call `Settings()` (or `get_settings()`) where the settings are needed, so
tests and the CLI can pass their own values.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./pitlane-league.db"


class Settings(BaseSettings):
    """League server configuration.

    database_url: SQLAlchemy URL (`sqlite:///path.db` or `postgresql+psycopg://user@host/db`).
    admin_token: bearer token for `/api/admin/...`; None disables the admin API (every admin call -> 403).
    broker_url: `mqtt://host:port` of an external broker; None starts the embedded broker
        on embedded_broker_host:embedded_broker_port.
    data_dir: the server's own files: the embedded broker's logins, config and persistence (the laps it
        queued while ingest was down) in `data_dir/broker`.
    mqtt_username / mqtt_password: the server's own broker login (external brokers with a password file).
    public_base_url: base URL used in links given to users (a car's credentials file's leaderboard_url, the QR code).
    public_rate_limit_per_minute: requests per client IP per minute on public routes (0 = unlimited).
    ingest_enabled: start the MQTT ingest service with the app (and, with no broker_url, the embedded broker:
        the broker exists for ingest, so an API-only app starts none).
    rank_in_process: re-rank live leaderboards in a child process (league_server/ranker_process.py) instead of
        a thread of the server, so serving cached copies never waits on the ranking (costs one more Python
        process, ~1 s to start in the background).
    jobs_enabled: run virtual races' evaluation jobs from this app (`league_server.jobs.dispatch`); job_workers:
        where, a count of local worker processes (None: cores - 1) or a Ray address (`ray://HOST:PORT`;
        `RAY_ADDRESS` when None). Uploads and job folders live in `data_dir`. The console's training jobs run
        on the same workers; training_n_envs: simulated cars per training job.
    migrate_on_start: run `alembic upgrade head` when the app starts (one-command SQLite setups); turn it off
        when several workers share a PostgreSQL database and `pitlane league migrate` runs once before.
    """

    model_config = SettingsConfigDict(env_prefix="PITLANE_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    admin_token: SecretStr | None = None
    broker_url: str | None = None
    embedded_broker_host: str = "127.0.0.1"
    embedded_broker_port: int = Field(default=1883, ge=0, le=65535)
    data_dir: Path = Path("pitlane-league-data")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    public_rate_limit_per_minute: int = Field(default=600, ge=0)
    ingest_enabled: bool = False
    jobs_enabled: bool = False
    job_workers: str | None = None
    training_n_envs: int = Field(default=64, ge=1, le=1024)
    migrate_on_start: bool = True
    rank_in_process: bool = True

    @field_validator("database_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        from league_server.core.db import normalise_url

        if "://" not in value:
            raise ValueError(
                "expected a SQLAlchemy URL such as sqlite:///./league.db or postgresql+psycopg://user@host/db"
            )
        normalise_url(value)  # ConfigError (a ValueError) names what is wrong
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


def get_settings() -> Settings:
    """Settings from the environment and `.env` (a new object per call; nothing cached at import)."""
    return Settings()

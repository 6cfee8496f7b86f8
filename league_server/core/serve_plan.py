"""What `pitlane league serve` runs with, once the command line's values and the environment are known: the
admin token (a new one when none is configured), the public URL the links and QR codes use, and whether this
server starts its own broker (a broker a killed server left on the data directory is stopped first)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from league_server.core.config import Settings
from league_server.core.security import new_admin_token

DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
ANY_ADDRESS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class ServePlan:
    """settings: what the app is created with. admin_token_generated: the token is new for this run (show it
    once). embedded_broker: (host, port) of the broker this server starts, None when it ingests from
    --broker or not at all."""

    settings: Settings
    admin_token_generated: bool
    embedded_broker: tuple[str, int] | None

    @property
    def ingest_source(self) -> str | None:
        """Where the laps come from, in words (None: no ingest)."""
        if not self.settings.ingest_enabled:
            return None
        if self.embedded_broker is None:
            return self.settings.broker_url
        host, port = self.embedded_broker
        return f"embedded broker mqtt://{host}:{port}"


def loopback_for(host: str) -> str:
    """The address to reach (or check) a server bound to `host`: loopback for the any-address."""
    return "127.0.0.1" if host in ANY_ADDRESS else host


def plan_serve(settings: Settings, host: str, port: int) -> ServePlan:
    """Resolve the serve defaults for an HTTP server on host:port. With no admin token configured a new one
    is made; the default public URL (loopback, port 8000) follows the address actually served; with ingest
    on and no --broker, a leftover broker of a killed server on settings.data_dir/broker is stopped (its
    queue is kept on disk), so the embedded broker can take its port."""
    generated = settings.admin_token is None
    if generated:
        settings = settings.model_copy(update={"admin_token": SecretStr(new_admin_token())})
    if settings.public_base_url == DEFAULT_PUBLIC_BASE_URL and (host, port) != ("127.0.0.1", 8000):
        settings = settings.model_copy(update={"public_base_url": f"http://{loopback_for(host)}:{port}"})
    embedded = None
    if settings.ingest_enabled and settings.broker_url is None:
        # Imported here: the broker module is needed only by a server that starts its own broker.
        from league_server.broker.embedded import stop_embedded_leftover

        stop_embedded_leftover(settings.data_dir / "broker")
        embedded = (settings.embedded_broker_host, settings.embedded_broker_port)
    return ServePlan(settings=settings, admin_token_generated=generated, embedded_broker=embedded)

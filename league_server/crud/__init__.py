"""Plain functions over a SQLAlchemy Session: the one place the API, the CLI and ingest change the database.

They flush but never commit: the caller owns the transaction (ingest acknowledges an MQTT message only after
its own commit; an admin edit and its audit entry commit together).
"""

from league_server.crud import (
    audit,
    cars,
    crossings,
    dead_letters,
    laps,
    leagues,
    logins,
    presence,
    races,
    timers,
)

__all__ = [
    "audit",
    "cars",
    "crossings",
    "dead_letters",
    "laps",
    "leagues",
    "logins",
    "presence",
    "races",
    "timers",
]

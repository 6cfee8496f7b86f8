"""What ingest needs to know about cars, timers and races, cached in memory (a lookup per lap would cost
more than the insert at 1,000 laps/s): reloaded at most every `max_age_s`, and sooner when an unknown car or
timer shows up (one provisioned a moment ago), so admin changes reach ingest within about a second."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from league_server.models import Car, League, Race, Timer, Track


@dataclass(frozen=True)
class CarInfo:
    car_id: str
    hmac_secret: str
    race_id: int | None
    racer_id: int | None
    league: str = ""  # the league's slug


@dataclass(frozen=True)
class TimerInfo:
    timer_id: str
    hmac_secret: str
    race_id: int | None
    league: str = ""  # the league's slug


@dataclass(frozen=True)
class RaceInfo:
    race_id: int
    status: str
    min_lap_time_s: float
    window_start: datetime | None
    window_end: datetime | None
    track: str | None = None  # the race's track slug (None: any track)


class Directory:
    """Leagues by slug, cars, timers and races by id; `refresh(session)` reloads them when stale. Used by the
    ingest worker thread only."""

    def __init__(self, max_age_s: float = 1.0, miss_reload_s: float = 0.2) -> None:
        self.max_age_s = max_age_s
        self.miss_reload_s = miss_reload_s
        self.leagues: set[str] = set()
        self.cars: dict[str, CarInfo] = {}
        self.timers: dict[str, TimerInfo] = {}
        self.races: dict[int, RaceInfo] = {}
        self._loaded_at = float("-inf")

    def stale(self, unknown_car: bool = False) -> bool:
        """True when older than max_age_s (miss_reload_s after an unknown car or timer: `unknown_car`)."""
        age_s = time.monotonic() - self._loaded_at
        return age_s > (self.miss_reload_s if unknown_car else self.max_age_s)

    def refresh(self, session: Session) -> None:
        """Reload every league, car, timer and race (four small queries)."""
        slugs = {row.id: row.slug for row in session.execute(select(League.id, League.slug))}
        self.leagues = set(slugs.values())
        self.cars = {
            c.car_id: CarInfo(c.car_id, c.hmac_secret, c.race_id, c.racer_id, slugs[c.league_id])
            for c in session.execute(
                # the simulator car's laps come from the server's own evaluations, never over MQTT
                select(Car.car_id, Car.hmac_secret, Car.race_id, Car.racer_id, Car.league_id).where(
                    Car.simulated.is_(False)
                )
            )
        }
        self.timers = {
            t.timer_id: TimerInfo(t.timer_id, t.hmac_secret, t.race_id, slugs[t.league_id])
            for t in session.execute(
                select(Timer.timer_id, Timer.hmac_secret, Timer.race_id, Timer.league_id)
            )
        }
        tracks = {row.id: row.slug for row in session.execute(select(Track.id, Track.slug))}
        self.races = {
            r.id: RaceInfo(
                r.id, r.status, r.min_lap_time_s, r.window_start, r.window_end, tracks.get(r.track_id)
            )
            for r in session.execute(
                select(
                    Race.id,
                    Race.status,
                    Race.min_lap_time_s,
                    Race.window_start,
                    Race.window_end,
                    Race.track_id,
                )
            )
        }
        self._loaded_at = time.monotonic()

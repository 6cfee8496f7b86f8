"""Leaderboard push for the live pages: one `league_server.ranking.leaderboard` computation per burst of laps
per race, shared by every browser watching that race.

Why: with every browser refetching the JSON API after every lap, the server computes the same leaderboard once
per browser per lap (100 browsers at one lap a second = 100 computations a second). A `LeaderboardFeed` listens to
the race's EventHub events, waits `COALESCE_S` to gather a burst, computes the leaderboard once in a worker
thread, and hands the JSON text to every stream of that race; a slow stream simply skips to the newest version,
so nothing queues up. Feeds start with their first stream and stop with their last.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from league_server import ranking
from league_server.events import EventHub, Subscription

log = logging.getLogger(__name__)

# Gather laps for this long after the first of a burst before computing (adds at most this to the latency).
COALESCE_S = 0.1


class LeaderboardFeed:
    """The newest leaderboard JSON of one race, recomputed after its events. Lives in one event loop."""

    def __init__(self, hub: EventHub, sessions: Any, race_id: int) -> None:
        self.race_id = race_id
        self.version = 0
        self.json: str | None = None
        self.computations = 0
        self.closed = False
        self._hub = hub
        self._sessions = sessions
        self._changed = asyncio.Event()
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return self._listeners

    def attach(self) -> None:
        """One more stream; the first starts the feed (subscribed right here, so no later event is missed)."""
        self._listeners += 1
        if self._task is None:
            subscription = self._hub.subscribe(self.race_id)
            self._task = asyncio.get_running_loop().create_task(
                self._run(subscription), name=f"leaderboard-feed-{self.race_id}"
            )

    def detach(self) -> None:
        """Returns the feed to idle when its last stream goes (the task stops; the next stream restarts it)."""
        self._listeners -= 1
        if self._listeners <= 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    async def wait_newer(self, seen_version: int) -> tuple[int, str] | None:
        """The first leaderboard newer than ``seen_version`` (waits for it); None once the hub has closed."""
        while self.version <= seen_version or self.json is None:
            if self.closed:
                return None
            await self._changed.wait()
        return self.version, self.json

    def _compute(self) -> str:
        with self._sessions() as session:
            return ranking.leaderboard(session, self.race_id).model_dump_json()

    def _publish(self, text: str) -> None:
        self.json = text
        self.version += 1
        self.computations += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self, subscription: Subscription) -> None:
        async with subscription:
            async for _event in subscription:
                await asyncio.sleep(COALESCE_S)
                subscription.drain()  # the computation below covers every event so far
                try:
                    text = await asyncio.to_thread(self._compute)
                except Exception:  # a database hiccup must not end the feed: the next event retries
                    log.exception(
                        "leaderboard feed of race %d: computing the leaderboard failed", self.race_id
                    )
                    continue
                self._publish(text)
        self.closed = True  # the hub closed (server shutting down): let the streams end
        self._changed.set()


class LeaderboardFeeds:
    """The feeds of one app (``app.state``), by race id; created on demand."""

    def __init__(self, hub: EventHub, sessions: Any) -> None:
        self._hub = hub
        self._sessions = sessions
        self._feeds: dict[int, LeaderboardFeed] = {}

    def attach(self, race_id: int) -> LeaderboardFeed:
        feed = self._feeds.get(race_id)
        if feed is None or feed.closed:
            feed = self._feeds[race_id] = LeaderboardFeed(self._hub, self._sessions, race_id)
        feed.attach()
        return feed

    def detach(self, feed: LeaderboardFeed) -> None:
        feed.detach()
        if feed.listeners <= 0 and self._feeds.get(feed.race_id) is feed:
            del self._feeds[feed.race_id]

    def get(self, race_id: int) -> LeaderboardFeed | None:
        return self._feeds.get(race_id)

    def listeners(self) -> int:
        """Streams attached to any feed."""
        return sum(feed.listeners for feed in self._feeds.values())

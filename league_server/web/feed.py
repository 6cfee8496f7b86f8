"""What the live pages are pushed, per race, shared by every browser watching that race.

Why shared: with every browser refetching after every lap, the server computes the same leaderboard once per
browser per lap (100 browsers at one lap a second = 100 computations a second). A `RaceFeed` wakes up when
something may have changed, waits `COALESCE_S` to gather a burst, works out once in a worker thread what
changed, and hands the result to every stream of that race:

- ``leaderboard``: the race's leaderboard JSON (the API's bytes, through the leaderboard cache), only when a
  lap of this race or a race/car edit changed it; a slow stream skips to the newest version.
- ``laps``: the laps stored or edited since the last push, as rows the lap page and the big screen's ticker
  insert or update in place (`queries.lap_changes`); kept for `LAPS_BACKLOG` pushes, a stream further behind
  catches up with a query of its own.
- ``track``: the race's cars on track now (presence driving/online), when that list changes.

What wakes a feed: the race's EventHub events (laps stored by this process's ingest, admin API edits: about
COALESCE_S to the screen), and `LeaderboardFeeds`' poll of the database's data version (max lap id, max audit
id; `leaderboard_cache.data_version`) every `POLL_S`: a marshal's edit made by the CLI in another process
writes an audit entry like any other, so it reaches open pages within about POLL_S + COALESCE_S without any
message between the processes. The same poll reads the presence of the watched races' cars. Feeds start with
their first stream and stop with their last; the poll runs while any feed does.

Caveat (as for the leaderboard cache): a lap committed by another writer with a smaller id than one already
pushed (two concurrent PostgreSQL writers) reaches the leaderboard with the next change, but not the open lap
pages until they reload.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from league_server.crud import races as races_crud
from league_server.events import EventHub, Subscription
from league_server.leaderboard_cache import LeaderboardCache, Version, data_version
from league_server.web import formatting, queries

log = logging.getLogger(__name__)

# Gather laps for this long after the first of a burst before computing (adds at most this to the latency).
COALESCE_S = 0.1
# How often the database's data version (and car presence) is read while pages are open: the delay before
# an edit made by another process (the CLI) shows.
POLL_S = 0.5
# Lap pushes a feed keeps for streams that are a little behind.
LAPS_BACKLOG = 64


@dataclass(frozen=True)
class FeedUpdate:
    """One computation's result. laps_json: the ``laps`` message (None: no lap of this race changed);
    laps_resync: that message tells pages to reload; board_json: the new leaderboard (None: unchanged)."""

    version: Version
    laps_json: str | None
    board_json: str | None
    laps_resync: bool = False


@dataclass(frozen=True)
class LapsPush:
    """A ``laps`` message. seq: its number in the feed; version: the data version a stream has seen after it
    (the SSE event id, so a reconnecting browser resumes from it); resync: the page should reload."""

    seq: int
    version: Version
    text: str
    resync: bool


@dataclass
class StreamPosition:
    """What one stream has been sent: board and track versions, the last laps push and its data version."""

    board: int
    track: int
    laps_seq: int
    version: Version | None


def format_version(version: Version) -> str:
    """A data version as an SSE event id / page attribute: '<max lap id>.<max audit id>'."""
    return f"{version[0]}.{version[1]}"


def parse_version(text: str | None) -> Version | None:
    """The inverse of `format_version`; None for anything else (a missing or made-up header)."""
    if not text:
        return None
    lap, _, audit = text.partition(".")
    if not (lap.isdigit() and audit.isdigit()) or len(lap) > 19 or len(audit) > 19:
        return None
    return int(lap), int(audit)


def _laps_message(race_id: int, changes: queries.LapChanges) -> tuple[str, bool]:
    resync = changes.overflow or changes.race_edited
    body = {
        "race_id": race_id,
        "total": changes.total,
        "resync": resync,
        "laps": [] if resync else [formatting.lap_json(row) for row in changes.laps],
    }
    return json.dumps(body, separators=(",", ":")), resync


class LiveSource:
    """The database side of the feeds; every method runs in a worker thread. sessions: the app's
    sessionmaker; cache: the app's LeaderboardCache (the pushed leaderboard is the API's)."""

    def __init__(self, sessions: Any, cache: LeaderboardCache | None = None) -> None:
        self.sessions = sessions
        self.cache = cache if cache is not None else LeaderboardCache(sessions)

    def version(self) -> Version:
        with self.sessions() as session:
            return data_version(session)

    def update(self, race_id: int, since: Version, board: bool = True) -> FeedUpdate:
        """What changed for `race_id` after data version `since`; the leaderboard only if `board` (a
        re-rank is the expensive part: not done for a race whose open pages are all lap pages)."""
        with self.sessions() as session:
            race = races_crud.get_race(session, race_id)
            changes = queries.lap_changes(session, race, since)
        laps_json, resync = None, False
        if changes.laps or changes.overflow or changes.race_edited:
            laps_json, resync = _laps_message(race_id, changes)
        board_json = None
        if board and changes.board_changed:
            board_json = self.cache.json_validated(race_id).decode("utf-8")
        return FeedUpdate(changes.version, laps_json, board_json, resync)

    def catch_up(self, race_id: int, since: Version) -> tuple[Version, str, bool]:
        """(version, ``laps`` message, resync?) bringing a stream that saw `since` up to date."""
        with self.sessions() as session:
            race = races_crud.get_race(session, race_id)
            changes = queries.lap_changes(session, race, since)
        text, resync = _laps_message(race_id, changes)
        return changes.version, text, resync

    def poll(self, race_ids: Iterable[int]) -> tuple[Version, dict[int, str]]:
        """(the data version, race id -> JSON list of its cars on track now)."""
        with self.sessions() as session:
            version = data_version(session)
            track = queries.on_track(session, race_ids)
        return version, {
            race_id: json.dumps(queries.track_json(cars), separators=(",", ":"))
            for race_id, cars in track.items()
        }


def _behind(mark: Version | None, version: Version) -> bool:
    return mark is None or version[0] > mark[0] or version[1] > mark[1]


class RaceFeed:
    """The live state of one race (see module doc). Lives in one event loop.

    version / json: the newest leaderboard push (0 / None before the first; computed only while a stream
    wants it: `board_listeners`); track_version / track_json: the newest on-track list; laps: the last
    LAPS_BACKLOG lap pushes; mark: the data version computed up to.
    """

    def __init__(self, hub: EventHub, source: LiveSource, race_id: int) -> None:
        self.race_id = race_id
        self.version = 0
        self.json: str | None = None
        self.track_version = 0
        self.track_json: str | None = None
        self.laps: deque[LapsPush] = deque(maxlen=LAPS_BACKLOG)
        self.laps_seq = 0
        self.mark: Version | None = None
        self.computations = 0
        self.closed = False
        self._hub = hub
        self._source = source
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._listeners = 0
        self.board_listeners = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def listeners(self) -> int:
        return self._listeners

    @property
    def source(self) -> LiveSource:
        return self._source

    def attach(self, board: bool = True) -> None:
        """One more stream (`board`: it wants leaderboards); the first starts the feed (subscribed right here,
        so no later event is missed)."""
        self._listeners += 1
        self.board_listeners += board
        if not self._tasks:
            subscription = self._hub.subscribe(self.race_id)
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._listen(subscription), name=f"race-feed-events-{self.race_id}"),
                loop.create_task(self._run(), name=f"race-feed-{self.race_id}"),
            ]

    def detach(self, board: bool = True) -> None:
        """Returns the feed to idle when its last stream goes (the tasks stop; the next stream restarts them)."""
        self._listeners -= 1
        self.board_listeners -= board
        if self._listeners <= 0:
            for task in self._tasks:
                task.cancel()
            self._tasks = []

    def poke(self, version: Version) -> None:
        """The data version the poll read: compute if this feed has not seen it yet."""
        if self.mark is not None and _behind(self.mark, version):
            self._wake.set()

    def set_track(self, text: str) -> None:
        """The on-track list the poll read (a JSON list); pushed when it changed."""
        if text != self.track_json:
            self.track_json = text
            self.track_version += 1
            self._notify()

    def position(self) -> StreamPosition:
        """A new stream's starting point: the current leaderboard is skipped (the page fetched or rendered
        it), the current on-track list is sent, lap pushes from the next one on."""
        return StreamPosition(self.version, 0, self.laps_seq, self.mark)

    async def wait_newer(self, seen_version: int) -> tuple[int, str] | None:
        """The first leaderboard newer than ``seen_version`` (waits for it); None once the hub has closed."""
        while self.version <= seen_version or self.json is None:
            if self.closed:
                return None
            await self._changed.wait()
        return self.version, self.json

    async def wait_change(self, seen: StreamPosition) -> bool:
        """Wait until there is something newer than `seen`; False once the hub has closed."""
        while not self.closed:
            if self.version > seen.board or self.track_version > seen.track or self.laps_seq > seen.laps_seq:
                return True
            await self._changed.wait()
        return False

    def laps_after(self, seq: int) -> list[LapsPush] | None:
        """The lap pushes after `seq`, oldest first; None when some of them are no longer kept."""
        if seq >= self.laps_seq:
            return []
        if not self.laps or self.laps[0].seq > seq + 1:
            return None
        return [push for push in self.laps if push.seq > seq]

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _apply(self, update: FeedUpdate) -> None:
        self.mark = update.version
        if update.laps_json is not None:
            self.laps_seq += 1
            self.laps.append(LapsPush(self.laps_seq, update.version, update.laps_json, update.laps_resync))
        if update.board_json is not None:
            self.json = update.board_json
            self.version += 1
            self.computations += 1
        if update.laps_json is not None or update.board_json is not None:
            self._notify()

    async def _listen(self, subscription: Subscription) -> None:
        async with subscription:
            async for _event in subscription:
                self._wake.set()
        self.closed = True  # the hub closed (server shutting down): let the streams end
        self._wake.set()
        self._notify()

    async def _run(self) -> None:
        while not self.closed:
            if self.mark is None:
                try:
                    self.mark = await asyncio.to_thread(self._source.version)
                except Exception:  # a database hiccup must not end the feed: retry at the next poll
                    log.exception("race feed %d: reading the data version failed", self.race_id)
                    await asyncio.sleep(POLL_S)
                    continue
            await self._wake.wait()
            if self.closed:
                return
            await asyncio.sleep(COALESCE_S)
            self._wake.clear()  # the computation below covers every event so far
            try:
                update = await asyncio.to_thread(
                    self._source.update, self.race_id, self.mark, self.board_listeners > 0
                )
            except Exception:  # a database hiccup must not end the feed: the next event or poll retries
                log.exception("race feed %d: computing what changed failed", self.race_id)
                continue
            self._apply(update)


class LeaderboardFeeds:
    """The feeds of one app (``app.state.web_feeds``), by race id, created on demand, and the poll that
    wakes them for changes made by other processes (see module doc).

    source: a LiveSource, or the app's sessionmaker (a LiveSource with a cache of its own is made over it).
    """

    def __init__(self, hub: EventHub, source: Any) -> None:
        self._hub = hub
        self._source = source if isinstance(source, LiveSource) else LiveSource(source)
        self._feeds: dict[int, RaceFeed] = {}
        self._poll_task: asyncio.Task[None] | None = None

    @property
    def source(self) -> LiveSource:
        return self._source

    def attach(self, race_id: int, board: bool = True) -> RaceFeed:
        """The race's feed with one more stream (`board`: it wants leaderboards)."""
        feed = self._feeds.get(race_id)
        if feed is None or feed.closed:
            feed = self._feeds[race_id] = RaceFeed(self._hub, self._source, race_id)
        feed.attach(board)
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = asyncio.get_running_loop().create_task(self._poll(), name="race-feeds-poll")
        return feed

    def detach(self, feed: RaceFeed, board: bool = True) -> None:
        feed.detach(board)
        if feed.listeners <= 0 and self._feeds.get(feed.race_id) is feed:
            del self._feeds[feed.race_id]
        if not self._feeds and self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None

    def get(self, race_id: int) -> RaceFeed | None:
        return self._feeds.get(race_id)

    def listeners(self) -> int:
        """Streams attached to any feed."""
        return sum(feed.listeners for feed in self._feeds.values())

    async def _poll(self) -> None:
        while self._feeds:
            await asyncio.sleep(POLL_S)
            feeds = list(self._feeds.values())
            try:
                version, tracks = await asyncio.to_thread(self._source.poll, [f.race_id for f in feeds])
            except Exception:  # a database hiccup must not end the poll: the next one retries
                log.exception("race feeds: polling the data version failed")
                continue
            for feed in feeds:
                feed.poke(version)
                if feed.race_id in tracks:
                    feed.set_track(tracks[feed.race_id])

"""In-process fan-out of race events from the ingest (an MQTT thread) to browsers (asyncio SSE handlers).

``EventHub.publish(race_id, event)`` may be called from any thread, typically the paho-mqtt network thread right
after a lap's database commit. It never blocks and never touches asyncio objects from the wrong thread: each
subscriber's event loop receives the event through ``loop.call_soon_threadsafe``.

``EventHub.subscribe(race_id)`` (called inside a running event loop) returns a `Subscription`: an async iterator
of event dicts, registered the moment it is created, so nothing published after ``subscribe()`` returns is missed.
Each subscription holds at most ``queue_size`` events. A subscriber that falls behind (a slow browser) loses the
oldest events and is then handed ``{"type": "resync", "race_id": ..., "dropped": n}`` before the newer events:
the client must refetch the leaderboard instead of trusting the events it saw. Memory per subscriber is bounded.

Events are plain JSON-able dicts. Conventions (the web page refetches on any of them, so extra keys are free):
``{"type": "lap", "race_id": 3, "car_id": "car-7", "lap_id": 12, ...}`` after a lap is stored,
``{"type": "lap_updated", ...}`` after an invalidate/restore, ``{"type": "resync", ...}`` after drops.

Why hand-written: the fan-out is ~100 lines over asyncio primitives; a broker (Redis, Postgres LISTEN/NOTIFY) is
the scale-out path in DESIGN.md, and no small library bridges a foreign thread into per-loop bounded queues.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from league_server.errors import LeagueError

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256
# Open subscriptions a hub accepts (each holds an asyncio task, a socket and up to queue_size events); a flood
# of event-stream connections gets 503s instead of exhausting the server.
DEFAULT_MAX_SUBSCRIBERS = 1000
RESYNC = "resync"


class SubscriberLimitError(LeagueError, RuntimeError):
    """The hub already has max_subscribers open subscriptions."""


class Subscription(AsyncIterator[dict[str, Any]]):
    """One subscriber's bounded event queue for one race; iterate with ``async for``; ends when closed.

    Only touched from its own event loop (the hub hands events over with ``call_soon_threadsafe``).
    """

    def __init__(self, hub: EventHub, race_id: int, loop: asyncio.AbstractEventLoop, queue_size: int) -> None:
        self.race_id = race_id
        self.loop = loop
        self.dropped_total = 0
        self._hub = hub
        self._queue: deque[dict[str, Any]] = deque(maxlen=queue_size)
        self._dropped_since_resync = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    # -- called in self.loop by the hub
    def _push(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            # deque(maxlen) discards the oldest on append; count it so the client is told to refetch.
            self._dropped_since_resync += 1
            self.dropped_total += 1
        self._queue.append(event)
        self._wakeup.set()

    def _end(self) -> None:
        self._closed = True
        self._wakeup.set()

    # -- async iterator protocol
    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        """Next event; cancellation-safe (a cancelled wait loses no event), so ``asyncio.wait_for`` is fine."""
        while True:
            if self._dropped_since_resync:
                dropped, self._dropped_since_resync = self._dropped_since_resync, 0
                return {"type": RESYNC, "race_id": self.race_id, "dropped": dropped}
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    def drain(self) -> int:
        """Drop every queued event (and a pending resync): for consumers that only need to know *that*
        something changed. Returns how many were dropped."""
        dropped = len(self._queue) + self._dropped_since_resync
        self._queue.clear()
        self._dropped_since_resync = 0
        return dropped

    @property
    def pending(self) -> int:
        """Events waiting to be read (at most ``queue_size``)."""
        return len(self._queue)

    async def aclose(self) -> None:
        """Unsubscribe; the iterator ends after the events already queued."""
        self._hub._unsubscribe(self)
        self._end()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class EventHub:
    """Thread-safe publish, per-event-loop delivery, bounded per-subscriber queues. One per app (``app.state``)."""

    def __init__(
        self, queue_size: int = DEFAULT_QUEUE_SIZE, max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS
    ) -> None:
        for name, value in (("queue_size", queue_size), ("max_subscribers", max_subscribers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EventHub {name}: expected an int >= 1, got {value!r}")
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._lock = threading.Lock()
        self._subscribers: dict[int, set[Subscription]] = {}
        self._closed = False

    def publish(self, race_id: int, event: dict[str, Any]) -> None:
        """Hand ``event`` to every current subscriber of ``race_id``; any thread; never blocks; no-op once closed.

        The dict is copied (shallowly) so the caller may reuse it; subscribers must treat events as read-only.
        """
        if not isinstance(race_id, int) or isinstance(race_id, bool):
            raise TypeError(f"EventHub.publish race_id: expected an int, got {race_id!r}")
        if not isinstance(event, dict):
            raise TypeError(f"EventHub.publish event: expected a dict, got {type(event).__name__}")
        with self._lock:
            if self._closed:
                return
            subscribers = tuple(self._subscribers.get(race_id, ()))
        if not subscribers:
            return
        event = dict(event)
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        for sub in subscribers:
            by_loop.setdefault(sub.loop, []).append(sub)
        for loop, subs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, subs, event)
            except RuntimeError:
                # The subscriber's loop is closed (server shutting down): nobody is listening there any more.
                log.debug(
                    "event loop closed; dropping race %s event for %d subscriber(s)", race_id, len(subs)
                )

    def subscribe(self, race_id: int) -> Subscription:
        """Register a subscriber for ``race_id`` in the running event loop and return its `Subscription`.

        Use ``async with hub.subscribe(race_id) as sub: async for event in sub: ...`` so it is unregistered when
        the client goes away. Raises RuntimeError outside a running loop, SubscriberLimitError when the hub
        already holds max_subscribers subscriptions.
        """
        loop = asyncio.get_running_loop()
        sub = Subscription(self, race_id, loop, self.queue_size)
        with self._lock:
            if self._closed:
                sub._end()
                return sub
            open_now = sum(len(subs) for subs in self._subscribers.values())
            if open_now >= self.max_subscribers:
                raise SubscriberLimitError(
                    f"{open_now} event subscriptions are open, the limit is {self.max_subscribers}"
                )
            self._subscribers.setdefault(race_id, set()).add(sub)
        return sub

    def has_room(self) -> bool:
        """False when a new subscription would be refused (checked before an event stream response starts)."""
        return self.subscriber_count() < self.max_subscribers

    def subscriber_count(self, race_id: int | None = None) -> int:
        """Current subscribers of one race, or of all races."""
        with self._lock:
            if race_id is not None:
                return len(self._subscribers.get(race_id, ()))
            return sum(len(subs) for subs in self._subscribers.values())

    def close(self) -> None:
        """Stop accepting events and end every subscription (their iterators finish after queued events)."""
        with self._lock:
            self._closed = True
            subscribers = [sub for subs in self._subscribers.values() for sub in subs]
            self._subscribers.clear()
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(sub._end)
            except RuntimeError:
                sub._closed = True  # its loop is gone; nothing can be waiting on it

    @property
    def closed(self) -> bool:
        return self._closed

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.race_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.race_id]


def _deliver(subs: list[Subscription], event: dict[str, Any]) -> None:
    """Runs in the subscribers' event loop."""
    for sub in subs:
        sub._push(event)

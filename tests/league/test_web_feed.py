"""LeaderboardFeed: one computation per burst, newest-only delivery, survives a failed computation, stops idle."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import SimpleNamespace

import pytest

from league_server.events import EventHub
from league_server.web import feed as feed_module
from league_server.web.feed import LeaderboardFeeds


@pytest.fixture
def fake_ranking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """ranking.leaderboard replaced by a counter; the first call fails like a database outage."""
    calls: list[int] = []

    def leaderboard(_session, race_id: int):
        calls.append(race_id)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return SimpleNamespace(model_dump_json=lambda: f'{{"race_id": {race_id}, "n": {len(calls)}}}')

    monkeypatch.setattr(feed_module.ranking, "leaderboard", leaderboard)
    monkeypatch.setattr(feed_module, "COALESCE_S", 0.05)
    return calls


def test_a_burst_is_computed_once_and_a_failure_does_not_end_the_feed(fake_ranking: list[int]) -> None:
    async def main() -> None:
        hub = EventHub()
        feeds = LeaderboardFeeds(hub, contextlib.nullcontext)
        feed = feeds.attach(4)
        assert hub.subscriber_count(4) == 1
        hub.publish(4, {"type": "lap"})  # first computation fails (logged), the feed keeps going
        await asyncio.sleep(0.2)
        assert feed.version == 0 and len(fake_ranking) == 1

        def burst() -> None:
            for _ in range(20):
                hub.publish(4, {"type": "lap"})

        threading.Thread(target=burst).start()
        version, text = await asyncio.wait_for(feed.wait_newer(0), 2)
        await asyncio.sleep(0.2)
        assert (version, len(fake_ranking)) == (1, 2), "20 laps in one burst: one computation"
        assert text == '{"race_id": 4, "n": 2}'
        feeds.detach(feed)
        await asyncio.sleep(0.05)
        assert feeds.get(4) is None and hub.subscriber_count(4) == 0

    asyncio.run(main())


def test_streams_end_when_the_hub_closes(fake_ranking: list[int]) -> None:
    async def main() -> None:
        hub = EventHub()
        feed = LeaderboardFeeds(hub, contextlib.nullcontext).attach(5)
        waiter = asyncio.ensure_future(feed.wait_newer(0))
        await asyncio.sleep(0.05)
        hub.close()
        assert await asyncio.wait_for(waiter, 2) is None

    asyncio.run(main())


def test_drain_drops_queued_events_and_a_pending_resync() -> None:
    async def main() -> None:
        hub = EventHub(queue_size=2)
        sub = hub.subscribe(1)
        for n in range(5):
            hub.publish(1, {"n": n})
        await asyncio.sleep(0.01)
        assert sub.drain() == 2 + 3
        hub.publish(1, {"n": 9})
        assert await asyncio.wait_for(sub.__anext__(), 1) == {"n": 9}

    asyncio.run(main())

"""RaceFeed / LeaderboardFeeds over a fake database side: one computation per burst, newest-only delivery,
survives a failed computation, stops idle; the data-version poll wakes feeds without any EventHub event (an
edit made by another process) and pushes on-track changes only when they change; lap pushes are kept for
streams a little behind, and a stream further behind is told so."""

from __future__ import annotations

import asyncio
import threading

import pytest

from league_server.events import EventHub
from league_server.web import feed as feed_module
from league_server.web.feed import FeedUpdate, LeaderboardFeeds, LiveSource, parse_version


class FakeSource(LiveSource):
    """A database of one counter: the data version is (laps, edits); every update reports a new board."""

    def __init__(self) -> None:
        self.laps = 0
        self.edits = 0
        self.updates: list[tuple[int, tuple[int, int]]] = []
        self.fail_next = False
        self.track: dict[int, str] = {}
        self.polls = 0

    def version(self) -> tuple[int, int]:
        return self.laps, self.edits

    def update(self, race_id: int, since: tuple[int, int], board: bool = True) -> FeedUpdate:
        self.updates.append((race_id, since))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database is locked")
        version = self.version()
        if version == since:
            return FeedUpdate(version, None, None)
        laps = f'{{"laps": [{version[0]}], "edits": {version[1]}}}'
        return FeedUpdate(
            version, laps, f'{{"race_id": {race_id}, "n": {len(self.updates)}}}' if board else None
        )

    def poll(self, race_ids):  # type: ignore[no-untyped-def]
        self.polls += 1
        return self.version(), {race_id: self.track.get(race_id, "[]") for race_id in race_ids}


@pytest.fixture(autouse=True)
def fast_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "COALESCE_S", 0.05)
    monkeypatch.setattr(feed_module, "POLL_S", 0.05)


def test_a_burst_is_computed_once_and_a_failure_does_not_end_the_feed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "POLL_S", 10.0)  # EventHub events alone here

    async def main() -> None:
        hub, source = EventHub(), FakeSource()
        feeds = LeaderboardFeeds(hub, source)
        feed = feeds.attach(4)
        assert hub.subscriber_count(4) == 1
        await asyncio.sleep(0.02)
        source.fail_next = True
        source.laps = 1
        hub.publish(4, {"type": "lap"})  # the computation fails (logged), the feed keeps going
        await asyncio.sleep(0.2)
        assert feed.version == 0 and len(source.updates) == 1

        def burst() -> None:
            for _ in range(20):
                source.laps += 1
                hub.publish(4, {"type": "lap"})

        threading.Thread(target=burst).start()
        version, text = await asyncio.wait_for(feed.wait_newer(0), 2)
        await asyncio.sleep(0.2)
        assert version == 1 and text == '{"race_id": 4, "n": 2}', "20 laps in one burst: one computation"
        assert feed.computations == 1 and feed.mark == (21, 0)
        feeds.detach(feed)
        await asyncio.sleep(0.05)
        assert feeds.get(4) is None and hub.subscriber_count(4) == 0

    asyncio.run(main())


def test_an_edit_without_any_event_is_found_by_the_poll() -> None:
    """What `pitlane league admin invalidate-lap` does: an audit entry in the database, no EventHub event."""

    async def main() -> None:
        hub, source = EventHub(), FakeSource()
        feeds = LeaderboardFeeds(hub, source)
        feed = feeds.attach(7)
        await asyncio.sleep(0.2)  # some polls of an unchanged database: nothing to compute
        assert source.polls >= 2 and source.updates == [] and feed.version == 0
        source.edits = 1  # written by another process
        version, _text = await asyncio.wait_for(feed.wait_newer(0), 2)
        assert version == 1 and source.updates == [(7, (0, 0))]
        assert feed.laps_after(0) is not None and feed.laps_after(0)[0].version == (0, 1)
        feeds.detach(feed)

    asyncio.run(main())


def test_the_on_track_list_is_pushed_when_it_changes() -> None:
    async def main() -> None:
        hub, source = EventHub(), FakeSource()
        feeds = LeaderboardFeeds(hub, source)
        feed = feeds.attach(3)
        await asyncio.sleep(0.2)
        assert (feed.track_version, feed.track_json) == (1, "[]")
        source.track[3] = '[{"car_id": "c1", "number": 7}]'
        await asyncio.sleep(0.2)
        assert (feed.track_version, feed.track_json) == (2, '[{"car_id": "c1", "number": 7}]')
        feeds.detach(feed)
        await asyncio.sleep(0.1)
        polls = source.polls
        await asyncio.sleep(0.2)
        assert source.polls == polls, "the poll stops with the last feed"

    asyncio.run(main())


def test_lap_pushes_are_kept_for_streams_a_little_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "COALESCE_S", 0.001)

    async def main() -> None:
        hub, source = EventHub(), FakeSource()
        feeds = LeaderboardFeeds(hub, source)
        feed = feeds.attach(5)
        await asyncio.sleep(0.02)
        for _ in range(feed_module.LAPS_BACKLOG + 3):
            source.laps += 1
            hub.publish(5, {"type": "lap"})
            seq = feed.laps_seq
            while feed.laps_seq == seq:
                await asyncio.sleep(0.01)
        assert [push.seq for push in feed.laps_after(feed.laps_seq - 2)] == [feed.laps_seq - 1, feed.laps_seq]
        assert feed.laps_after(feed.laps_seq) == []
        assert feed.laps_after(1) is None, "too far behind: the stream must catch up by itself"
        feeds.detach(feed)

    asyncio.run(main())


def test_streams_end_when_the_hub_closes() -> None:
    async def main() -> None:
        hub = EventHub()
        feed = LeaderboardFeeds(hub, FakeSource()).attach(5)
        waiter = asyncio.ensure_future(feed.wait_newer(0))
        changes = asyncio.ensure_future(feed.wait_change(feed.position()))
        await asyncio.sleep(0.05)
        hub.close()
        assert await asyncio.wait_for(waiter, 2) is None
        assert await asyncio.wait_for(changes, 2) is False

    asyncio.run(main())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.3", (12, 3)),
        ("0.0", (0, 0)),
        (None, None),
        ("", None),
        ("12", None),
        ("-1.2", None),
        ("1.2.3", None),
    ],
)
def test_a_data_version_from_a_browser_is_parsed_or_ignored(text: str | None, expected: object) -> None:
    assert parse_version(text) == expected


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


def test_no_leaderboard_is_computed_for_lap_pages_alone() -> None:
    async def main() -> None:
        hub, source = EventHub(), FakeSource()
        feeds = LeaderboardFeeds(hub, source)
        feed = feeds.attach(8, board=False)
        await asyncio.sleep(0.05)
        source.laps = 1
        hub.publish(8, {"type": "lap"})
        await asyncio.sleep(0.2)
        assert feed.laps_seq == 1 and feed.computations == 0 and feed.json is None
        board_stream = feeds.attach(8)
        source.laps = 2
        hub.publish(8, {"type": "lap"})
        await asyncio.wait_for(feed.wait_newer(0), 2)
        assert feed.computations == 1
        feeds.detach(board_stream)
        feeds.detach(feed, board=False)
        assert feeds.get(8) is None

    asyncio.run(main())

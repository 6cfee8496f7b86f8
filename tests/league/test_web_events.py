"""EventHub: publish from a foreign thread, receive in asyncio; fan-out; bounded slow subscribers; close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from league_server.events import RESYNC, EventHub, SubscriberLimitError


async def _next(sub, timeout_s: float = 2.0) -> dict:
    return await asyncio.wait_for(sub.__anext__(), timeout_s)


def test_publish_from_a_thread_reaches_the_asyncio_subscriber() -> None:
    async def main() -> list[dict]:
        hub = EventHub()
        async with hub.subscribe(7) as sub:

            def mqtt_thread() -> None:
                for lap in range(3):
                    hub.publish(7, {"type": "lap", "lap_id": lap, "thread": threading.current_thread().name})

            worker = threading.Thread(target=mqtt_thread, name="mqtt-like")
            worker.start()
            worker.join()
            got = [await _next(sub) for _ in range(3)]
        assert hub.subscriber_count() == 0
        return got

    got = asyncio.run(main())
    assert [e["lap_id"] for e in got] == [0, 1, 2]
    assert {e["thread"] for e in got} == {"mqtt-like"}


def test_events_go_only_to_the_subscribers_of_that_race_and_to_all_of_them() -> None:
    async def main() -> None:
        hub = EventHub()
        subs = [hub.subscribe(1) for _ in range(50)]
        other = hub.subscribe(2)
        assert hub.subscriber_count(1) == 50
        threading.Thread(target=hub.publish, args=(1, {"type": "lap", "n": 1})).start()
        for sub in subs:
            assert (await _next(sub))["n"] == 1
        with pytest.raises(asyncio.TimeoutError):
            await _next(other, timeout_s=0.2)
        for sub in [*subs, other]:
            await sub.aclose()
        assert hub.subscriber_count() == 0

    asyncio.run(main())


def test_the_published_dict_is_copied_so_the_caller_may_reuse_it() -> None:
    async def main() -> None:
        hub = EventHub()
        sub = hub.subscribe(1)
        event = {"type": "lap", "n": 1}
        hub.publish(1, event)
        event["n"] = 2
        assert (await _next(sub))["n"] == 1

    asyncio.run(main())


def test_a_slow_subscriber_is_bounded_and_told_to_resync() -> None:
    async def main() -> None:
        hub = EventHub(queue_size=8)
        slow = hub.subscribe(3)
        fast = hub.subscribe(3)

        burst_read = threading.Semaphore(0)

        def flood() -> None:
            # Bursts of 5 (< queue_size): the fast reader keeps up, the slow one never reads.
            for n in range(1000):
                hub.publish(3, {"type": "lap", "n": n})
                if n % 5 == 4:
                    burst_read.acquire(timeout=5)

        worker = threading.Thread(target=flood)
        worker.start()
        fast_seen = []
        while len(fast_seen) < 1000:
            fast_seen.append((await _next(fast))["n"])
            if len(fast_seen) % 5 == 0:
                burst_read.release()
        worker.join()
        await asyncio.sleep(0.05)  # let the last call_soon_threadsafe callbacks run
        assert fast_seen == list(range(1000)), "a subscriber that keeps up loses nothing"
        assert slow.pending == 8, "the slow subscriber holds at most queue_size events"
        first = await _next(slow)
        assert first == {"type": RESYNC, "race_id": 3, "dropped": 992}
        rest = [(await _next(slow))["n"] for _ in range(8)]
        assert rest == list(range(992, 1000)), "the newest events are kept, the oldest dropped"
        assert slow.dropped_total == 992

    asyncio.run(main())


def test_close_ends_subscriptions_and_later_publishes_are_ignored() -> None:
    async def main() -> None:
        hub = EventHub()
        sub = hub.subscribe(1)
        hub.publish(1, {"type": "lap", "n": 1})
        await asyncio.sleep(0)
        hub.close()
        hub.publish(1, {"type": "lap", "n": 2})
        seen = [event["n"] async for event in sub]
        assert seen == [1]
        late = hub.subscribe(1)
        assert [event async for event in late] == []

    asyncio.run(main())


def test_waiting_can_be_cancelled_without_losing_the_next_event() -> None:
    async def main() -> None:
        hub = EventHub()
        sub = hub.subscribe(1)
        with pytest.raises(asyncio.TimeoutError):
            await _next(sub, timeout_s=0.05)
        hub.publish(1, {"type": "lap", "n": 1})
        assert (await _next(sub))["n"] == 1

    asyncio.run(main())


def test_publish_to_a_loop_that_has_closed_does_not_raise() -> None:
    hub = EventHub()

    async def main() -> None:
        hub.subscribe(1)

    asyncio.run(main())  # the loop closes with the subscription still registered
    hub.publish(1, {"type": "lap"})
    hub.close()


@pytest.mark.parametrize(
    ("race_id", "event", "match"),
    [("1", {}, "race_id: expected an int"), (True, {}, "race_id"), (1, [1], "event: expected a dict")],
)
def test_bad_publish_arguments_are_named(race_id, event, match) -> None:
    with pytest.raises(TypeError, match=match):
        EventHub().publish(race_id, event)


def test_subscribe_outside_a_running_loop_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError):
        EventHub().subscribe(1)


def test_the_number_of_subscriptions_is_capped() -> None:
    async def main() -> None:
        hub = EventHub(max_subscribers=3)
        subs = [hub.subscribe(race) for race in (1, 2, 2)]
        assert not hub.has_room()
        with pytest.raises(SubscriberLimitError, match="limit is 3"):
            hub.subscribe(1)
        await subs[0].aclose()
        assert hub.has_room()
        hub.subscribe(1)

    asyncio.run(main())


@pytest.mark.parametrize("kwargs", [{"queue_size": 0}, {"max_subscribers": 0}, {"queue_size": True}])
def test_bad_hub_sizes_are_named(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EventHub(**kwargs)

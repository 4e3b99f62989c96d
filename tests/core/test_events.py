"""`EventHub` on its own: numbering, history, follow without gap or duplicate, and resync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hyperhive.core.events import EventHub, HiveEvent, ResyncNeeded


async def take(follow: AsyncIterator[HiveEvent], n: int) -> list[HiveEvent]:
    return [await asyncio.wait_for(anext(follow), 10) for _ in range(n)]


def test_seq_counts_up_by_one_and_history_keeps_the_newest() -> None:
    hub = EventHub(ring_size=3)
    for i in range(5):
        assert hub.publish("e", i=i).seq == i + 1
    assert hub.last_seq == 5
    assert [e.seq for e in hub.history()] == [3, 4, 5]
    assert [e.seq for e in hub.history(4)] == [5]
    assert hub.history(5) == []


async def test_follow_replays_then_streams_without_gap_or_duplicate() -> None:
    hub = EventHub()
    hub.publish("a")
    hub.publish("b")
    follow = hub.follow(1)
    try:
        first = await take(follow, 1)  # replay of seq 2; the follower is subscribed now
        hub.publish("c")
        hub.publish("d")
        rest = await take(follow, 2)
        assert [e.kind for e in first + rest] == ["b", "c", "d"]
        assert [e.seq for e in first + rest] == [2, 3, 4]
    finally:
        await follow.aclose()
    assert hub.subscribers == 0


async def test_follow_from_before_the_ring_resyncs() -> None:
    hub = EventHub(ring_size=2)
    for _ in range(5):
        hub.publish("e")
    follow = hub.follow(1)  # seqs 2 and 3 are gone
    with pytest.raises(ResyncNeeded):
        await follow.__anext__()
    # from 0 ("whatever you keep") or from the oldest kept seq's predecessor: no resync
    assert [e.seq for e in await take(hub.follow(0), 2)] == [4, 5]
    assert [e.seq for e in await take(hub.follow(3), 2)] == [4, 5]


async def test_follow_from_a_seq_the_hub_never_reached_resyncs() -> None:
    """A `since` from an earlier daemon run (seq restarts at 1) is ahead of this hub: the
    follower must be told to resync, not silently skip every event up to its old seq."""
    hub = EventHub()
    hub.publish("after-restart")
    follow = hub.follow(500)
    try:
        with pytest.raises(ResyncNeeded):
            await asyncio.wait_for(follow.__anext__(), 10)
    finally:
        await follow.aclose()


async def test_a_follower_that_falls_behind_its_queue_resyncs() -> None:
    hub = EventHub(queue_size=2)
    follow = hub.follow(0)
    first = asyncio.ensure_future(follow.__anext__())
    hub.publish("one")
    assert (await first).kind == "one"
    for _ in range(5):
        hub.publish("flood")
    with pytest.raises(ResyncNeeded):
        await follow.__anext__()
    assert hub.subscribers == 0


def test_a_failing_listener_does_not_stop_publish_or_the_others() -> None:
    hub = EventHub()
    seen: list[str] = []

    def bad(ev: HiveEvent) -> None:
        raise RuntimeError("listener broke")

    hub.add_listener(bad)
    hub.add_listener(lambda ev: seen.append(ev.kind))
    assert hub.publish("x").seq == 1
    assert seen == ["x"]

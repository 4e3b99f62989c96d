"""`EventRing`, behind both the dashboard hub and each agent's event bus: a follower sees every
event once, in order, with no gap; when it cannot (it fell behind, or the ring lost what it asks
for) it is told to resync, never left silent; `close` ends followers normally."""

from __future__ import annotations

import asyncio

import pytest

from hyperhive.eventring import EventRing, ResyncNeeded


def _ring(ring_size: int = 10, queue_size: int = 100) -> EventRing[int]:
    return EventRing(lambda n: n, ring_size=ring_size, queue_size=queue_size)


async def test_a_follower_gets_the_backlog_then_live_events_then_the_end() -> None:
    ring = _ring()
    for n in (1, 2, 3):
        ring.append(n)
    got: list[int] = []

    async def follow() -> None:
        async for n in ring.follow(1):
            got.append(n)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)  # the follower subscribes and replays
    ring.append(4)
    ring.close()
    await asyncio.wait_for(task, 30)
    assert got == [2, 3, 4]


async def test_a_lagging_follower_is_dropped_and_told_to_resync() -> None:
    ring = _ring(queue_size=3)
    stream = ring.follow(0)
    first = asyncio.ensure_future(anext(stream))
    ring.append(1)
    assert await asyncio.wait_for(first, 30) == 1
    for n in range(2, 7):  # 2, 3, 4 queue; 5 overflows: dropped, its queue freed at once
        ring.append(n)
    assert ring.subscribers == 0 and ring.queued() == 1  # just the resync mark
    with pytest.raises(ResyncNeeded):
        await asyncio.wait_for(anext(stream), 30)


async def test_asking_for_events_the_ring_no_longer_keeps_is_a_resync() -> None:
    ring = _ring(ring_size=3)
    for n in range(1, 8):
        ring.append(n)
    assert [e for e in ring.history(0)] == [5, 6, 7]
    with pytest.raises(ResyncNeeded):
        await anext(ring.follow(2))
    stream = ring.follow(4)  # nothing lost: 5, 6, 7
    assert await anext(stream) == 5
    await stream.aclose()

"""The agent's event bus: a page stream that falls behind is told to start over (the dashboard
hub's behaviour, one ring for both), instead of going silent. Real sqlite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hyperhive.eventring import ResyncNeeded
from hyperhive.harness.events import EventBus


async def test_a_lagging_follower_resyncs_instead_of_going_silent(short_tmp: Path) -> None:
    async with EventBus(short_tmp, queue_size=4) as bus:
        stream = bus.follow(bus.last_id)
        first = asyncio.ensure_future(anext(stream))
        bus.publish("state", state="waiting")
        assert (await asyncio.wait_for(first, 30)).kind == "state"
        for i in range(10):  # the page is stuck: its queue overflows
            bus.publish("note", i=i)
        with pytest.raises(ResyncNeeded):  # a hang here was the bug
            await asyncio.wait_for(anext(stream), 30)


async def test_closing_the_bus_ends_its_followers(short_tmp: Path) -> None:
    bus = EventBus(short_tmp)
    await bus.open()
    got: list[str] = []

    async def follow() -> None:
        async for ev in bus.follow(0):
            got.append(ev.kind)

    task = asyncio.create_task(follow())
    bus.publish("state", state="idle")
    await bus.aclose()
    await asyncio.wait_for(task, 30)
    assert got == ["state"]

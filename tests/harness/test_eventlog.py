"""The agent event log contract, against every backend (sqlite file, in-memory fake), and the
bus over it: ids continue across a restart from whatever the log kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyperhive.harness.eventlog import AgentEvent, EventLog, MemoryEventLog, SqliteEventLog
from hyperhive.harness.events import RING, EventBus

TS = "2026-01-01T00:00:00.000000Z"


@pytest.fixture(params=["sqlite", "memory"])
async def log(request: pytest.FixtureRequest, short_tmp: Path) -> AsyncIterator[EventLog]:
    backend: EventLog = SqliteEventLog(short_tmp) if request.param == "sqlite" else MemoryEventLog()
    await backend.open()
    try:
        yield backend
    finally:
        await backend.aclose()
        await backend.aclose()  # idempotent


async def test_tail_is_the_newest_oldest_first(log: EventLog) -> None:
    assert await log.tail(10) == []
    for i in (1, 2, 3, 4):
        await log.append(AgentEvent(i, TS, "note", {"text": f"t{i}", "n": i}))
    assert [e.id for e in await log.tail(2)] == [3, 4]
    assert [e.id for e in await log.tail(10)] == [1, 2, 3, 4]
    assert (await log.tail(1))[0] == AgentEvent(4, TS, "note", {"text": "t4", "n": 4})


async def test_a_payload_round_trips_as_json(log: EventLog) -> None:
    await log.append(AgentEvent(1, TS, "tool", {"path": Path("/state/x"), "list": (1, 2)}))
    (ev,) = await log.tail(1)
    assert ev.payload == {"path": "/state/x", "list": [1, 2]}


async def test_an_id_is_stored_once(log: EventLog) -> None:
    await log.append(AgentEvent(1, TS, "a", {}))
    with pytest.raises(Exception):  # noqa: B017 - each backend has its own integrity error
        await log.append(AgentEvent(1, TS, "b", {}))
    assert [e.kind for e in await log.tail(10)] == ["a"]


async def test_the_bus_continues_ids_from_the_log() -> None:
    log = MemoryEventLog()
    async with EventBus(log=log) as bus:
        for i in range(RING + 5):
            bus.publish("note", i=i)
    async with EventBus(log=log) as again:
        assert again.last_id == RING + 5
        assert [e.id for e in again.history()][:1] == [6]  # the ring holds the newest RING
        assert again.publish("note").id == RING + 6


async def test_a_failing_log_never_fails_publish() -> None:
    class Broken(MemoryEventLog):
        async def append(self, ev: AgentEvent) -> None:
            raise OSError("disk full")

    async with EventBus(log=Broken()) as bus:
        assert bus.publish("note", text="still here").id == 1
        assert [e.kind for e in bus.history()] == ["note"]

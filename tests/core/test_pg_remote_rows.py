"""A message committed on another node reaches this node's unread index through its NOTIFY,
which carries the row (id, generation, sender, kind, time, trace parent, body): a parked recv
takes it without reading the store. Rows a NOTIFY cannot carry (over PostgreSQL's 8,000-byte
payload limit) fall back to the index being dropped and re-read. Either way the message is
the same, byte for byte, as the store has it, and none is delivered twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path

import pytest

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.core.records import Message
from hyperhive.core.store.pg.messages import PgMessageStore
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually

WITHOUT = ("dashboard", "lifecycle")


class _Reads:
    """Counts the store reads a broker makes for one recipient's inbox."""

    def __init__(self, hive: Hive) -> None:
        store = hive.broker.store
        assert isinstance(store, PgMessageStore)
        self.n = 0
        orig = store.undelivered

        async def counted(
            recipient: str, limit: int, exclude: Collection[int] = ()
        ) -> tuple[list[Message], int]:
            self.n += 1
            return await orig(recipient, limit, exclude)

        store.undelivered = counted  # type: ignore[method-assign]


@pytest.fixture
async def two(
    short_tmp: Path, hive_config: HiveConfig, pg_url: Callable[[], str]
) -> AsyncIterator[tuple[Hive, Hive]]:
    url = pg_url()
    async with build_hive(
        HivePaths(short_tmp / "a"), hive_config, database=url, without=WITHOUT
    ) as a:
        await a.spawn("bob")
        async with build_hive(
            HivePaths(short_tmp / "b"), hive_config, database=url, without=WITHOUT
        ) as b:
            yield a, b


async def _parked(b: Hive) -> asyncio.Task[object]:
    first = await b.broker.recv("bob", 0, 10)  # loads the (empty) index
    assert first.messages == []
    task: asyncio.Task[object] = asyncio.create_task(b.broker.recv("bob", 600, 10))
    await eventually(lambda: "bob" in b.broker.wakeups.waiting())
    return task


async def test_a_remote_commit_is_taken_without_a_store_read(two: tuple[Hive, Hive]) -> None:
    a, b = two
    reads = _Reads(b)
    parked = await _parked(b)
    before = reads.n
    body = "line one\nline two: ünïcode ✓\n\n" + "x" * 2000
    [sent] = await a.broker.send("operator", "bob", body, trace_parent="00-abc-def-01")
    lease = await asyncio.wait_for(parked, 60)  # a hang guard: it wakes at once
    assert reads.n == before  # the NOTIFY carried the row
    [got] = lease.messages  # type: ignore[attr-defined]
    assert got == sent
    [stored] = await a.broker.store.recent("bob", 1)
    assert got == stored
    await b.broker.ack(lease)  # type: ignore[arg-type]
    assert await a.broker.unread("bob") == 0


async def test_many_remote_commits_arrive_in_order_once(two: tuple[Hive, Hive]) -> None:
    a, b = two
    reads = _Reads(b)
    parked = await _parked(b)
    before = reads.n
    sent = []
    for i in range(40):
        sent += await a.broker.send("operator", "bob", f"m{i}")
    first = await asyncio.wait_for(parked, 60)
    got: list[Message] = list(first.messages)  # type: ignore[attr-defined]
    b.broker.ack_soon(first)  # type: ignore[arg-type]
    while len(got) < 40:
        lease = await asyncio.wait_for(b.broker.recv("bob", 600, 7), 60)
        got += lease.messages
        b.broker.ack_soon(lease)
    await b.broker.drain()
    assert reads.n == before
    assert sorted(m.id for m in got) == [m.id for m in sent]  # each once, none lost
    assert await a.broker.unread("bob") == 0
    assert (await b.broker.recv("bob", 0, 10)).messages == []


async def test_a_row_too_big_for_a_notify_is_read_from_the_store(
    two: tuple[Hive, Hive],
) -> None:
    a, b = two
    reads = _Reads(b)
    parked = await _parked(b)
    before = reads.n
    [sent] = await a.broker.send("operator", "bob", "y" * 9000)
    lease = await asyncio.wait_for(parked, 60)
    assert reads.n > before  # dropped index, re-read
    assert lease.messages == [sent]  # type: ignore[attr-defined]


async def test_a_late_notify_for_an_acknowledged_message_is_not_delivered_again(
    two: tuple[Hive, Hive],
) -> None:
    """The race a remote push has and a local one cannot: a load reads a row before that row's
    NOTIFY is handled; the message is taken and acknowledged; then the NOTIFY arrives."""
    a, b = two
    [sent] = await a.broker.send("operator", "bob", "early")
    lease = await asyncio.wait_for(b.broker.recv("bob", 600, 10), 60)
    assert lease.messages == [sent]
    await b.broker.ack(lease)
    b.broker.remote_rows([sent])  # the same NOTIFY, handled late
    assert (await b.broker.recv("bob", 0, 10)).messages == []

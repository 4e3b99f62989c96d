"""The broker's in-memory unread index: kept in step with the database through the store's
on_commit hook, bounded (a big backlog falls back to the store and comes back), and acks
batched. A real hive (sqlite, sockets) throughout."""

from __future__ import annotations

import asyncio
import json

import pytest

from hyperhive.core import broker as broker_mod
from hyperhive.core.hive import Hive
from hyperhive.names import OPERATOR
from tests.support.waiting import eventually


async def _bodies(hive: Hive, name: str, n: int = 32) -> list[str]:
    lease = await hive.broker.recv(name, 0, n)
    await hive.broker.ack(lease)
    return [m.body for m in lease.messages]


async def test_index_serves_oldest_first_and_matches_the_store(hive: Hive) -> None:
    await hive.spawn("alice")
    for i in range(3):
        await hive.broker.send(OPERATOR, "alice", f"m{i}")
    assert await _bodies(hive, "alice", 2) == ["m0", "m1"]  # loads the index
    for i in range(3, 5):
        await hive.broker.send(OPERATOR, "alice", f"m{i}")  # indexed by the commit hook
    assert await _bodies(hive, "alice") == ["m2", "m3", "m4"]
    assert await hive.broker.unread("alice") == 0  # the store agrees: all delivered


async def test_a_cancelled_sender_still_indexes_its_committed_message(hive: Hive) -> None:
    """The write commits even if its caller is cancelled; the commit hook indexes it, so the
    message is neither lost to recv nor handed out twice."""
    await hive.spawn("alice")
    assert await _bodies(hive, "alice") == []  # index loaded (empty)
    task = asyncio.ensure_future(hive.broker.send(OPERATOR, "alice", "survivor"))
    await asyncio.sleep(0)  # queued to the writer
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: hive.broker._inboxes["alice"].pushes == 1, what="commit hook")
    assert await _bodies(hive, "alice") == ["survivor"]
    assert await _bodies(hive, "alice") == []


async def test_a_backlog_over_the_limit_falls_back_to_the_store_and_returns(
    hive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_mod, "INDEX_MAX_MESSAGES", 4)
    await hive.spawn("alice")
    assert await _bodies(hive, "alice") == []  # indexed, empty
    for i in range(10):
        await hive.broker.send(OPERATOR, "alice", f"m{i}")
    inbox = hive.broker._inboxes["alice"]
    assert inbox.queue is None  # dropped at the 5th message: memory stays bounded
    got = []
    while len(got) < 10:
        batch = await _bodies(hive, "alice", 3)
        assert batch, "nothing lost"
        got += batch
    assert got == [f"m{i}" for i in range(10)]
    await hive.broker.send(OPERATOR, "alice", "after")
    assert await _bodies(hive, "alice") == ["after"]
    assert inbox.queue is not None  # indexed again once the backlog shrank


async def test_release_puts_messages_back_in_order(hive: Hive) -> None:
    await hive.spawn("alice")
    for i in range(4):
        await hive.broker.send(OPERATOR, "alice", f"m{i}")
    first = await hive.broker.recv("alice", 0, 2)
    second = await hive.broker.recv("alice", 0, 1)
    hive.broker.release(first)
    assert await _bodies(hive, "alice") == ["m0", "m1", "m3"]
    await hive.broker.ack(second)
    assert await _bodies(hive, "alice") == []


async def test_mark_read_removes_from_the_index(hive: Hive) -> None:
    await hive.spawn("alice")
    assert await _bodies(hive, "alice") == []
    stored = await hive.broker.send(OPERATOR, "alice", "read elsewhere")
    await hive.broker.send(OPERATOR, "alice", "still unread")
    await hive.broker.mark_read("alice", [stored[0].id])
    assert await _bodies(hive, "alice") == ["still unread"]


async def test_acks_of_one_loop_pass_are_one_write(hive: Hive) -> None:
    names = [f"a{i}" for i in range(5)]
    for n in names:
        await hive.spawn(n)
        await hive.broker.send(OPERATOR, n, f"to {n}")
    writes = 0
    original = hive.broker.store.mark_delivered

    async def counting(*a: object, **k: object) -> None:
        nonlocal writes
        writes += 1
        await original(*a, **k)  # type: ignore[arg-type]

    hive.broker.store.mark_delivered = counting  # type: ignore[method-assign]
    leases = [await hive.broker.recv(n, 0, 8) for n in names]
    for lease in leases:
        hive.broker.ack_soon(lease)
    await hive.broker.drain()
    assert writes == 1
    assert [await hive.broker.unread(n) for n in names] == [0] * 5


async def test_a_half_closed_client_still_gets_its_parked_answer(hive: Hive) -> None:
    """EOF is not a vanished client: a one-shot client may shut its write side after the
    request and wait for the answer (a client that is really gone makes the reply's write
    fail, which re-queues: test_broker.test_connection_killed_during_recv_redelivers). Having
    shut its write side it can never acknowledge, so the message is offered again."""
    await hive.spawn("alice")
    reader, writer = await asyncio.open_unix_connection(str(hive.paths.agent_sock("alice")))
    writer.write(b'{"cmd":"recv","wait_seconds":60}\n')
    writer.write_eof()
    await eventually(lambda: hive.broker.wakeups._waiters.get("alice"), what="parked recv")
    await hive.broker.send(OPERATOR, "alice", "for you")
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert json.loads(line)["messages"][0]["body"] == "for you"
    again = await hive.broker.recv("alice", 10, 8)
    assert [m.body for m in again.messages] == ["for you"]
    await hive.broker.ack(again)
    await eventually(lambda: _unread(hive, "alice"), what="ack")


async def _unread(hive: Hive, name: str) -> bool:
    return await hive.broker.unread(name) == 0

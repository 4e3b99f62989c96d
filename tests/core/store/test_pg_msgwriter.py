"""The PostgreSQL broker writes (`core/store/pg/msgwriter.py`): sends and acks queued together
go out as one statement, a bad request fails alone, and a pool full of connections the
database cut is retried transparently (nothing had been sent on them), exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from hyperhive.core.records import Message, NewMessage
from hyperhive.core.store.pg import msgwriter
from hyperhive.core.store.pg.db import PgDb
from hyperhive.core.store.pg.messages import PgMessageStore
from hyperhive.errors import BadRequest
from tests.support.postgres import PgCluster
from tests.support.waiting import eventually

AT = "2026-01-01T00:00:00.000000Z"
AT2 = "2026-01-01T00:00:01.000000Z"


@pytest.fixture
async def store(pg_cluster: PgCluster) -> AsyncIterator[PgMessageStore]:
    db = PgDb(pg_cluster.new_database())
    await db.open()
    try:
        yield PgMessageStore(db, "me")
    finally:
        await db.aclose()


def _count_statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    orig = msgwriter._execute

    async def counted(conn: msgwriter.Conn, params: dict[str, object]) -> list[tuple[object]]:
        calls.append(len(params["s"]) + len(params["ai"]))  # type: ignore[arg-type]
        return await orig(conn, params)

    monkeypatch.setattr(msgwriter, "_execute", counted)
    return calls


async def test_sends_and_acks_of_one_moment_are_one_statement(
    store: PgMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    [old] = await store.insert_messages([NewMessage("a", "bob", "old")], AT)
    calls = _count_statements(monkeypatch)
    sent = await asyncio.gather(
        *(store.insert_messages([NewMessage("a", "bob", f"m{i}")], AT) for i in range(10)),
        store.mark_delivered([old.id], AT2),
    )
    assert calls == [11]
    ids = [m.id for ms in sent[:10] for m in ms]  # type: ignore[union-attr]
    assert ids == sorted(ids) and len(set(ids)) == 10
    rows, total = await store.undelivered("bob", 100)
    assert total == 10 and [r.body for r in rows] == [f"m{i}" for i in range(10)]
    oldest = (await store.recent("bob", 11))[-1]
    assert oldest.id == old.id and oldest.delivered_at == AT2


async def test_a_bad_send_fails_alone(store: PgMessageStore) -> None:
    hooked: list[list[Message]] = []
    results = await asyncio.gather(
        store.insert_messages([NewMessage("a", "bob", "one")], AT, on_commit=hooked.append),
        store.insert_messages([NewMessage("a", "bob", "nul \x00 here")], AT),
        store.insert_messages([NewMessage("a", "bob", "two")], AT, on_commit=hooked.append),
        return_exceptions=True,
    )
    assert isinstance(results[1], BadRequest)
    assert [[m.body for m in ms] for ms in hooked] == [["one"], ["two"]]
    rows, _ = await store.undelivered("bob", 10)
    assert [r.body for r in rows] == ["one", "two"]


async def test_connections_the_database_cut_are_replaced_before_the_send(
    store: PgMessageStore, pg_cluster: PgCluster
) -> None:
    await asyncio.gather(
        *(store.insert_messages([NewMessage("a", "bob", "warm")], AT) for _ in range(4))
    )  # several pooled connections
    dbname = urlsplit(store.db.url).path.lstrip("/")
    await asyncio.to_thread(pg_cluster.terminate_backends, dbname)

    async def all_cut() -> bool:  # every idle pooled connection has its FATAL waiting
        return all(msgwriter._dead(c) for c in list(store.db.pool._pool))

    await eventually(all_cut)
    [m] = await store.insert_messages([NewMessage("a", "bob", "after the cut")], AT)
    rows, _ = await store.undelivered("bob", 10)
    assert [r.id for r in rows if r.body == "after the cut"] == [m.id]  # once, not failed


async def test_an_ack_alone_waits_for_a_send_to_carry_it(
    store: PgMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    [old] = await store.insert_messages([NewMessage("a", "bob", "old")], AT)
    calls = _count_statements(monkeypatch)
    store._writer.ack_linger = 600.0  # a hang guard, not a pace: the send below ends the wait
    acked = asyncio.create_task(store.mark_delivered([old.id], AT2))
    await eventually(lambda: store._writer._send_came is not None)
    assert calls == [] and not acked.done()
    [new] = await store.insert_messages([NewMessage("a", "bob", "new")], AT)
    await acked
    assert calls == [2]  # one statement: the ack rode along with the send
    rows, total = await store.undelivered("bob", 10)
    assert total == 1 and rows[0].id == new.id


async def test_an_ack_with_no_send_coming_is_written_anyway(store: PgMessageStore) -> None:
    [m] = await store.insert_messages([NewMessage("a", "bob", "x")], AT)
    await store.mark_delivered([m.id], AT2)
    assert await store.count_undelivered("bob") == 0

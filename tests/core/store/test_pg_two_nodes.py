"""Two nodes on one PostgreSQL database (two pools, as two `hive serve` processes have):
a resolution is decided once in the database even when both try at the same moment, ids stay
unique and monotonic across them, and migrations run once whoever starts first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from hyperhive.core.records import NewMessage
from hyperhive.core.store.pg.approvals import PgApprovalStore
from hyperhive.core.store.pg.db import PgDb
from hyperhive.core.store.pg.followups import PgQuestionStore
from hyperhive.core.store.pg.messages import PgMessageStore
from hyperhive.errors import BadRequest
from hyperhive.wire.approvals import ApprovalStatus

AT = "2026-01-01T00:00:00.000000Z"


@pytest.fixture
async def two_nodes(pg_url: Callable[[], str]) -> AsyncIterator[tuple[PgDb, PgDb]]:
    url = pg_url()
    a, b = PgDb(url), PgDb(url)
    await asyncio.gather(a.open(), b.open())  # both migrate at once: the advisory lock orders
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_two_approvers_at_once_one_wins(two_nodes: tuple[PgDb, PgDb]) -> None:
    a, b = (PgApprovalStore(db) for db in two_nodes)
    for _ in range(20):
        row = await a.insert(agent="x", kind="spawn", requested_by="operator", requested_at=AT)
        results = await asyncio.gather(
            a.decide(row.id, ApprovalStatus.APPROVED, AT, "a"),
            b.decide(row.id, ApprovalStatus.DENIED, AT, "b"),
        )
        assert sorted(won for _, won in results) == [False, True]
        final = await a.get(row.id)
        assert final is not None
        winner = next(r for r, won in results if won)
        assert final.status == winner.status and final.note == winner.note


async def test_a_question_answered_from_two_nodes_resolves_once(
    two_nodes: tuple[PgDb, PgDb],
) -> None:
    a, b = (PgQuestionStore(db) for db in two_nodes)
    for _ in range(20):
        q = await a.insert("alice", "?", [], False, AT, None)
        results = await asyncio.gather(
            a.resolve(q.id, AT, lambda _row: "from a"),
            b.resolve(q.id, AT, lambda _row: "from b"),
        )
        assert sorted(won for _, won in results) == [False, True]
        [(both_see)] = {r.answer for r, _ in results}
        assert both_see in ("from a", "from b")


async def test_ids_from_two_nodes_are_unique_and_grow(two_nodes: tuple[PgDb, PgDb]) -> None:
    a, b = (PgMessageStore(db, origin) for db, origin in zip(two_nodes, "ab", strict=True))

    async def burst(store: PgMessageStore, tag: str) -> list[int]:
        ids = []
        for i in range(30):
            [m] = await store.insert_messages([NewMessage(tag, "bob", f"{tag}{i}")], AT)
            ids.append(m.id)
        return ids

    ids_a, ids_b = await asyncio.gather(burst(a, "a"), burst(b, "b"))
    assert ids_a == sorted(ids_a) and ids_b == sorted(ids_b)
    assert len(set(ids_a) | set(ids_b)) == 60
    rows, total = await a.undelivered("bob", 100)
    assert total == 60 and [r.id for r in rows] == sorted(ids_a + ids_b)


async def test_a_nul_character_is_a_bad_request_not_a_crash(
    two_nodes: tuple[PgDb, PgDb],
) -> None:
    store = PgMessageStore(two_nodes[0], "a")
    with pytest.raises(BadRequest):
        await store.insert_messages([NewMessage("alice", "bob", "nul \x00 here")], AT)
    [m] = await store.insert_messages([NewMessage("alice", "bob", "fine")], AT)
    assert m.body == "fine"  # the pool and its connection are fine afterwards

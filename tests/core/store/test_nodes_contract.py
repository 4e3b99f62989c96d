"""The nodes store's contract, on every backend (memory, sqlite, PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hyperhive.core.store.nodes import MemoryNodeStore, NodeRow, NodeStore
from hyperhive.core.store.nodes_pg import PgNodeStore
from hyperhive.core.store.nodes_sqlite import SqliteNodeStore
from hyperhive.core.store.sqlite_migrations import MIGRATIONS
from hyperhive.db import Database
from hyperhive.errors import Conflict


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, short_tmp: Path) -> AsyncIterator[NodeStore]:
    if request.param == "memory":
        yield MemoryNodeStore()
    elif request.param == "sqlite":
        async with Database(short_tmp / "hive.db", MIGRATIONS) as db:
            yield SqliteNodeStore(db)
    else:
        pg = PgNodeStore(request.getfixturevalue("pg_url")())
        await pg.open()
        try:
            yield pg
        finally:
            await pg.aclose()


async def test_pg_schema_is_created_once_by_concurrent_nodes(pg_url: Callable[[], str]) -> None:
    url = pg_url()
    stores = [PgNodeStore(url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))  # the advisory lock serialises them
    try:
        secrets = await asyncio.gather(*(s.secret() for s in stores))
        assert len(set(secrets)) == 1
    finally:
        for s in stores:
            await s.aclose()


async def test_heartbeat_upserts_one_row_per_node(store: NodeStore) -> None:
    await store.heartbeat(NodeRow("b", 10.0, 1.0, load=0.5, mem_free_mb=100, agents=2))
    await store.heartbeat(NodeRow("a", 11.0, 1.0, peer_url="http://x:1"))
    await store.heartbeat(NodeRow("b", 12.0, 1.0, load=0.7, mem_free_mb=90, agents=3))
    rows = await store.nodes()
    assert [r.name for r in rows] == ["a", "b"]
    assert rows[1] == NodeRow("b", 12.0, 1.0, load=0.7, mem_free_mb=90, agents=3)
    assert rows[0].peer_url == "http://x:1"


async def test_placement_is_decided_once(store: NodeStore) -> None:
    await store.place("alice", "a", expect_free=True)
    with pytest.raises(Conflict, match="on node a"):
        await store.place("alice", "b", expect_free=True)
    assert await store.placements() == {"alice": "a"}
    await store.place("alice", "b")  # a move (not expect_free)
    assert await store.placements() == {"alice": "b"}
    await store.unplace("alice")
    await store.unplace("alice")  # idempotent
    assert await store.placements() == {}
    await store.place("alice", "a", expect_free=True)  # free again


async def test_secret_is_created_once(store: NodeStore) -> None:
    first = await store.secret()
    assert len(first) >= 32
    assert await store.secret() == first

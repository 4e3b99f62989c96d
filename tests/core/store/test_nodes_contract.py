"""The nodes store's contract, on every backend (memory, sqlite; PostgreSQL in
tests/core/test_nodes_pg.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyperhive.core.store.nodes import MemoryNodeStore, NodeRow, NodeStore
from hyperhive.core.store.nodes_sqlite import SqliteNodeStore
from hyperhive.core.store.sqlite_migrations import MIGRATIONS
from hyperhive.db import Database
from hyperhive.errors import Conflict


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, short_tmp: Path) -> AsyncIterator[NodeStore]:
    if request.param == "memory":
        yield MemoryNodeStore()
        return
    async with Database(short_tmp / "hive.db", MIGRATIONS) as db:
        yield SqliteNodeStore(db)


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

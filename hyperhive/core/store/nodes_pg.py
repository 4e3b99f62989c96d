"""PostgreSQL backend of the nodes store (`nodes.py`): the table every node of a hive across
hosts beats into. psycopg 3 (async) with a small pool of its own, from the hive's database
URL, and one LISTEN connection for `subscribe` (reconnecting while the database is away);
its three tables are created once, under a transaction-scoped advisory lock, by whichever
node opens first (the others wait for the lock, then find them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from hyperhive.core.store.nodes import NodeRow, NodeStore, new_secret
from hyperhive.errors import Conflict, Unavailable

logger = logging.getLogger(__name__)

CHANNEL = "hive_nodes"  # status rows of agents, pushed by the node that runs them
SCHEMA_LOCK = 0x6E6F646573  # "nodes": the advisory lock id of this schema's creation

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    load DOUBLE PRECISION NOT NULL DEFAULT 0,
    mem_free_mb BIGINT NOT NULL DEFAULT 0,
    agents INTEGER NOT NULL DEFAULT 0,
    peer_url TEXT NOT NULL DEFAULT '',
    dashboard_url TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS agent_nodes (
    agent TEXT PRIMARY KEY,
    node TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hive_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret TEXT NOT NULL
);
"""

COLUMNS = "name, heartbeat_at, started_at, load, mem_free_mb, agents, peer_url, dashboard_url"


class PgNodeStore(NodeStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._subscribers: list[Callable[[str], None]] = []
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def open(self) -> None:
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            self.url, min_size=1, max_size=2, open=False, kwargs={"autocommit": False}
        )
        await pool.open(wait=True, timeout=30)
        self._pool = pool
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            await conn.execute(SCHEMA)

    def subscribe(self, cb: Callable[[str], None]) -> None:
        self._subscribers.append(cb)
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen_forever(), name="nodes-listen"
            )

    async def publish(self, payload: str) -> None:
        async with self._p().connection() as conn:
            await conn.set_autocommit(True)  # one round trip, not BEGIN + NOTIFY + COMMIT
            try:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            finally:
                await conn.set_autocommit(False)

    async def _listen_forever(self) -> None:
        import psycopg

        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    async for note in conn.notifies():
                        for cb in list(self._subscribers):
                            cb(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: try again (nodes keep running)
                self.listening.clear()
                logger.warning("nodes listener: %r; reconnecting", exc)
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _p(self) -> Any:
        if self._pool is None:
            raise Unavailable("the nodes store is closed")
        return self._pool

    async def heartbeat(self, row: NodeRow) -> None:
        async with self._p().connection() as conn:
            await conn.execute(
                f"INSERT INTO nodes({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at,"
                " started_at = EXCLUDED.started_at, load = EXCLUDED.load,"
                " mem_free_mb = EXCLUDED.mem_free_mb, agents = EXCLUDED.agents,"
                " peer_url = EXCLUDED.peer_url, dashboard_url = EXCLUDED.dashboard_url",
                (
                    row.name,
                    row.heartbeat_at,
                    row.started_at,
                    row.load,
                    row.mem_free_mb,
                    row.agents,
                    row.peer_url,
                    row.dashboard_url,
                ),
            )

    async def nodes(self) -> list[NodeRow]:
        async with self._p().connection() as conn:
            cur = await conn.execute(f"SELECT {COLUMNS} FROM nodes ORDER BY name")
            rows = await cur.fetchall()
        return [
            NodeRow(
                name=r[0],
                heartbeat_at=float(r[1]),
                started_at=float(r[2]),
                load=float(r[3]),
                mem_free_mb=int(r[4]),
                agents=int(r[5]),
                peer_url=r[6],
                dashboard_url=r[7],
            )
            for r in rows
        ]

    async def placements(self) -> dict[str, str]:
        async with self._p().connection() as conn:
            cur = await conn.execute("SELECT agent, node FROM agent_nodes")
            return {a: n for a, n in await cur.fetchall()}

    async def place(self, agent: str, node: str, *, expect_free: bool = False) -> None:
        async with self._p().connection() as conn:
            if not expect_free:
                await conn.execute(
                    "INSERT INTO agent_nodes(agent, node) VALUES (%s, %s)"
                    " ON CONFLICT (agent) DO UPDATE SET node = EXCLUDED.node",
                    (agent, node),
                )
                return
            cur = await conn.execute(
                "INSERT INTO agent_nodes(agent, node) VALUES (%s, %s)"
                " ON CONFLICT (agent) DO NOTHING RETURNING agent",
                (agent, node),
            )
            if await cur.fetchone() is not None:
                return
            cur = await conn.execute("SELECT node FROM agent_nodes WHERE agent = %s", (agent,))
            r = await cur.fetchone()
        raise Conflict(f'agent "{agent}" already exists (on node {r[0] if r else "?"})')

    async def unplace(self, agent: str) -> None:
        async with self._p().connection() as conn:
            await conn.execute("DELETE FROM agent_nodes WHERE agent = %s", (agent,))

    async def secret(self) -> str:
        async with self._p().connection() as conn:
            await conn.execute(
                "INSERT INTO hive_secret(id, secret) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
                (new_secret(),),
            )
            cur = await conn.execute("SELECT secret FROM hive_secret WHERE id = 1")
            r = await cur.fetchone()
        assert r is not None
        return str(r[0])

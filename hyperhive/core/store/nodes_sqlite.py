"""SQLite backend of the nodes store (`nodes.py`): the single-host hive, where the one node
beats alone. Tables from migration `0005_nodes`."""

from __future__ import annotations

import sqlite3

from hyperhive.core.store.nodes import NodeRow, NodeStore, new_secret
from hyperhive.db import Database
from hyperhive.errors import Conflict


def _row(r: sqlite3.Row) -> NodeRow:
    return NodeRow(
        name=r["name"],
        heartbeat_at=r["heartbeat_at"],
        started_at=r["started_at"],
        load=r["load"],
        mem_free_mb=r["mem_free_mb"],
        agents=r["agents"],
        peer_url=r["peer_url"],
        dashboard_url=r["dashboard_url"],
    )


class SqliteNodeStore(NodeStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def heartbeat(self, row: NodeRow) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO nodes(name, heartbeat_at, started_at, load, mem_free_mb,"
                " agents, peer_url, dashboard_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

        await self.db.write(fn)

    async def nodes(self) -> list[NodeRow]:
        def fn(conn: sqlite3.Connection) -> list[NodeRow]:
            return [_row(r) for r in conn.execute("SELECT * FROM nodes ORDER BY name")]

        return await self.db.read(fn)

    async def placements(self) -> dict[str, str]:
        def fn(conn: sqlite3.Connection) -> dict[str, str]:
            return {r["agent"]: r["node"] for r in conn.execute("SELECT * FROM agent_nodes")}

        return await self.db.read(fn)

    async def place(self, agent: str, node: str, *, expect_free: bool = False) -> None:
        def fn(conn: sqlite3.Connection) -> str | None:
            if expect_free:
                cur = conn.execute(
                    "INSERT INTO agent_nodes(agent, node) VALUES (?, ?)"
                    " ON CONFLICT(agent) DO NOTHING",
                    (agent, node),
                )
                if cur.rowcount == 0:
                    r = conn.execute(
                        "SELECT node FROM agent_nodes WHERE agent = ?", (agent,)
                    ).fetchone()
                    return str(r[0]) if r is not None else "?"
                return None
            conn.execute(
                "INSERT OR REPLACE INTO agent_nodes(agent, node) VALUES (?, ?)", (agent, node)
            )
            return None

        taken = await self.db.write(fn)
        if taken is not None:
            raise Conflict(f'agent "{agent}" already exists (on node {taken})')

    async def unplace(self, agent: str) -> None:
        await self.db.write(
            lambda conn: conn.execute("DELETE FROM agent_nodes WHERE agent = ?", (agent,))
        )

    async def secret(self) -> str:
        def fn(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO hive_secret(id, secret) VALUES (1, ?) ON CONFLICT(id) DO NOTHING",
                (new_secret(),),
            )
            return str(conn.execute("SELECT secret FROM hive_secret WHERE id = 1").fetchone()[0])

        return await self.db.write(fn)

"""Backend-neutral raw reads of a running hive's tables, for tests that check rows the store
API does not show (history of destroyed generations, ...)."""

from __future__ import annotations

from typing import Any

from hyperhive.core.hive import Hive


async def query(hive: Hive, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a parameterless `sql` on the hive's storage (sqlite or PostgreSQL)."""
    storage: Any = hive.storage
    if storage.kind == "postgresql":

        async def fn(conn: Any) -> list[tuple[Any, ...]]:
            cur = await conn.execute(sql)
            return [tuple(r.values()) for r in await cur.fetchall()]

        return list(await storage.db.read(fn))
    return list(await storage.db.read(lambda c: [tuple(r) for r in c.execute(sql).fetchall()]))

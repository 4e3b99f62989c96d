"""PostgreSQL storage of budgets (`BudgetStore`): the same rows and meaning as
`budgets_sqlite.py` (`budget_usage`, `budget_trips`, `budget_raises`; migration
0004_permissions_budgets).

A breaker trips once, decided by the database: `trip` inserts with `ON CONFLICT (agent) DO
NOTHING` and wins only if a row came back; `clear` wins only if its DELETE removed the row
(two nodes racing either: one wins). Counts come from RETURNING, never `rowcount`
(the writer runs in pipeline mode, where it is not reliable).
"""

from __future__ import annotations

from typing import Any

from hyperhive.core.store.budgets_base import BudgetStore, Trip, UsageSum
from hyperhive.core.store.pg.db import Conn, PgDb


def _trip(r: dict[str, Any]) -> Trip:
    return Trip(
        agent=r["agent"],
        key=r["key"],
        reason=r["reason"],
        tripped_at=r["tripped_at"],
        raise_by=float(r["raise_by"]),
        question_id=r["question_id"],
    )


class PgBudgetStore(BudgetStore):
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def add_usage(
        self, agent: str, at: str, model: str, tokens: int, cost_usd: float
    ) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO budget_usage(agent, at, model, tokens, cost_usd)"
                " VALUES (%s, %s, %s, %s, %s)",
                (agent, at, model, tokens, cost_usd),
            )

        await self.db.write(fn)

    async def sums(self, agent: str | None, since: str) -> UsageSum:
        async def fn(conn: Conn) -> UsageSum:
            cur = await conn.execute(
                "SELECT coalesce(sum(tokens), 0) AS t, coalesce(sum(cost_usd), 0) AS c,"
                " count(*) AS n FROM budget_usage"
                " WHERE at >= %s AND (%s::text IS NULL OR agent = %s)",
                (since, agent, agent),
            )
            r = await cur.fetchone()
            assert r is not None
            return UsageSum(int(r["t"]), float(r["c"]), int(r["n"]))

        return await self.db.read(fn)

    async def sweep(self, before: str) -> int:
        async def fn(conn: Conn) -> int:
            cur = await conn.execute(
                "WITH gone AS (DELETE FROM budget_usage WHERE at < %s RETURNING 1)"
                " SELECT count(*) AS n FROM gone",
                (before,),
            )
            r = await cur.fetchone()
            await conn.execute("DELETE FROM budget_raises WHERE until < %s", (before,))
            return int(r["n"]) if r is not None else 0

        return await self.db.write(fn)

    async def trip(self, trip: Trip) -> bool:
        async def fn(conn: Conn) -> bool:
            cur = await conn.execute(
                "INSERT INTO budget_trips(agent, key, reason, tripped_at, raise_by, question_id)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (agent) DO NOTHING RETURNING agent",
                (
                    trip.agent,
                    trip.key,
                    trip.reason,
                    trip.tripped_at,
                    trip.raise_by,
                    trip.question_id,
                ),
            )
            return await cur.fetchone() is not None

        return await self.db.write(fn)

    async def set_question(self, agent: str, question_id: int | None) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                "UPDATE budget_trips SET question_id = %s WHERE agent = %s", (question_id, agent)
            )

        await self.db.write(fn)

    async def trips(self) -> list[Trip]:
        async def fn(conn: Conn) -> list[Trip]:
            cur = await conn.execute("SELECT * FROM budget_trips ORDER BY agent")
            return [_trip(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def clear(self, agent: str) -> bool:
        async def fn(conn: Conn) -> bool:
            cur = await conn.execute(
                "DELETE FROM budget_trips WHERE agent = %s RETURNING agent", (agent,)
            )
            return await cur.fetchone() is not None

        return await self.db.write(fn)

    async def add_raise(self, agent: str, key: str, amount: float, until: str) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO budget_raises(agent, key, amount, until) VALUES (%s, %s, %s, %s)",
                (agent, key, amount, until),
            )

        await self.db.write(fn)

    async def raises(self, agent: str, now: str) -> dict[str, float]:
        async def fn(conn: Conn) -> dict[str, float]:
            cur = await conn.execute(
                "SELECT key, sum(amount) AS a FROM budget_raises"
                " WHERE agent = %s AND until > %s GROUP BY key",
                (agent, now),
            )
            return {r["key"]: float(r["a"]) for r in await cur.fetchall()}

        return await self.db.read(fn)

"""SQLite storage of budgets (`budget_usage`, `budget_trips`, `budget_raises`; migration
0007). Every write goes through the database's single writer, so `trip` and `clear` are
decided by the row they insert or delete (`INSERT OR IGNORE`, the rowcount)."""

from __future__ import annotations

import sqlite3

from hyperhive.core.store.budgets_base import BudgetStore, Trip, UsageSum
from hyperhive.db import Database, execute_script


def m0007_budgets(conn: sqlite3.Connection) -> None:
    """Budgets: one usage row per reported turn, the tripped breakers, the operator's raises;
    and the trace context a message carries (`messages.trace_parent`, NULL when not traced)."""
    execute_script(
        conn,
        """
        CREATE TABLE budget_usage (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            at TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0
        );
        CREATE INDEX budget_usage_by_agent ON budget_usage(agent, at);
        CREATE INDEX budget_usage_by_at ON budget_usage(at);
        CREATE TABLE budget_trips (
            agent TEXT PRIMARY KEY,
            key TEXT NOT NULL,
            reason TEXT NOT NULL,
            tripped_at TEXT NOT NULL,
            raise_by REAL NOT NULL DEFAULT 0,
            question_id INTEGER
        );
        CREATE TABLE budget_raises (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            key TEXT NOT NULL,
            amount REAL NOT NULL,
            until TEXT NOT NULL
        );
        CREATE INDEX budget_raises_by_agent ON budget_raises(agent, until);
        ALTER TABLE messages ADD COLUMN trace_parent TEXT
        """,
    )


def _trip(r: sqlite3.Row) -> Trip:
    return Trip(
        agent=r["agent"],
        key=r["key"],
        reason=r["reason"],
        tripped_at=r["tripped_at"],
        raise_by=r["raise_by"],
        question_id=r["question_id"],
    )


class SqliteBudgetStore(BudgetStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_usage(
        self, agent: str, at: str, model: str, tokens: int, cost_usd: float
    ) -> None:
        await self.db.write(
            lambda c: c.execute(
                "INSERT INTO budget_usage(agent, at, model, tokens, cost_usd) VALUES (?,?,?,?,?)",
                (agent, at, model, tokens, cost_usd),
            )
        )

    async def sums(self, agent: str | None, since: str) -> UsageSum:
        def fn(c: sqlite3.Connection) -> UsageSum:
            sql = (
                "SELECT coalesce(sum(tokens),0) AS t, coalesce(sum(cost_usd),0) AS c,"
                " count(*) AS n FROM budget_usage WHERE at >= ?"
            )
            args: tuple[str, ...] = (since,)
            if agent is not None:
                sql += " AND agent = ?"
                args = (since, agent)
            r = c.execute(sql, args).fetchone()
            return UsageSum(int(r["t"]), float(r["c"]), int(r["n"]))

        return await self.db.read(fn)

    async def sweep(self, before: str) -> int:
        def fn(c: sqlite3.Connection) -> int:
            n = c.execute("DELETE FROM budget_usage WHERE at < ?", (before,)).rowcount
            c.execute("DELETE FROM budget_raises WHERE until < ?", (before,))
            return int(n)

        return await self.db.write(fn)

    async def trip(self, trip: Trip) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "INSERT OR IGNORE INTO budget_trips(agent, key, reason, tripped_at, raise_by,"
                " question_id) VALUES (?,?,?,?,?,?)",
                (
                    trip.agent,
                    trip.key,
                    trip.reason,
                    trip.tripped_at,
                    trip.raise_by,
                    trip.question_id,
                ),
            )
            return cur.rowcount == 1

        return await self.db.write(fn)

    async def set_question(self, agent: str, question_id: int | None) -> None:
        await self.db.write(
            lambda c: c.execute(
                "UPDATE budget_trips SET question_id = ? WHERE agent = ?", (question_id, agent)
            )
        )

    async def trips(self) -> list[Trip]:
        def fn(c: sqlite3.Connection) -> list[Trip]:
            return [_trip(r) for r in c.execute("SELECT * FROM budget_trips ORDER BY agent")]

        return await self.db.read(fn)

    async def clear(self, agent: str) -> bool:
        return await self.db.write(
            lambda c: c.execute("DELETE FROM budget_trips WHERE agent = ?", (agent,)).rowcount == 1
        )

    async def add_raise(self, agent: str, key: str, amount: float, until: str) -> None:
        await self.db.write(
            lambda c: c.execute(
                "INSERT INTO budget_raises(agent, key, amount, until) VALUES (?,?,?,?)",
                (agent, key, amount, until),
            )
        )

    async def raises(self, agent: str, now: str) -> dict[str, float]:
        def fn(c: sqlite3.Connection) -> dict[str, float]:
            rows = c.execute(
                "SELECT key, sum(amount) AS a FROM budget_raises WHERE agent = ? AND until > ?"
                " GROUP BY key",
                (agent, now),
            )
            return {r["key"]: float(r["a"]) for r in rows}

        return await self.db.read(fn)

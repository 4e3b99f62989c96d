"""SQLite storage of reminders (`reminders`, migration 0002; `generation` since 0004).

Invariants: a reminder is `pending` until it is `delivered` or, after its last failed attempt,
`failed`; both are final (every update here requires `status = 'pending'`). `due_at` of a
pending row is when the next attempt is due (a failed attempt moves it forward).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from hyperhive.core.store.base import ReminderStore
from hyperhive.db import Database
from hyperhive.errors import NotFound
from hyperhive.wire.followups import ReminderRow

_COLS = (
    "id, agent, body, file_path, due_at, created_at, attempts, status, delivered_at, last_error,"
    " generation"
)
# set by the agent's current incarnation (see `hyperhive.core.store.sqlite`)
_CURRENT = (
    "generation = COALESCE((SELECT a.generation FROM agents a WHERE a.name = reminders.agent), 0)"
)


def _row(r: sqlite3.Row) -> ReminderRow:
    return ReminderRow(
        id=r["id"],
        agent=r["agent"],
        body=r["body"],
        file_path=r["file_path"],
        due_at=r["due_at"],
        created_at=r["created_at"],
        attempts=r["attempts"],
        status=r["status"],
        delivered_at=r["delivered_at"],
        last_error=r["last_error"],
        generation=r["generation"],
    )


def _get(conn: sqlite3.Connection, rid: int) -> ReminderRow:
    r = conn.execute(f"SELECT {_COLS} FROM reminders WHERE id = ?", (rid,)).fetchone()
    assert r is not None
    return _row(r)


class SqliteReminderStore(ReminderStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(
        self, agent: str, body: str, file_path: str | None, due_at: str, created_at: str
    ) -> ReminderRow:
        def fn(conn: sqlite3.Connection) -> ReminderRow:
            cur = conn.execute(
                "INSERT INTO reminders(agent, body, file_path, due_at, created_at, generation)"
                " VALUES (?, ?, ?, ?, ?, COALESCE((SELECT generation FROM agents WHERE name = ?), 0))",
                (agent, body, file_path, due_at, created_at, agent),
            )
            assert cur.lastrowid is not None
            return _get(conn, cur.lastrowid)

        return await self.db.write(fn)

    async def get(self, rid: int) -> ReminderRow | None:
        def fn(conn: sqlite3.Connection) -> ReminderRow | None:
            r = conn.execute(f"SELECT {_COLS} FROM reminders WHERE id = ?", (rid,)).fetchone()
            return _row(r) if r is not None else None

        return await self.db.read(fn)

    async def count_pending(self, agent: str) -> int:
        return (await self.count_pending_many([agent]))[agent]

    async def count_pending_many(self, agents: Sequence[str]) -> dict[str, int]:
        def fn(conn: sqlite3.Connection) -> dict[str, int]:
            sql = f"SELECT count(*) FROM reminders WHERE agent = ? AND status = 'pending' AND {_CURRENT}"
            return {a: int(conn.execute(sql, (a,)).fetchone()[0]) for a in agents}

        return await self.db.read(fn)

    async def due(self, cutoff: str, limit: int) -> list[ReminderRow]:
        """Pending reminders due at or before `cutoff`, earliest first."""

        def fn(conn: sqlite3.Connection) -> list[ReminderRow]:
            rows = conn.execute(
                f"SELECT {_COLS} FROM reminders WHERE status = 'pending' AND due_at <= ?"
                " ORDER BY due_at, id LIMIT ?",
                (cutoff, limit),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self.db.read(fn)

    async def next_due(self) -> str | None:
        def fn(conn: sqlite3.Connection) -> str | None:
            r = conn.execute(
                "SELECT min(due_at) FROM reminders WHERE status = 'pending'"
            ).fetchone()
            return r[0] if r is not None else None

        return await self.db.read(fn)

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        id_list = list(ids)

        def fn(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE reminders SET status = 'delivered', delivered_at = ?,"
                " attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
                [(at, i) for i in id_list],
            )

        await self.db.write(fn)

    async def record_failure(self, rid: int, error: str, retry_at: str | None) -> ReminderRow:
        """Count a failed attempt: due again at `retry_at`, or `failed` when it is None."""

        def fn(conn: sqlite3.Connection) -> ReminderRow:
            if conn.execute("SELECT 1 FROM reminders WHERE id = ?", (rid,)).fetchone() is None:
                raise NotFound(f"no reminder #{rid}")
            if retry_at is None:
                conn.execute(
                    "UPDATE reminders SET attempts = attempts + 1, last_error = ?,"
                    " status = 'failed' WHERE id = ? AND status = 'pending'",
                    (error, rid),
                )
            else:
                conn.execute(
                    "UPDATE reminders SET attempts = attempts + 1, last_error = ?, due_at = ?"
                    " WHERE id = ? AND status = 'pending'",
                    (error, retry_at, rid),
                )
            return _get(conn, rid)

        return await self.db.write(fn)

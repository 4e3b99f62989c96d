"""SQLite storage of tool permission requests and kept rules (`permission_requests`,
`permission_rules`, migration 0005).

Invariant: a request is decided at most once and the database decides which decision wins:
`decide` runs `UPDATE ... WHERE status = 'pending'` in one write transaction on the single
writer, and only a rowcount of 1 counts as a win (two operators clicking at once, or a click
racing the expiry: one wins, the other learns it lost).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from hyperhive.core.store.permissions_base import PermissionStore
from hyperhive.db import Database
from hyperhive.errors import NotFound
from hyperhive.wire.permissions import PermissionRow, PermissionStatus

_COLS = (
    "id, agent, generation, tool, input_json, tool_use_id, reason, rule, asked_at, deadline_at,"
    " status, decided_at, note, kept_rule"
)


def _row(r: sqlite3.Row) -> PermissionRow:
    return PermissionRow(
        id=r["id"],
        agent=r["agent"],
        generation=r["generation"],
        tool=r["tool"],
        input=json.loads(r["input_json"] or "{}"),
        tool_use_id=r["tool_use_id"],
        reason=r["reason"],
        rule=r["rule"],
        asked_at=r["asked_at"],
        deadline_at=r["deadline_at"],
        status=PermissionStatus(r["status"]),
        decided_at=r["decided_at"],
        note=r["note"],
        kept_rule=r["kept_rule"],
    )


def _get(conn: sqlite3.Connection, pid: int) -> PermissionRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM permission_requests WHERE id = ?", (pid,)).fetchone()
    return _row(r) if r is not None else None


class SqlitePermissionStore(PermissionStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(
        self,
        *,
        agent: str,
        generation: int,
        harness: str,
        key: str,
        tool: str,
        tool_input: Mapping[str, Any],
        asked_at: str,
        deadline_at: str,
        tool_use_id: str | None = None,
        reason: str | None = None,
        rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        def fn(conn: sqlite3.Connection) -> tuple[PermissionRow, bool]:
            known = conn.execute(
                "SELECT id FROM permission_requests WHERE agent = ? AND key = ?", (agent, key)
            ).fetchone()
            if known is not None:
                row = _get(conn, int(known[0]))
                assert row is not None
                return row, False
            cur = conn.execute(
                "INSERT INTO permission_requests(agent, generation, harness, key, tool,"
                " input_json, tool_use_id, reason, rule, asked_at, deadline_at, status, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', '')",
                (
                    agent,
                    generation,
                    harness,
                    key,
                    tool,
                    json.dumps(dict(tool_input), ensure_ascii=False),
                    tool_use_id,
                    reason,
                    rule,
                    asked_at,
                    deadline_at,
                ),
            )
            assert cur.lastrowid is not None
            row = _get(conn, cur.lastrowid)
            assert row is not None
            return row, True

        return await self.db.write(fn)

    async def get(self, pid: int) -> PermissionRow | None:
        return await self.db.read(lambda conn: _get(conn, pid))

    async def by_key(self, agent: str, key: str) -> PermissionRow | None:
        def fn(conn: sqlite3.Connection) -> PermissionRow | None:
            r = conn.execute(
                f"SELECT {_COLS} FROM permission_requests WHERE agent = ? AND key = ?",
                (agent, key),
            ).fetchone()
            return _row(r) if r is not None else None

        return await self.db.read(fn)

    async def pending(self, agent: str | None = None) -> list[PermissionRow]:
        def fn(conn: sqlite3.Connection) -> list[PermissionRow]:
            if agent is None:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM permission_requests WHERE status = 'pending' ORDER BY id"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM permission_requests"
                    " WHERE status = 'pending' AND agent = ? ORDER BY id",
                    (agent,),
                ).fetchall()
            return [_row(r) for r in rows]

        return await self.db.read(fn)

    async def decide(
        self,
        pid: int,
        status: PermissionStatus,
        at: str,
        note: str = "",
        kept_rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        def fn(conn: sqlite3.Connection) -> tuple[PermissionRow, bool]:
            cur = conn.execute(
                "UPDATE permission_requests SET status = ?, decided_at = ?, note = ?,"
                " kept_rule = ? WHERE id = ? AND status = 'pending'",
                (status.value, at, note, kept_rule, pid),
            )
            row = _get(conn, pid)
            if row is None:
                raise NotFound(f"no permission request #{pid}")
            return row, cur.rowcount == 1

        return await self.db.write(fn)

    async def stale(self, agent: str, harness: str | None = None) -> list[int]:
        def fn(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT id FROM permission_requests WHERE status = 'pending' AND agent = ?"
                " AND (? IS NULL OR harness != ?) ORDER BY id",
                (agent, harness, harness),
            ).fetchall()
            return [int(r[0]) for r in rows]

        return await self.db.read(fn)

    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        def fn(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT id FROM permission_requests WHERE status = 'pending'"
                " AND deadline_at <= ? ORDER BY deadline_at, id LIMIT ?",
                (cutoff, limit),
            ).fetchall()
            return [int(r[0]) for r in rows]

        return await self.db.read(fn)

    async def next_deadline(self) -> str | None:
        def fn(conn: sqlite3.Connection) -> str | None:
            r = conn.execute(
                "SELECT min(deadline_at) FROM permission_requests WHERE status = 'pending'"
            ).fetchone()
            return r[0] if r is not None else None

        return await self.db.read(fn)

    async def keep_rule(self, agent: str, generation: int, rule: str, at: str) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO permission_rules(agent, generation, rule, kept_at)"
                " VALUES (?, ?, ?, ?)",
                (agent, generation, rule, at),
            )

        await self.db.write(fn)

    async def rules(self, agent: str, generation: int) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT rule FROM permission_rules WHERE agent = ? AND generation = ?"
                " ORDER BY rowid",
                (agent, generation),
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self.db.read(fn)

    async def forget_rule(self, agent: str, generation: int, rule: str) -> bool:
        def fn(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM permission_rules WHERE agent = ? AND generation = ? AND rule = ?",
                (agent, generation, rule),
            )
            return cur.rowcount == 1

        return await self.db.write(fn)

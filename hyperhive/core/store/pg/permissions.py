"""PostgreSQL storage of tool permission requests and kept rules (`PermissionStore`): the same
rows and meaning as `permissions_sqlite.py` (tables `permission_requests`, `permission_rules`,
migration 0004_permissions_budgets).

Decided once, in the database: `decide` is one `UPDATE ... WHERE id = %s AND status =
'pending' RETURNING`; of two operators on two nodes clicking at once (or a click racing the
expiry), exactly one gets the row back. `(agent, key)` is a unique index: a resend inserts
nothing (`ON CONFLICT DO NOTHING`) and answers the row that exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hyperhive.core.store.permissions_base import PermissionStore
from hyperhive.core.store.pg.db import Conn, PgDb
from hyperhive.errors import NotFound
from hyperhive.wire.permissions import PermissionRow, PermissionStatus

_COLS = (
    "id, agent, generation, tool, input_json, tool_use_id, reason, rule, asked_at, deadline_at,"
    " status, decided_at, note, kept_rule"
)


def _row(r: dict[str, Any]) -> PermissionRow:
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


async def _one(conn: Conn, sql: str, args: tuple[Any, ...]) -> PermissionRow | None:
    cur = await conn.execute(sql, args)
    r = await cur.fetchone()
    return _row(r) if r is not None else None


async def _ids(conn: Conn, sql: str, args: tuple[Any, ...]) -> list[int]:
    cur = await conn.execute(sql, args)
    return [int(r["id"]) for r in await cur.fetchall()]


class PgPermissionStore(PermissionStore):
    def __init__(self, db: PgDb) -> None:
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
        async def fn(conn: Conn) -> tuple[PermissionRow, bool]:
            row = await _one(
                conn,
                "INSERT INTO permission_requests(agent, generation, harness, key, tool,"
                " input_json, tool_use_id, reason, rule, asked_at, deadline_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (agent, key) DO NOTHING RETURNING {_COLS}",
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
            if row is not None:
                return row, True
            known = await _one(
                conn,
                f"SELECT {_COLS} FROM permission_requests WHERE agent = %s AND key = %s",
                (agent, key),
            )
            assert known is not None
            return known, False

        return await self.db.write(fn)

    async def get(self, pid: int) -> PermissionRow | None:
        return await self.db.read(
            lambda c: _one(c, f"SELECT {_COLS} FROM permission_requests WHERE id = %s", (pid,))
        )

    async def by_key(self, agent: str, key: str) -> PermissionRow | None:
        return await self.db.read(
            lambda c: _one(
                c,
                f"SELECT {_COLS} FROM permission_requests WHERE agent = %s AND key = %s",
                (agent, key),
            )
        )

    async def pending(self, agent: str | None = None) -> list[PermissionRow]:
        async def fn(conn: Conn) -> list[PermissionRow]:
            cur = await conn.execute(
                f"SELECT {_COLS} FROM permission_requests WHERE status = 'pending'"
                " AND (%s::text IS NULL OR agent = %s) ORDER BY id",
                (agent, agent),
            )
            return [_row(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def decide(
        self,
        pid: int,
        status: PermissionStatus,
        at: str,
        note: str = "",
        kept_rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        async def fn(conn: Conn) -> tuple[PermissionRow, bool]:
            won = await _one(
                conn,
                "UPDATE permission_requests SET status = %s, decided_at = %s, note = %s,"
                f" kept_rule = %s WHERE id = %s AND status = 'pending' RETURNING {_COLS}",
                (status.value, at, note, kept_rule, pid),
            )
            if won is not None:
                return won, True
            row = await _one(conn, f"SELECT {_COLS} FROM permission_requests WHERE id = %s", (pid,))
            if row is None:
                raise NotFound(f"no permission request #{pid}")
            return row, False

        return await self.db.write(fn)

    async def stale(self, agent: str, harness: str | None = None) -> list[int]:
        return await self.db.read(
            lambda c: _ids(
                c,
                "SELECT id FROM permission_requests WHERE status = 'pending' AND agent = %s"
                " AND (%s::text IS NULL OR harness != %s) ORDER BY id",
                (agent, harness, harness),
            )
        )

    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        return await self.db.read(
            lambda c: _ids(
                c,
                "SELECT id FROM permission_requests WHERE status = 'pending'"
                " AND deadline_at <= %s ORDER BY deadline_at, id LIMIT %s",
                (cutoff, limit),
            )
        )

    async def next_deadline(self) -> str | None:
        async def fn(conn: Conn) -> str | None:
            cur = await conn.execute(
                "SELECT min(deadline_at) AS d FROM permission_requests WHERE status = 'pending'"
            )
            r = await cur.fetchone()
            return r["d"] if r is not None else None

        return await self.db.read(fn)

    async def keep_rule(self, agent: str, generation: int, rule: str, at: str) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO permission_rules(agent, generation, rule, kept_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (agent, generation, rule, at),
            )

        await self.db.write(fn)

    async def rules(self, agent: str, generation: int) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            cur = await conn.execute(
                "SELECT rule FROM permission_rules WHERE agent = %s AND generation = %s"
                " ORDER BY seq",
                (agent, generation),
            )
            return [str(r["rule"]) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def forget_rule(self, agent: str, generation: int, rule: str) -> bool:
        async def fn(conn: Conn) -> bool:
            cur = await conn.execute(
                "DELETE FROM permission_rules WHERE agent = %s AND generation = %s AND rule = %s"
                " RETURNING rule",
                (agent, generation, rule),
            )
            return await cur.fetchone() is not None

        return await self.db.write(fn)

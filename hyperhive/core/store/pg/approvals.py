"""PostgreSQL operator approvals (`ApprovalStore`): the same rows and meaning as
`approvals_sqlite.py`.

Decided once, in the database: `decide` is one `UPDATE ... WHERE id = %s AND status =
'pending' RETURNING`; of two operators on two nodes clicking at once, exactly one gets the row
back. At most one pending `spawn` / `init_config` per agent: a partial unique index, whose
violation becomes `Conflict`.
"""

from __future__ import annotations

from typing import Any

import psycopg

from hyperhive.core.store.base import ApprovalStore
from hyperhive.core.store.pg.db import Conn, PgDb
from hyperhive.errors import Conflict, NotFound
from hyperhive.wire.approvals import ApprovalRow, ApprovalStatus

_COLS = (
    "id, agent, kind, commit_ref, fetched_sha, requested_by, requested_at, status, resolved_at,"
    " note, description"
)


def _row(r: dict[str, Any]) -> ApprovalRow:
    return ApprovalRow(**{k: r[k] for k in _COLS.replace(" ", "").split(",")})


async def _get(conn: Conn, aid: int) -> ApprovalRow | None:
    cur = await conn.execute(f"SELECT {_COLS} FROM approvals WHERE id = %s", (aid,))
    r = await cur.fetchone()
    return _row(r) if r is not None else None


class PgApprovalStore(ApprovalStore):
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def insert(
        self,
        *,
        agent: str,
        kind: str,
        requested_by: str,
        requested_at: str,
        description: str = "",
        commit_ref: str = "",
        fetched_sha: str | None = None,
    ) -> ApprovalRow:
        async def fn(conn: Conn) -> ApprovalRow:
            cur = await conn.execute(
                "INSERT INTO approvals(agent, kind, commit_ref, fetched_sha, requested_by,"
                f" requested_at, description) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLS}",
                (agent, kind, commit_ref, fetched_sha, requested_by, requested_at, description),
            )
            r = await cur.fetchone()
            assert r is not None
            return _row(r)

        try:
            return await self.db.write(fn)
        except psycopg.errors.UniqueViolation:
            pass

        async def dup(conn: Conn) -> int | None:
            cur = await conn.execute(
                "SELECT id FROM approvals WHERE status = 'pending' AND agent = %s AND kind = %s",
                (agent, kind),
            )
            r = await cur.fetchone()
            return int(r["id"]) if r is not None else None

        raise Conflict(
            f"a {kind} of {agent} is already waiting as approval #{await self.db.read(dup)}"
        )

    async def get(self, aid: int) -> ApprovalRow | None:
        return await self.db.read(lambda conn: _get(conn, aid))

    async def pending(self, *, requested_by: str | None = None) -> list[ApprovalRow]:
        async def fn(conn: Conn) -> list[ApprovalRow]:
            if requested_by is None:
                cur = await conn.execute(
                    f"SELECT {_COLS} FROM approvals WHERE status = 'pending' ORDER BY id"
                )
            else:
                cur = await conn.execute(
                    f"SELECT {_COLS} FROM approvals"
                    " WHERE status = 'pending' AND requested_by = %s ORDER BY id",
                    (requested_by,),
                )
            return [_row(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def recent(self, resolved_limit: int) -> list[ApprovalRow]:
        async def fn(conn: Conn) -> list[ApprovalRow]:
            cur = await conn.execute(
                f"SELECT {_COLS} FROM approvals WHERE status = 'pending'"
                f" UNION SELECT * FROM (SELECT {_COLS} FROM approvals"
                " WHERE status != 'pending' ORDER BY id DESC LIMIT %s) AS resolved"
                " ORDER BY id",
                (resolved_limit,),
            )
            return [_row(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def decide(
        self,
        aid: int,
        status: ApprovalStatus,
        at: str,
        note: str,
        *,
        requested_by: str | None = None,
    ) -> tuple[ApprovalRow, bool]:
        async def fn(conn: Conn) -> tuple[ApprovalRow, bool]:
            row = await _get(conn, aid)
            if row is None or (requested_by is not None and row.requested_by != requested_by):
                raise NotFound(f"no approval #{aid}")
            cur = await conn.execute(
                "UPDATE approvals SET status = %s, resolved_at = %s, note = %s"
                f" WHERE id = %s AND status = 'pending' RETURNING {_COLS}",
                (status.value, at, note, aid),
            )
            r = await cur.fetchone()
            if r is not None:
                return _row(r), True
            now = await _get(conn, aid)
            assert now is not None
            return now, False

        return await self.db.write(fn)

    async def finish(
        self, aid: int, status: ApprovalStatus, note: str, *, fetched_sha: str | None = None
    ) -> ApprovalRow:
        async def fn(conn: Conn) -> ApprovalRow:
            await conn.execute(
                "UPDATE approvals SET status = %s, note = %s,"
                " fetched_sha = COALESCE(%s, fetched_sha) WHERE id = %s AND status = 'approved'",
                (status.value, note, fetched_sha, aid),
            )
            row = await _get(conn, aid)
            if row is None:
                raise NotFound(f"no approval #{aid}")
            return row

        return await self.db.write(fn)

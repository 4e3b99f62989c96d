"""SQLite storage of operator approvals (`approvals`, migration 0003 in `sqlite_migrations.py`).

Invariants:
- Ids come from AUTOINCREMENT: monotonic, never reused (`proposal/<id>` tags stay unique).
- At most one pending `spawn` and one pending `init_config` per name (a partial unique index:
  two concurrent requests cannot both get in).
- A pending approval is resolved at most once, decided in the database: `decide` runs
  `UPDATE ... WHERE id = ? AND status = 'pending'` on the single writer and only a rowcount of
  1 wins. An approved row may then become `failed` (`finish`) if acting on it fails; nothing
  else moves a resolved row.
- Timestamps are RFC 3339 UTC text (`hyperhive.clock.iso`), like every other table.
"""

from __future__ import annotations

import sqlite3

from hyperhive.core.store.base import ApprovalStore
from hyperhive.db import Database
from hyperhive.errors import Conflict, NotFound
from hyperhive.wire.approvals import ApprovalRow, ApprovalStatus

_COLS = (
    "id, agent, kind, commit_ref, fetched_sha, requested_by, requested_at, status, resolved_at,"
    " note, description"
)


def _row(r: sqlite3.Row) -> ApprovalRow:
    return ApprovalRow(
        id=r["id"],
        agent=r["agent"],
        kind=r["kind"],
        commit_ref=r["commit_ref"],
        fetched_sha=r["fetched_sha"],
        requested_by=r["requested_by"],
        requested_at=r["requested_at"],
        status=r["status"],
        resolved_at=r["resolved_at"],
        note=r["note"],
        description=r["description"],
    )


def _get(conn: sqlite3.Connection, aid: int) -> ApprovalRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM approvals WHERE id = ?", (aid,)).fetchone()
    return _row(r) if r is not None else None


class SqliteApprovalStore(ApprovalStore):
    def __init__(self, db: Database) -> None:
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
        def fn(conn: sqlite3.Connection) -> ApprovalRow:
            try:
                cur = conn.execute(
                    "INSERT INTO approvals(agent, kind, commit_ref, fetched_sha, requested_by,"
                    " requested_at, description) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (agent, kind, commit_ref, fetched_sha, requested_by, requested_at, description),
                )
            except sqlite3.IntegrityError:
                (dup,) = conn.execute(
                    "SELECT id FROM approvals WHERE status = 'pending' AND agent = ? AND kind = ?",
                    (agent, kind),
                ).fetchone()
                raise Conflict(
                    f"a {kind} of {agent} is already waiting as approval #{dup}"
                ) from None
            assert cur.lastrowid is not None
            row = _get(conn, cur.lastrowid)
            assert row is not None
            return row

        return await self.db.write(fn)

    async def get(self, aid: int) -> ApprovalRow | None:
        return await self.db.read(lambda conn: _get(conn, aid))

    async def pending(self, *, requested_by: str | None = None) -> list[ApprovalRow]:
        """Pending approvals (of one requester, or all), oldest first."""

        def fn(conn: sqlite3.Connection) -> list[ApprovalRow]:
            if requested_by is None:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM approvals WHERE status = 'pending' ORDER BY id"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM approvals"
                    " WHERE status = 'pending' AND requested_by = ? ORDER BY id",
                    (requested_by,),
                ).fetchall()
            return [_row(r) for r in rows]

        return await self.db.read(fn)

    async def recent(self, resolved_limit: int) -> list[ApprovalRow]:
        """Every pending approval plus the newest `resolved_limit` resolved ones, by id."""

        def fn(conn: sqlite3.Connection) -> list[ApprovalRow]:
            rows = conn.execute(
                f"SELECT {_COLS} FROM approvals WHERE status = 'pending'"
                f" UNION SELECT * FROM (SELECT {_COLS} FROM approvals"
                " WHERE status != 'pending' ORDER BY id DESC LIMIT ?)"
                " ORDER BY id",
                (resolved_limit,),
            ).fetchall()
            return [_row(r) for r in rows]

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
        """Move `aid` from pending to `status`. Returns the row as it now is and whether this
        call moved it (False: already resolved). `NotFound` for an unknown id (or, with
        `requested_by`, one somebody else requested)."""

        def fn(conn: sqlite3.Connection) -> tuple[ApprovalRow, bool]:
            row = _get(conn, aid)
            if row is None or (requested_by is not None and row.requested_by != requested_by):
                raise NotFound(f"no approval #{aid}")
            cur = conn.execute(
                "UPDATE approvals SET status = ?, resolved_at = ?, note = ?"
                " WHERE id = ? AND status = 'pending'",
                (status.value, at, note, aid),
            )
            now = _get(conn, aid)
            assert now is not None
            return now, cur.rowcount == 1

        return await self.db.write(fn)

    async def finish(
        self, aid: int, status: ApprovalStatus, note: str, *, fetched_sha: str | None = None
    ) -> ApprovalRow:
        """Record the outcome of acting on an approved row (`approved` stays or → `failed`)."""

        def fn(conn: sqlite3.Connection) -> ApprovalRow:
            conn.execute(
                "UPDATE approvals SET status = ?, note = ?,"
                " fetched_sha = COALESCE(?, fetched_sha) WHERE id = ? AND status = 'approved'",
                (status.value, note, fetched_sha, aid),
            )
            row = _get(conn, aid)
            if row is None:
                raise NotFound(f"no approval #{aid}")
            return row

        return await self.db.write(fn)

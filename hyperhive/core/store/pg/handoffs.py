"""PostgreSQL store of config hand-offs between nodes (`core/confighandoff.py`; tables of
migration 0005_config_handoffs).

- `config_handoffs`: one row per approval made on a shared database, naming the node that acts
  on it, the node it was requested on (`origin`, where the manager's repo is), and — when they
  differ and a commit is pinned — the git bundle that carries the commit. `state` moves once
  from `waiting` to `applied` / `superseded` / `failed` / `dropped` (`finish` is one
  `UPDATE ... WHERE state = 'waiting' RETURNING`: of two deliveries exactly one finishes it);
  the bundle is dropped with it.
- `due(node)`: the waiting rows of `node` whose approval the operator approved (the decision is
  the approvals row's, made in the database): what a node that was down acts on when it is back.
- `newer(agent, aid)`: an `apply_commit` of the same agent approved after `aid` was requested
  and applied (or approved and waiting): `aid` must then never be applied (no rollback).
- `config_mirrors`: per agent, its repo (main + seed) as a bundle from the node that created it,
  for the manager's node to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperhive.core.store.pg.db import Conn, PgDb

STATES = ("applied", "superseded", "failed", "dropped")


@dataclass(frozen=True)
class HandoffRow:
    approval_id: int
    agent: str
    kind: str
    node: str
    origin: str
    sha: str | None
    has_bundle: bool
    state: str


_COLS = "approval_id, agent, kind, node, origin, sha, bundle IS NOT NULL AS has_bundle, state"


def _row(r: dict[str, Any]) -> HandoffRow:
    return HandoffRow(
        approval_id=int(r["approval_id"]),
        agent=r["agent"],
        kind=r["kind"],
        node=r["node"],
        origin=r["origin"],
        sha=r["sha"],
        has_bundle=bool(r["has_bundle"]),
        state=r["state"],
    )


class PgHandoffStore:
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def add(
        self,
        *,
        approval_id: int,
        agent: str,
        kind: str,
        node: str,
        origin: str,
        sha: str | None,
        bundle: bytes | None,
        at: str,
    ) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO config_handoffs(approval_id, agent, kind, node, origin, sha, bundle,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (approval_id) DO NOTHING",
                (approval_id, agent, kind, node, origin, sha, bundle, at),
            )

        await self.db.write(fn)

    async def get(self, aid: int) -> HandoffRow | None:
        async def fn(conn: Conn) -> HandoffRow | None:
            cur = await conn.execute(
                f"SELECT {_COLS} FROM config_handoffs WHERE approval_id = %s", (aid,)
            )
            r = await cur.fetchone()
            return _row(r) if r is not None else None

        return await self.db.read(fn)

    async def bundle(self, aid: int) -> bytes | None:
        async def fn(conn: Conn) -> bytes | None:
            cur = await conn.execute(
                "SELECT bundle FROM config_handoffs WHERE approval_id = %s", (aid,)
            )
            r = await cur.fetchone()
            return bytes(r["bundle"]) if r is not None and r["bundle"] is not None else None

        return await self.db.read(fn)

    async def due(self, node: str) -> list[HandoffRow]:
        async def fn(conn: Conn) -> list[HandoffRow]:
            cur = await conn.execute(
                "SELECT h.approval_id, h.agent, h.kind, h.node, h.origin, h.sha,"
                " h.bundle IS NOT NULL AS has_bundle, h.state FROM config_handoffs h JOIN approvals a ON a.id = h.approval_id"
                " WHERE h.node = %s AND h.state = 'waiting' AND a.status = 'approved'"
                " ORDER BY h.approval_id",
                (node,),
            )
            return [_row(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def newer(self, agent: str, aid: int) -> int | None:
        async def fn(conn: Conn) -> int | None:
            cur = await conn.execute(
                "SELECT max(h.approval_id) AS n FROM config_handoffs h"
                " JOIN approvals a ON a.id = h.approval_id"
                " WHERE h.agent = %s AND h.kind = 'apply_commit' AND h.approval_id > %s"
                " AND (h.state = 'applied' OR (h.state = 'waiting' AND a.status = 'approved'))",
                (agent, aid),
            )
            r = await cur.fetchone()
            return int(r["n"]) if r is not None and r["n"] is not None else None

        return await self.db.read(fn)

    async def finish(self, aid: int, state: str, at: str) -> bool:
        """Leave `waiting` for `state`; False if another delivery finished it first."""
        if state not in STATES:
            raise ValueError(f"bad hand-off state {state!r}")

        async def fn(conn: Conn) -> bool:
            cur = await conn.execute(
                "UPDATE config_handoffs SET state = %s, bundle = NULL, done_at = %s"
                " WHERE approval_id = %s AND state = 'waiting' RETURNING approval_id",
                (state, at, aid),
            )
            return await cur.fetchone() is not None

        return bool(await self.db.write(fn))

    # -- mirrors ----------------------------------------------------------------------------

    async def put_mirror(self, agent: str, node: str, sha: str, bundle: bytes, at: str) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO config_mirrors(agent, node, sha, bundle, stored_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (agent) DO UPDATE SET"
                " node = EXCLUDED.node, sha = EXCLUDED.sha, bundle = EXCLUDED.bundle,"
                " stored_at = EXCLUDED.stored_at",
                (agent, node, sha, bundle, at),
            )

        await self.db.write(fn)

    async def mirrors(self) -> dict[str, tuple[str, str]]:
        """agent → (node, sha) of every stored mirror (without the bundles)."""

        async def fn(conn: Conn) -> dict[str, tuple[str, str]]:
            cur = await conn.execute("SELECT agent, node, sha FROM config_mirrors")
            return {r["agent"]: (r["node"], r["sha"]) for r in await cur.fetchall()}

        return await self.db.read(fn)

    async def mirror_bundle(self, agent: str) -> tuple[str, bytes] | None:
        async def fn(conn: Conn) -> tuple[str, bytes] | None:
            cur = await conn.execute(
                "SELECT sha, bundle FROM config_mirrors WHERE agent = %s", (agent,)
            )
            r = await cur.fetchone()
            return (r["sha"], bytes(r["bundle"])) if r is not None else None

        return await self.db.read(fn)

"""PostgreSQL messages and agents (`MessageStore`, `AgentStore`): the same rows and meaning as
`core/store/sqlite.py`.

Wake-ups: `insert_messages` issues one `pg_notify(CHANNEL, ...)` per row in the INSERT's own
statement (`msgwriter.py`), so every LISTENing process learns of the commit when (and only
when) it commits; the payload carries the row when it fits (`parse_payload` reads it), so the
receiving node indexes it without a read. `PgStorage` ignores its own origin (its broker
already knows, via `on_commit`). Ids come from an identity column: monotonic, never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from hyperhive.core.records import AgentRecord, Message, NewMessage
from hyperhive.core.store.base import AgentStore, MessageStore
from hyperhive.core.store.pg.db import Conn, PgDb
from hyperhive.core.store.pg.msgwriter import MessageWriter

logger = logging.getLogger(__name__)

SEP = "\n"  # between payload fields (names never hold a newline)

_CURRENT = (
    "recipient_generation = COALESCE("
    "(SELECT generation FROM agents WHERE agents.name = messages.recipient), 0)"
)


FIELDS = 8  # after the origin, in a full payload


def parse_payload(rest: str) -> Message | str | None:
    """A notification's payload after `origin` SEP: the row (`Message`), or only the
    recipient (`str`: drop that index and re-read), or None if it is not ours to read."""
    parts = rest.split(SEP, FIELDS - 1)
    if len(parts) != FIELDS:
        return parts[0] if len(parts) == 1 and parts[0] else None
    recipient, mid, gen, sender, kind, sent_at, tp, body = parts
    try:
        return Message(
            int(mid),
            sender,
            recipient,
            body,
            kind,
            sent_at,
            None,
            int(gen),
            tp[1:] if tp[:1] == "+" else None,
        )
    except ValueError:
        return recipient or None


_MSG_COLS = (
    "id, sender, recipient, body, kind, sent_at, delivered_at, recipient_generation, trace_parent"
)


def _message(r: dict[str, Any]) -> Message:
    return Message(
        id=r["id"],
        sender=r["sender"],
        recipient=r["recipient"],
        body=r["body"],
        kind=r["kind"],
        sent_at=r["sent_at"],
        delivered_at=r["delivered_at"],
        recipient_generation=r["recipient_generation"],
        trace_parent=r.get("trace_parent"),
    )


class PgMessageStore(MessageStore):
    """Sends and acks go through `MessageWriter` (one statement per cycle for everything
    queued meanwhile); everything else through `PgDb`."""

    def __init__(self, db: PgDb, origin: str = "") -> None:
        self.db = db
        self.origin = origin  # who committed, in the NOTIFY payload
        self._writer = MessageWriter(db, origin)

    async def insert_messages(
        self,
        msgs: Sequence[NewMessage],
        at: str,
        on_commit: Callable[[list[Message]], None] | None = None,
    ) -> list[Message]:
        if not msgs:
            if on_commit is not None:
                on_commit([])
            return []
        return await self._writer.insert(list(msgs), at, on_commit)

    async def undelivered(
        self, recipient: str, limit: int, exclude: Collection[int] = ()
    ) -> tuple[list[Message], int]:
        excl = list(exclude)

        async def fn(conn: Conn) -> tuple[list[Message], int]:
            cur = await conn.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE recipient = %s AND delivered_at IS NULL"
                f" AND {_CURRENT} AND NOT (id = ANY(%s::bigint[])) ORDER BY id LIMIT %s",
                (recipient, excl, limit),
            )
            rows = await cur.fetchall()
            if len(rows) < limit:
                total = len(rows)
            else:
                cur = await conn.execute(
                    "SELECT count(*) AS n FROM messages WHERE recipient = %s"
                    f" AND delivered_at IS NULL AND {_CURRENT} AND NOT (id = ANY(%s::bigint[]))",
                    (recipient, excl),
                )
                total = int((await cur.fetchone() or {"n": 0})["n"])
            return [_message(r) for r in rows], total

        return await self.db.read(fn)

    async def count_undelivered(self, recipient: str) -> int:
        return (await self.count_undelivered_many([recipient]))[recipient]

    async def count_undelivered_many(self, recipients: Sequence[str]) -> dict[str, int]:
        # one round trip for all of them; per recipient the generation is looked up once (not
        # per row), and the count is one range of the `messages_unread` index
        async def fn(conn: Conn) -> dict[str, int]:
            cur = await conn.execute(
                "SELECT r.name, (SELECT count(*) FROM messages m WHERE m.recipient = r.name"
                " AND m.delivered_at IS NULL AND m.recipient_generation ="
                " COALESCE((SELECT a.generation FROM agents a WHERE a.name = r.name), 0)) AS n"
                " FROM unnest(%s::text[]) AS r(name)",
                (list(recipients),),
            )
            return {row["name"]: int(row["n"]) for row in await cur.fetchall()}

        return await self.db.read(fn)

    async def adopt_undelivered(
        self, recipient: str, from_generation: int, to_generation: int
    ) -> int:
        async def fn(conn: Conn) -> int:
            cur = await conn.execute(
                "WITH u AS (UPDATE messages SET recipient_generation = %s WHERE recipient = %s"
                " AND recipient_generation = %s AND delivered_at IS NULL RETURNING 1)"
                " SELECT count(*) AS n FROM u",
                (to_generation, recipient, from_generation),
            )
            return int((await cur.fetchone() or {"n": 0})["n"])

        return await self.db.write(fn)

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        if ids:
            await self._writer.ack(list(ids), at)

    async def recent(self, participant: str, limit: int) -> list[Message]:
        async def fn(conn: Conn) -> list[Message]:
            cur = await conn.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE recipient = %s AND {_CURRENT}"
                " ORDER BY id DESC LIMIT %s",
                (participant, limit),
            )
            return [_message(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def sweep_delivered(self, before: str) -> int:
        async def fn(conn: Conn) -> int:
            cur = await conn.execute(
                "WITH d AS (DELETE FROM messages WHERE delivered_at IS NOT NULL AND sent_at < %s"
                " RETURNING 1) SELECT count(*) AS n FROM d",
                (before,),
            )
            return int((await cur.fetchone() or {"n": 0})["n"])

        return await self.db.write(fn)


_AGENT_COLS = (
    "name, kind, created_at, generation, runtime, paused, status_text, status_set_at, parent, model"
)


class PgAgentStore(AgentStore):
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def all_agents(self) -> list[AgentRecord]:
        async def fn(conn: Conn) -> list[AgentRecord]:
            cur = await conn.execute(f"SELECT {_AGENT_COLS} FROM agents ORDER BY name")
            return [
                AgentRecord(
                    name=r["name"],
                    kind=r["kind"],
                    created_at=r["created_at"],
                    generation=r["generation"],
                    runtime=r["runtime"],
                    paused=bool(r["paused"]),
                    status_text=r["status_text"],
                    status_set_at=r["status_set_at"],
                    parent=r["parent"],
                    model=r["model"],
                )
                for r in await cur.fetchall()
            ]

        return await self.db.read(fn)

    async def put_agent(self, rec: AgentRecord) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute(
                f"INSERT INTO agents({_AGENT_COLS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind,"
                " created_at = EXCLUDED.created_at, generation = EXCLUDED.generation,"
                " runtime = EXCLUDED.runtime, paused = EXCLUDED.paused,"
                " status_text = EXCLUDED.status_text, status_set_at = EXCLUDED.status_set_at,"
                " parent = EXCLUDED.parent, model = EXCLUDED.model",
                (
                    rec.name,
                    rec.kind,
                    rec.created_at,
                    rec.generation,
                    rec.runtime,
                    rec.paused,
                    rec.status_text,
                    rec.status_set_at,
                    rec.parent,
                    rec.model,
                ),
            )

        await self.db.write(fn)

    async def next_generation(self, name: str) -> int:
        async def fn(conn: Conn) -> int:
            cur = await conn.execute(
                "INSERT INTO agent_generations(name, generation) VALUES (%s, 1)"
                " ON CONFLICT (name) DO UPDATE"
                " SET generation = agent_generations.generation + 1 RETURNING generation",
                (name,),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row["generation"])

        return await self.db.write(fn)

    async def delete_agent(self, name: str) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute("DELETE FROM agents WHERE name = %s", (name,))

        await self.db.write(fn)

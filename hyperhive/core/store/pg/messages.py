"""PostgreSQL messages and agents (`MessageStore`, `AgentStore`): the same rows and meaning as
`core/store/sqlite.py`.

Wake-ups: `insert_messages` issues one `pg_notify(CHANNEL, ...)` per row in the INSERT's own
statement (`_INSERT_NOTIFY`), so every LISTENing process learns of the commit when (and only
when) it commits; the payload carries the row when it fits (`parse_payload` reads it), so the
receiving node indexes it without a read. `PgStorage` ignores its own origin (its broker
already knows, via `on_commit`). Ids come from an identity column: monotonic, never reused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from hyperhive.core.records import AgentRecord, Message, NewMessage
from hyperhive.core.store.base import AgentStore, MessageStore
from hyperhive.core.store.pg.db import Conn, PgDb
from hyperhive.errors import Unavailable

logger = logging.getLogger(__name__)

CHANNEL = "hive_messages"
SEP = "\n"  # between payload fields (names never hold a newline)

_CURRENT = (
    "recipient_generation = COALESCE("
    "(SELECT generation FROM agents WHERE agents.name = messages.recipient), 0)"
)


def _fail(batch: list[_Insert], exc: Exception) -> None:
    for _, _, _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


# One statement per coalesced batch: the INSERT and, per row, its NOTIFY (sent at COMMIT).
# The payload carries the row (`origin, recipient, id, generation, sender, kind, sent_at,
# +trace_parent or -, body`, newline-separated, the body last) so the receiving node indexes
# it without a read; a row that does not fit PostgreSQL's 8,000-byte payload (or with a
# newline where no field may hold one) notifies only `origin, recipient` (dropped index,
# re-read). Identical short payloads are folded into one by PostgreSQL.
_INSERT_NOTIFY = (
    "WITH ins AS (INSERT INTO messages(sender, recipient, body, kind, sent_at,"
    " recipient_generation, trace_parent)"
    " SELECT t.s, t.r, t.b, t.k, t.a,"
    " COALESCE((SELECT generation FROM agents WHERE name = t.r), 0), t.tp"
    " FROM unnest(%(s)s::text[], %(r)s::text[], %(b)s::text[], %(k)s::text[], %(a)s::text[],"
    " %(tp)s::text[]) WITH ORDINALITY AS t(s, r, b, k, a, tp, n) ORDER BY t.n"
    " RETURNING id, sender, recipient, body, kind, sent_at, recipient_generation, trace_parent)"
    " SELECT ins.id, ins.recipient, ins.recipient_generation, pg_notify(%(ch)s,"
    " CASE WHEN octet_length(p.full) < 8000 AND strpos(concat(ins.sender, ins.recipient,"
    " ins.kind, ins.sent_at, ins.trace_parent), chr(10)) = 0 THEN p.full"
    " ELSE %(o)s || chr(10) || ins.recipient END)::text AS n"
    " FROM ins, LATERAL (SELECT concat_ws(chr(10), %(o)s::text, ins.recipient, ins.id,"
    " ins.recipient_generation, ins.sender, ins.kind, ins.sent_at,"
    " COALESCE('+' || ins.trace_parent, '-'), ins.body) AS full) p ORDER BY ins.id"
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


_Insert = tuple[
    list[NewMessage], str, Callable[[list[Message]], None] | None, "asyncio.Future[list[Message]]"
]


class PgMessageStore(MessageStore):
    """Concurrent `insert_messages` calls are coalesced: everything queued while one insert
    is in flight goes into the next single INSERT (and one NOTIFY statement), so a busy hive
    pays two round trips per batch, not per send. If that combined insert fails for a reason
    of its own (a value PostgreSQL refuses), each request is tried alone, so only the bad
    one fails. Each request's `on_commit` runs right after the COMMIT, in queue order."""

    def __init__(self, db: PgDb, origin: str = "") -> None:
        self.db = db
        self.origin = origin  # who committed, in the NOTIFY payload
        self._queue: list[_Insert] = []
        self._flusher: asyncio.Task[None] | None = None

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
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Message]] = loop.create_future()
        self._queue.append((list(msgs), at, on_commit, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_loop(), name="pg-insert")
        return await asyncio.shield(fut)  # a cancelled caller does not un-know the insert

    async def _flush_loop(self) -> None:
        while self._queue:
            await asyncio.sleep(0)  # let this loop pass's sends join
            batch, self._queue = self._queue, []
            try:
                await self._insert(batch)
            except Exception as exc:
                if len(batch) == 1 or isinstance(exc, Unavailable):
                    _fail(batch, exc)
                    continue
                for one in batch:  # only the request at fault fails
                    try:
                        await self._insert([one])
                    except Exception as exc1:
                        _fail([one], exc1)
            except BaseException as exc:
                _fail(batch, Unavailable(repr(exc)))
                raise

    async def _insert(self, batch: list[_Insert]) -> None:
        flat = [(m, at) for msgs, at, _, _ in batch for m in msgs]

        async def fn(conn: Conn) -> list[Message]:
            cur = await conn.execute(
                _INSERT_NOTIFY,
                {
                    "s": [m.sender for m, _ in flat],
                    "r": [m.recipient for m, _ in flat],
                    "b": [m.body for m, _ in flat],
                    "k": [m.kind for m, _ in flat],
                    "a": [at for _, at in flat],
                    "tp": [m.trace_parent for m, _ in flat],
                    "ch": CHANNEL,
                    "o": self.origin,
                },
            )
            rows = await cur.fetchall()  # in id order, which is the order of `flat`
            out = []
            for (m, at), r in zip(flat, rows, strict=True):
                assert r["recipient"] == m.recipient
                out.append(
                    Message(
                        r["id"],
                        m.sender,
                        m.recipient,
                        m.body,
                        m.kind,
                        at,
                        None,
                        int(r["recipient_generation"]),
                        m.trace_parent,
                    )
                )
            return out

        def committed(rows: list[Message]) -> None:
            i = 0
            for msgs, _, on_commit, fut in batch:
                mine, i = rows[i : i + len(msgs)], i + len(msgs)
                if on_commit is not None:
                    try:
                        on_commit(mine)
                    except Exception:
                        logger.exception("on_commit hook failed")
                if not fut.done():
                    fut.set_result(mine)

        await self.db.write(fn, on_commit=committed)

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
        async def fn(conn: Conn) -> int:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM messages WHERE recipient = %s"
                f" AND delivered_at IS NULL AND {_CURRENT}",
                (recipient,),
            )
            return int((await cur.fetchone() or {"n": 0})["n"])

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
        id_list = list(ids)

        async def fn(conn: Conn) -> None:
            await conn.execute(
                "UPDATE messages SET delivered_at = %s WHERE id = ANY(%s::bigint[]) AND delivered_at IS NULL",
                (at, id_list),
            )

        await self.db.write(fn)

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

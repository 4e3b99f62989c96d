"""SQLite implementations of the store interfaces, over `hyperhive.db.Database`.

Generations: a message is stamped, in its insert transaction, with the generation of the
agent row of its recipient (0 when there is none: the operator); the unread queries and
`recent` see only rows of the recipient's current generation (`_CURRENT`), so mail for a
destroyed incarnation never reaches a new agent of the same name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence

from hyperhive.core.records import AgentRecord, Message, NewMessage
from hyperhive.core.store.base import AgentStore, MessageStore
from hyperhive.db import Database

# the row is addressed to the recipient's current incarnation (0: no such agent, the operator)
_COUNT_UNREAD = (
    "SELECT count(*) FROM messages WHERE recipient = ? AND delivered_at IS NULL"
    " AND recipient_generation = COALESCE((SELECT generation FROM agents WHERE name = ?), 0)"
)
_CURRENT = (
    "recipient_generation = COALESCE("
    "(SELECT generation FROM agents WHERE agents.name = messages.recipient), 0)"
)


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        sender=row["sender"],
        recipient=row["recipient"],
        body=row["body"],
        kind=row["kind"],
        sent_at=row["sent_at"],
        delivered_at=row["delivered_at"],
        recipient_generation=row["recipient_generation"],
        trace_parent=row["trace_parent"],
    )


class SqliteMessageStore(MessageStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert_messages(
        self,
        msgs: Sequence[NewMessage],
        at: str,
        on_commit: Callable[[list[Message]], None] | None = None,
    ) -> list[Message]:
        def fn(conn: sqlite3.Connection) -> list[Message]:
            out = []
            gens: dict[str, int] = {}
            for m in msgs:
                gen = gens.get(m.recipient)
                if gen is None:
                    r = conn.execute(
                        "SELECT generation FROM agents WHERE name = ?", (m.recipient,)
                    ).fetchone()
                    gen = gens[m.recipient] = int(r[0]) if r is not None else 0
                cur = conn.execute(
                    "INSERT INTO messages(sender, recipient, body, kind, sent_at,"
                    " recipient_generation, trace_parent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (m.sender, m.recipient, m.body, m.kind, at, gen, m.trace_parent),
                )
                assert cur.lastrowid is not None
                out.append(
                    Message(
                        cur.lastrowid,
                        m.sender,
                        m.recipient,
                        m.body,
                        m.kind,
                        at,
                        None,
                        gen,
                        m.trace_parent,
                    )
                )
            return out

        return await self.db.write(fn, on_commit=on_commit)

    async def undelivered(
        self, recipient: str, limit: int, exclude: Collection[int] = ()
    ) -> tuple[list[Message], int]:
        excl = list(exclude)
        marks = ",".join("?" * len(excl))
        not_in = f" AND id NOT IN ({marks})" if excl else ""

        def fn(conn: sqlite3.Connection) -> tuple[list[Message], int]:
            rows = conn.execute(
                "SELECT * FROM messages WHERE recipient = ? AND delivered_at IS NULL"
                f" AND {_CURRENT}{not_in} ORDER BY id LIMIT ?",
                (recipient, *excl, limit),
            ).fetchall()
            if len(rows) < limit:
                total = len(rows)
            else:
                total = conn.execute(
                    "SELECT count(*) FROM messages WHERE recipient = ? AND delivered_at IS NULL"
                    f" AND {_CURRENT}{not_in}",
                    (recipient, *excl),
                ).fetchone()[0]
            return [_message(r) for r in rows], total

        return await self.db.read(fn)

    async def count_undelivered(self, recipient: str) -> int:
        return (await self.count_undelivered_many([recipient]))[recipient]

    async def count_undelivered_many(self, recipients: Sequence[str]) -> dict[str, int]:
        # the generation looked up once per recipient (not per row, as `_CURRENT` would): each
        # count is one range of the `messages_unread` index (migration 0009), no table row
        # read; all of them in one read (one hop to the reader thread, one cached statement)
        def fn(conn: sqlite3.Connection) -> dict[str, int]:
            return {r: int(conn.execute(_COUNT_UNREAD, (r, r)).fetchone()[0]) for r in recipients}

        return await self.db.read(fn)

    async def adopt_undelivered(
        self, recipient: str, from_generation: int, to_generation: int
    ) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE messages SET recipient_generation = ? WHERE recipient = ?"
                " AND recipient_generation = ? AND delivered_at IS NULL",
                (to_generation, recipient, from_generation),
            ).rowcount

        return await self.db.write(fn)

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        id_list = list(ids)

        def fn(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE messages SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                [(at, i) for i in id_list],
            )

        await self.db.write(fn)

    async def recent(self, participant: str, limit: int) -> list[Message]:
        def fn(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                f"SELECT * FROM messages WHERE recipient = ? AND {_CURRENT}"
                " ORDER BY id DESC LIMIT ?",
                (participant, limit),
            ).fetchall()
            return [_message(r) for r in rows]

        return await self.db.read(fn)

    async def sweep_delivered(self, before: str) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM messages WHERE delivered_at IS NOT NULL AND sent_at < ?", (before,)
            )
            return cur.rowcount

        return await self.db.write(fn)


_AGENT_COLS = (
    "name, kind, created_at, generation, runtime, paused, status_text, status_set_at, parent, model"
)


class SqliteAgentStore(AgentStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all_agents(self) -> list[AgentRecord]:
        def fn(conn: sqlite3.Connection) -> list[AgentRecord]:
            rows = conn.execute(f"SELECT {_AGENT_COLS} FROM agents ORDER BY name").fetchall()
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
                for r in rows
            ]

        return await self.db.read(fn)

    async def put_agent(self, rec: AgentRecord) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT OR REPLACE INTO agents({_AGENT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.name,
                    rec.kind,
                    rec.created_at,
                    rec.generation,
                    rec.runtime,
                    int(rec.paused),
                    rec.status_text,
                    rec.status_set_at,
                    rec.parent,
                    rec.model,
                ),
            )

        await self.db.write(fn)

    async def next_generation(self, name: str) -> int:
        """Bump and return `name`'s generation (1 for a name never seen). The counter
        outlives destroy and purge, so a generation is never reused."""

        def fn(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "INSERT INTO agent_generations(name, generation) VALUES (?, 1)"
                " ON CONFLICT(name) DO UPDATE SET generation = generation + 1"
                " RETURNING generation",
                (name,),
            ).fetchone()
            return int(row[0])

        return await self.db.write(fn)

    async def delete_agent(self, name: str) -> None:
        await self.db.write(lambda conn: conn.execute("DELETE FROM agents WHERE name = ?", (name,)))

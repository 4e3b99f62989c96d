"""PostgreSQL operator questions and reminders (`QuestionStore`, `ReminderStore`): the same rows
and meaning as `questions_sqlite.py` / `reminders_sqlite.py`.

A question is resolved at most once, decided in the database: `resolve` locks the row
(`SELECT ... FOR UPDATE`), runs `decide`, and `UPDATE ... WHERE answered_at IS NULL` in one
transaction; two nodes resolving at once serialise on the row lock and the second sees it
resolved. Reminders move only while `status = 'pending'`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from hyperhive.core.store.base import Decide, QuestionStore, ReminderStore
from hyperhive.core.store.pg.db import Conn, PgDb
from hyperhive.errors import NotFound
from hyperhive.wire.followups import QuestionRow, ReminderRow

_Q_COLS = (
    "id, asker, question, options_json, multi, asked_at, deadline_at, answered_at, answer, target,"
    " generation"
)
_Q_CURRENT = (
    "generation = COALESCE("
    "(SELECT a.generation FROM agents a WHERE a.name = operator_questions.asker), 0)"
)


def _question(r: dict[str, Any]) -> QuestionRow:
    return QuestionRow(
        id=r["id"],
        asker=r["asker"],
        question=r["question"],
        options=json.loads(r["options_json"] or "[]"),
        multi=bool(r["multi"]),
        asked_at=r["asked_at"],
        deadline_at=r["deadline_at"],
        target=r["target"],
        answered_at=r["answered_at"],
        answer=r["answer"],
        generation=r["generation"],
    )


async def _get_question(conn: Conn, qid: int, lock: bool = False) -> QuestionRow | None:
    cur = await conn.execute(
        f"SELECT {_Q_COLS} FROM operator_questions WHERE id = %s" + (" FOR UPDATE" if lock else ""),
        (qid,),
    )
    r = await cur.fetchone()
    return _question(r) if r is not None else None


class PgQuestionStore(QuestionStore):
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def insert(
        self,
        asker: str,
        question: str,
        options: Sequence[str],
        multi: bool,
        asked_at: str,
        deadline_at: str | None,
        target: str = "operator",
    ) -> QuestionRow:
        async def fn(conn: Conn) -> QuestionRow:
            cur = await conn.execute(
                "INSERT INTO operator_questions"
                "(asker, question, options_json, multi, asked_at, deadline_at, target, generation)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " COALESCE((SELECT generation FROM agents WHERE name = %s), 0))"
                f" RETURNING {_Q_COLS}",
                (
                    asker,
                    question,
                    json.dumps(list(options), ensure_ascii=False),
                    multi,
                    asked_at,
                    deadline_at,
                    target,
                    asker,
                ),
            )
            r = await cur.fetchone()
            assert r is not None
            return _question(r)

        return await self.db.write(fn)

    async def get(self, qid: int) -> QuestionRow | None:
        return await self.db.read(lambda conn: _get_question(conn, qid))

    async def pending(self, asker: str | None = None) -> list[QuestionRow]:
        async def fn(conn: Conn) -> list[QuestionRow]:
            if asker is None:
                cur = await conn.execute(
                    f"SELECT {_Q_COLS} FROM operator_questions WHERE answered_at IS NULL"
                    " ORDER BY id"
                )
            else:
                cur = await conn.execute(
                    f"SELECT {_Q_COLS} FROM operator_questions"
                    f" WHERE answered_at IS NULL AND asker = %s AND {_Q_CURRENT} ORDER BY id",
                    (asker,),
                )
            return [_question(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def resolve(self, qid: int, at: str, decide: Decide) -> tuple[QuestionRow, bool]:
        async def fn(conn: Conn) -> tuple[QuestionRow, bool]:
            row = await _get_question(conn, qid, lock=True)
            if row is None:
                raise NotFound(f"no operator question #{qid}")
            if not row.open:
                return row, False
            answer = decide(row)
            cur = await conn.execute(
                "UPDATE operator_questions SET answered_at = %s, answer = %s"
                f" WHERE id = %s AND answered_at IS NULL RETURNING {_Q_COLS}",
                (at, answer, qid),
            )
            r = await cur.fetchone()
            if r is None:
                now = await _get_question(conn, qid)
                assert now is not None
                return now, False
            return _question(r), True

        return await self.db.write(fn)

    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        async def fn(conn: Conn) -> list[int]:
            cur = await conn.execute(
                "SELECT id FROM operator_questions WHERE answered_at IS NULL"
                " AND deadline_at IS NOT NULL AND deadline_at <= %s"
                " ORDER BY deadline_at, id LIMIT %s",
                (cutoff, limit),
            )
            return [int(r["id"]) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def next_deadline(self) -> str | None:
        async def fn(conn: Conn) -> str | None:
            cur = await conn.execute(
                "SELECT min(deadline_at) AS m FROM operator_questions"
                " WHERE answered_at IS NULL AND deadline_at IS NOT NULL"
            )
            r = await cur.fetchone()
            return r["m"] if r is not None else None

        return await self.db.read(fn)


_R_COLS = (
    "id, agent, body, file_path, due_at, created_at, attempts, status, delivered_at, last_error,"
    " generation"
)
_R_CURRENT = (
    "generation = COALESCE((SELECT a.generation FROM agents a WHERE a.name = reminders.agent), 0)"
)


def _reminder(r: dict[str, Any]) -> ReminderRow:
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


async def _get_reminder(conn: Conn, rid: int) -> ReminderRow | None:
    cur = await conn.execute(f"SELECT {_R_COLS} FROM reminders WHERE id = %s", (rid,))
    r = await cur.fetchone()
    return _reminder(r) if r is not None else None


class PgReminderStore(ReminderStore):
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def insert(
        self, agent: str, body: str, file_path: str | None, due_at: str, created_at: str
    ) -> ReminderRow:
        async def fn(conn: Conn) -> ReminderRow:
            cur = await conn.execute(
                "INSERT INTO reminders(agent, body, file_path, due_at, created_at, generation)"
                " VALUES (%s, %s, %s, %s, %s,"
                " COALESCE((SELECT generation FROM agents WHERE name = %s), 0))"
                f" RETURNING {_R_COLS}",
                (agent, body, file_path, due_at, created_at, agent),
            )
            r = await cur.fetchone()
            assert r is not None
            return _reminder(r)

        return await self.db.write(fn)

    async def get(self, rid: int) -> ReminderRow | None:
        return await self.db.read(lambda conn: _get_reminder(conn, rid))

    async def count_pending(self, agent: str) -> int:
        return (await self.count_pending_many([agent]))[agent]

    async def count_pending_many(self, agents: Sequence[str]) -> dict[str, int]:
        async def fn(conn: Conn) -> dict[str, int]:  # one round trip for all of them
            cur = await conn.execute(
                "SELECT r.name, (SELECT count(*) FROM reminders WHERE agent = r.name"
                f" AND status = 'pending' AND {_R_CURRENT}) AS n"
                " FROM unnest(%s::text[]) AS r(name)",
                (list(agents),),
            )
            return {row["name"]: int(row["n"]) for row in await cur.fetchall()}

        return await self.db.read(fn)

    async def due(self, cutoff: str, limit: int) -> list[ReminderRow]:
        async def fn(conn: Conn) -> list[ReminderRow]:
            cur = await conn.execute(
                f"SELECT {_R_COLS} FROM reminders WHERE status = 'pending' AND due_at <= %s"
                " ORDER BY due_at, id LIMIT %s",
                (cutoff, limit),
            )
            return [_reminder(r) for r in await cur.fetchall()]

        return await self.db.read(fn)

    async def next_due(self) -> str | None:
        async def fn(conn: Conn) -> str | None:
            cur = await conn.execute(
                "SELECT min(due_at) AS m FROM reminders WHERE status = 'pending'"
            )
            r = await cur.fetchone()
            return r["m"] if r is not None else None

        return await self.db.read(fn)

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        id_list = list(ids)

        async def fn(conn: Conn) -> None:
            await conn.execute(
                "UPDATE reminders SET status = 'delivered', delivered_at = %s,"
                " attempts = attempts + 1 WHERE id = ANY(%s::bigint[]) AND status = 'pending'",
                (at, id_list),
            )

        await self.db.write(fn)

    async def record_failure(self, rid: int, error: str, retry_at: str | None) -> ReminderRow:
        async def fn(conn: Conn) -> ReminderRow:
            if await _get_reminder(conn, rid) is None:
                raise NotFound(f"no reminder #{rid}")
            if retry_at is None:
                await conn.execute(
                    "UPDATE reminders SET attempts = attempts + 1, last_error = %s,"
                    " status = 'failed' WHERE id = %s AND status = 'pending'",
                    (error, rid),
                )
            else:
                await conn.execute(
                    "UPDATE reminders SET attempts = attempts + 1, last_error = %s, due_at = %s"
                    " WHERE id = %s AND status = 'pending'",
                    (error, retry_at, rid),
                )
            row = await _get_reminder(conn, rid)
            assert row is not None
            return row

        return await self.db.write(fn)

"""SQLite storage of operator questions (`operator_questions`, migration 0002).

Invariant: a question is resolved at most once, and the database decides which resolution
wins: `resolve` reads the row and runs `UPDATE ... WHERE answered_at IS NULL` in one write
transaction on the single writer, and only a rowcount of 1 counts as a win. Everything else
(answer, expiry, cancel) goes through it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from hyperhive.core.store.base import Decide, QuestionStore
from hyperhive.db import Database
from hyperhive.errors import NotFound
from hyperhive.wire.followups import QuestionRow

_COLS = (
    "id, asker, question, options_json, multi, asked_at, deadline_at, answered_at, answer, target,"
    " generation"
)
# asked by the asker's current incarnation (see `hyperhive.core.store.sqlite`)
_CURRENT = (
    "generation = COALESCE("
    "(SELECT a.generation FROM agents a WHERE a.name = operator_questions.asker), 0)"
)


def _row(r: sqlite3.Row) -> QuestionRow:
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


def _get(conn: sqlite3.Connection, qid: int) -> QuestionRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM operator_questions WHERE id = ?", (qid,)).fetchone()
    return _row(r) if r is not None else None


class SqliteQuestionStore(QuestionStore):
    def __init__(self, db: Database) -> None:
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
        """Store a question, stamped with the asker's current generation."""

        def fn(conn: sqlite3.Connection) -> QuestionRow:
            cur = conn.execute(
                "INSERT INTO operator_questions"
                "(asker, question, options_json, multi, asked_at, deadline_at, target, generation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?,"
                " COALESCE((SELECT generation FROM agents WHERE name = ?), 0))",
                (
                    asker,
                    question,
                    json.dumps(list(options), ensure_ascii=False),
                    int(multi),
                    asked_at,
                    deadline_at,
                    target,
                    asker,
                ),
            )
            assert cur.lastrowid is not None
            row = _get(conn, cur.lastrowid)
            assert row is not None
            return row

        return await self.db.write(fn)

    async def get(self, qid: int) -> QuestionRow | None:
        return await self.db.read(lambda conn: _get(conn, qid))

    async def pending(self, asker: str | None = None) -> list[QuestionRow]:
        """Unresolved questions (of `asker`'s current incarnation, or everyone's), oldest
        first."""

        def fn(conn: sqlite3.Connection) -> list[QuestionRow]:
            if asker is None:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM operator_questions WHERE answered_at IS NULL ORDER BY id"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM operator_questions"
                    f" WHERE answered_at IS NULL AND asker = ? AND {_CURRENT} ORDER BY id",
                    (asker,),
                ).fetchall()
            return [_row(r) for r in rows]

        return await self.db.read(fn)

    async def resolve(self, qid: int, at: str, decide: Decide) -> tuple[QuestionRow, bool]:
        """Resolve `qid` with `decide(row)` if it is still open. Returns the row as it now is
        and whether this call resolved it (False: it was already resolved; `decide` not run).
        Raises `NotFound` for an unknown id, or whatever `decide` raises to refuse."""

        def fn(conn: sqlite3.Connection) -> tuple[QuestionRow, bool]:
            row = _get(conn, qid)
            if row is None:
                raise NotFound(f"no operator question #{qid}")
            if not row.open:
                return row, False
            answer = decide(row)
            cur = conn.execute(
                "UPDATE operator_questions SET answered_at = ?, answer = ?"
                " WHERE id = ? AND answered_at IS NULL",
                (at, answer, qid),
            )
            now = _get(conn, qid)
            assert now is not None
            return now, cur.rowcount == 1

        return await self.db.write(fn)

    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        """Ids of open questions whose deadline is at or before `cutoff`, earliest first."""

        def fn(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT id FROM operator_questions WHERE answered_at IS NULL"
                " AND deadline_at IS NOT NULL AND deadline_at <= ?"
                " ORDER BY deadline_at, id LIMIT ?",
                (cutoff, limit),
            ).fetchall()
            return [int(r[0]) for r in rows]

        return await self.db.read(fn)

    async def next_deadline(self) -> str | None:
        def fn(conn: sqlite3.Connection) -> str | None:
            r = conn.execute(
                "SELECT min(deadline_at) FROM operator_questions"
                " WHERE answered_at IS NULL AND deadline_at IS NOT NULL"
            ).fetchone()
            return r[0] if r is not None else None

        return await self.db.read(fn)

"""The SQLite search store: FTS5 tables over the hive database's own rows, kept in step by
triggers, plus the turn docs the indexer copies in from the agents' event stores.

Schema (migration `0006_search`, `m0006_search`):
- `messages_fts`, `questions_fts`, `approvals_fts`: external-content FTS5 tables over
  `messages`, `operator_questions`, `approvals` (rowid = the row's id). AFTER INSERT / UPDATE OF
  the indexed columns / DELETE triggers keep each in step inside the writing transaction, so a
  committed row is searchable and a swept row (retention) leaves the index with it. The
  migration indexes the rows that existed before it (`rebuild`), once.
- `turn_docs` (+ `turn_fts`, same triggers) and `turn_cursors`: turn history by agent and
  event id (`hyperhive.core.turnindex` fills them).
- Tokenizer `porter unicode61 remove_diacritics 2`: "decided" finds "decide", accents fold.

Queries are `MATCH` + join on the row's id, newest first (`ORDER BY rowid DESC`, which FTS5
walks in order and stops at the limit), filters on the source table's columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from hyperhive.core.store.search import (
    MARK_OFF,
    MARK_ON,
    SNIPPET_TOKENS,
    SearchQuery,
    SearchStore,
    TurnDoc,
    merge,
    segments,
)
from hyperhive.db import Database
from hyperhive.errors import BadRequest
from hyperhive.wire.search import KINDS, SearchHit

_TOKENIZE = "tokenize='porter unicode61 remove_diacritics 2'"


def _fts(table: str, source: str, cols: Sequence[str], watch: Sequence[str]) -> list[str]:
    """DDL of one external-content FTS5 table over `source` with its three triggers."""
    fts = table
    names = ", ".join(cols)
    new = ", ".join(f"new.{c}" for c in cols)
    old = ", ".join(f"old.{c}" for c in cols)
    ins = f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new})"
    dele = f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old})"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{source}',"
        f" content_rowid='id', {_TOKENIZE})",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {source} BEGIN {ins}; END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {source} BEGIN {dele}; END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {', '.join(watch)} ON {source}"
        f" BEGIN {dele}; {ins}; END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


_MSG_COLS = ("body", "sender", "recipient")
_Q_COLS = ("question", "answer", "asker")
_A_COLS = ("description", "note", "agent", "kind", "requested_by")
_T_COLS = ("body", "title", "agent")


def m0006_search(conn: sqlite3.Connection) -> None:
    stmts = [
        "CREATE TABLE turn_docs ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL,"
        " event_id INTEGER NOT NULL, ts TEXT NOT NULL, kind TEXT NOT NULL,"
        " title TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (agent, event_id))",
        "CREATE INDEX turn_docs_by_ts ON turn_docs(ts)",
        "CREATE TABLE turn_cursors (agent TEXT PRIMARY KEY, event_id INTEGER NOT NULL)",
        *_fts("messages_fts", "messages", _MSG_COLS, _MSG_COLS),
        *_fts("questions_fts", "operator_questions", _Q_COLS, _Q_COLS),
        *_fts("approvals_fts", "approvals", _A_COLS, ("description", "note", "status")),
        *_fts("turn_fts", "turn_docs", _T_COLS, _T_COLS),
    ]
    for stmt in stmts:  # not `execute_script`: trigger bodies hold `;`
        conn.execute(stmt)


def _snip(table: str) -> str:
    return f"snippet({table}, -1, '{MARK_ON}', '{MARK_OFF}', '…', {SNIPPET_TOKENS})"


Row = sqlite3.Row


def _message_hit(r: Row) -> SearchHit:
    return SearchHit(
        kind="message",
        ref=r["id"],
        ts=r["ts"],
        agent=r["sender"],
        peer=r["recipient"],
        title=f"{r['sender']} → {r['recipient']}",
        snippet=segments(r["snip"]),
    )


def _question_hit(r: Row) -> SearchHit:
    state = "answered" if r["answered_at"] else "open"
    return SearchHit(
        kind="question",
        ref=r["id"],
        ts=r["ts"],
        agent=r["asker"],
        title=f"question #{r['id']} ({state})",
        snippet=segments(r["snip"]),
    )


def _approval_hit(r: Row) -> SearchHit:
    return SearchHit(
        kind="approval",
        ref=r["id"],
        ts=r["ts"],
        agent=r["agent"],
        peer=r["requested_by"] or None,
        title=f"approval #{r['id']} {r['kind']} ({r['status']})",
        snippet=segments(r["snip"]),
    )


def _turn_hit(r: Row) -> SearchHit:
    return SearchHit(
        kind="turn",
        ref=r["event_id"],
        ts=r["ts"],
        agent=r["agent"],
        title=r["title"],
        snippet=segments(r["snip"]),
    )


_TABLES = {
    "message": "messages_fts",
    "question": "questions_fts",
    "approval": "approvals_fts",
    "turn": "turn_fts",
}

# kind → (SELECT ... with `?` for the match, the agent filter, the time column, row → hit)
_SOURCES: dict[str, tuple[str, str, str, Callable[[Row], SearchHit]]] = {
    "message": (
        f"SELECT s.id, s.sender, s.recipient, s.sent_at AS ts, {_snip('messages_fts')} AS snip"
        " FROM messages_fts JOIN messages s ON s.id = messages_fts.rowid"
        " WHERE messages_fts MATCH ?",
        "(s.sender = ? OR s.recipient = ?)",
        "s.sent_at",
        _message_hit,
    ),
    "question": (
        f"SELECT s.id, s.asker, s.answered_at, s.asked_at AS ts, {_snip('questions_fts')} AS snip"
        " FROM questions_fts JOIN operator_questions s ON s.id = questions_fts.rowid"
        " WHERE questions_fts MATCH ?",
        "(s.asker = ? OR s.target = ?)",
        "s.asked_at",
        _question_hit,
    ),
    "approval": (
        "SELECT s.id, s.agent, s.kind, s.status, s.requested_by, s.requested_at AS ts,"
        f" {_snip('approvals_fts')} AS snip"
        " FROM approvals_fts JOIN approvals s ON s.id = approvals_fts.rowid"
        " WHERE approvals_fts MATCH ?",
        "(s.agent = ? OR s.requested_by = ?)",
        "s.requested_at",
        _approval_hit,
    ),
    "turn": (
        f"SELECT s.agent, s.event_id, s.title, s.ts, {_snip('turn_fts')} AS snip"
        " FROM turn_fts JOIN turn_docs s ON s.id = turn_fts.rowid"
        " WHERE turn_fts MATCH ?",
        "(s.agent = ? OR s.agent = ?)",
        "s.ts",
        _turn_hit,
    ),
}


class SqliteSearchStore(SearchStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        kinds = q.kinds or KINDS

        def fn(conn: sqlite3.Connection) -> list[SearchHit]:
            hits: list[SearchHit] = []
            for kind in kinds:
                select, by_agent, ts_col, build = _SOURCES[kind]
                sql, args = select, [q.fts]
                if q.agent is not None:
                    sql += f" AND {by_agent}"
                    args += [q.agent, q.agent]
                if q.since is not None:
                    sql += f" AND {ts_col} >= ?"
                    args.append(q.since)
                sql += f" ORDER BY {_TABLES[kind]}.rowid DESC LIMIT ?"
                try:
                    rows = conn.execute(sql, (*args, q.limit)).fetchall()
                except sqlite3.OperationalError as exc:  # `fts_query` makes this unreachable
                    raise BadRequest(f"cannot search for {q.fts!r}: {exc}") from None
                hits.extend(build(r) for r in rows)
            return merge(hits, q.limit)

        return await self.db.read(fn)

    async def add_turns(self, agent: str, docs: Sequence[TurnDoc], cursor: int) -> int:
        rows = [(d.agent, d.event_id, d.ts, d.kind, d.title, d.body) for d in docs]

        def fn(conn: sqlite3.Connection) -> int:
            added = 0
            for row in rows:
                added += conn.execute(
                    "INSERT OR IGNORE INTO turn_docs(agent, event_id, ts, kind, title, body)"
                    " VALUES (?,?,?,?,?,?)",
                    row,
                ).rowcount
            conn.execute(
                "INSERT INTO turn_cursors(agent, event_id) VALUES (?, ?) ON CONFLICT(agent)"
                " DO UPDATE SET event_id = max(event_id, excluded.event_id)",
                (agent, cursor),
            )
            return added

        return await self.db.write(fn)

    async def turn_cursor(self, agent: str) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            r = conn.execute("SELECT event_id FROM turn_cursors WHERE agent = ?", (agent,))
            row = r.fetchone()
            return int(row[0]) if row is not None else 0

        return await self.db.read(fn)

    async def forget_turns(
        self, agent: str, *, below_id: int | None = None, before: str | None = None
    ) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            n = 0
            if below_id is not None:
                n += conn.execute(
                    "DELETE FROM turn_docs WHERE agent = ? AND event_id < ?", (agent, below_id)
                ).rowcount
            if before is not None:
                n += conn.execute(
                    "DELETE FROM turn_docs WHERE agent = ? AND ts < ?", (agent, before)
                ).rowcount
            return n

        return await self.db.write(fn)

    async def reset_turns(self, agent: str) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM turn_cursors WHERE agent = ?", (agent,))
            return conn.execute("DELETE FROM turn_docs WHERE agent = ?", (agent,)).rowcount

        return await self.db.write(fn)

    async def turn_agents(self) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT agent FROM turn_cursors ORDER BY agent").fetchall()
            return [str(r[0]) for r in rows]

        return await self.db.read(fn)

"""PostgreSQL search (`SearchStore`): the same hits as `search_sqlite.py`, with PostgreSQL's
own full-text search.

Schema (migration `0002_search`, `migrations.py`): a stored generated `search tsvector` column
on `messages`, `operator_questions`, `approvals` and `turn_docs` (config `english`: stemming,
as sqlite's porter tokenizer), each with a GIN index. PostgreSQL computes the column in the
writing statement itself, so the index is in step on every insert / answer / decision and a
deleted row (retention) takes its entry with it; nothing is rebuilt on read.

Queries: the user's terms (`SearchQuery.words`, already split by `fts_query`) become
`websearch_to_tsquery` over the quoted words and phrases (it never raises on any text) ANDed
with `to_tsquery('simple', 'stem:*')` for prefix terms (only `\\w` characters reach it).
Snippets are `ts_headline` with the same markers as sqlite's. Differences from sqlite, by
design of each engine: English stopwords ("the", "and") match nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from hyperhive.core.store.pg.db import Conn, PgDb
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
from hyperhive.wire.search import KINDS, SearchHit

_HEADLINE = (
    f"StartSel={MARK_ON}, StopSel={MARK_OFF}, MaxWords={SNIPPET_TOKENS}, MinWords=6, ShortWord=0"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def pg_terms(words: Sequence[str]) -> tuple[str, str]:
    """(`websearch_to_tsquery` text, `to_tsquery('simple', ...)` text) for `words`."""
    plain: list[str] = []
    prefix: list[str] = []
    for w in words:
        if w.endswith("*"):
            toks = _WORD.findall(w[:-1].lower())
            if toks:
                prefix.append(" & ".join([*toks[:-1], toks[-1] + ":*"]))
        else:
            plain.append('"' + w.replace('"', " ") + '"')
    return " ".join(plain), " & ".join(prefix)


_Q = "(websearch_to_tsquery('english', %(web)s) && to_tsquery('simple', %(pre)s))"


def _message_hit(r: dict[str, Any]) -> SearchHit:
    return SearchHit(
        kind="message",
        ref=r["id"],
        ts=r["ts"],
        agent=r["sender"],
        peer=r["recipient"],
        title=f"{r['sender']} → {r['recipient']}",
        snippet=segments(r["snip"]),
    )


def _question_hit(r: dict[str, Any]) -> SearchHit:
    state = "answered" if r["answered_at"] else "open"
    return SearchHit(
        kind="question",
        ref=r["id"],
        ts=r["ts"],
        agent=r["asker"],
        title=f"question #{r['id']} ({state})",
        snippet=segments(r["snip"]),
    )


def _approval_hit(r: dict[str, Any]) -> SearchHit:
    return SearchHit(
        kind="approval",
        ref=r["id"],
        ts=r["ts"],
        agent=r["agent"],
        peer=r["requested_by"] or None,
        title=f"approval #{r['id']} {r['kind']} ({r['status']})",
        snippet=segments(r["snip"]),
    )


def _turn_hit(r: dict[str, Any]) -> SearchHit:
    return SearchHit(
        kind="turn",
        ref=r["event_id"],
        ts=r["ts"],
        agent=r["agent"],
        title=r["title"],
        snippet=segments(r["snip"]),
    )


def _hl(text: str) -> str:
    return f"ts_headline('english', {text}, q.q, %(hl)s) AS snip"


# kind → (SELECT over `q` with the match, the agent filter, the time column, row → hit)
_SOURCES: dict[str, tuple[str, str, str, Callable[[dict[str, Any]], SearchHit]]] = {
    "message": (
        f"SELECT s.id, s.sender, s.recipient, s.sent_at AS ts, {_hl('s.body')}"
        " FROM messages s, q WHERE s.search @@ q.q",
        "(s.sender = %(agent)s OR s.recipient = %(agent)s)",
        "s.sent_at",
        _message_hit,
    ),
    "question": (
        "SELECT s.id, s.asker, s.answered_at, s.asked_at AS ts, "
        + _hl("s.question || chr(10) || coalesce(s.answer, '')")
        + " FROM operator_questions s, q WHERE s.search @@ q.q",
        "(s.asker = %(agent)s OR s.target = %(agent)s)",
        "s.asked_at",
        _question_hit,
    ),
    "approval": (
        "SELECT s.id, s.agent, s.kind, s.status, s.requested_by, s.requested_at AS ts,"
        f" {_hl('s.description || chr(10) || s.note')}"
        " FROM approvals s, q WHERE s.search @@ q.q",
        "(s.agent = %(agent)s OR s.requested_by = %(agent)s)",
        "s.requested_at",
        _approval_hit,
    ),
    "turn": (
        f"SELECT s.agent, s.event_id, s.title, s.ts, {_hl('s.body')}"
        " FROM turn_docs s, q WHERE s.search @@ q.q",
        "s.agent = %(agent)s",
        "s.ts",
        _turn_hit,
    ),
}


class PgSearchStore(SearchStore):
    def __init__(self, db: PgDb) -> None:
        self.db = db

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        kinds = q.kinds or KINDS
        web, pre = pg_terms(q.words)
        args = {
            "web": web,
            "pre": pre,
            "agent": q.agent,
            "since": q.since,
            "limit": q.limit,
            "hl": _HEADLINE,
        }

        async def fn(conn: Conn) -> list[SearchHit]:
            hits: list[SearchHit] = []
            for kind in kinds:
                select, by_agent, ts_col, build = _SOURCES[kind]
                sql = f"WITH q AS (SELECT {_Q} AS q) {select}"
                if q.agent is not None:
                    sql += f" AND {by_agent}"
                if q.since is not None:
                    sql += f" AND {ts_col} >= %(since)s"
                # newest first by id (the order rows were written in, as sqlite's rowid): the
                # planner may then walk the primary key backwards and stop at the limit when a
                # word is common, or use the GIN index and sort the few matches when it is rare
                sql += " ORDER BY s.id DESC LIMIT %(limit)s"
                cur = await conn.execute(sql, args)
                hits.extend(build(r) for r in await cur.fetchall())
            return merge(hits, q.limit)

        return await self.db.read(fn)

    async def add_turns(self, agent: str, docs: Sequence[TurnDoc], cursor: int) -> int:
        async def fn(conn: Conn) -> int:
            added = 0
            for d in docs:
                cur = await conn.execute(
                    "INSERT INTO turn_docs(agent, event_id, ts, kind, title, body)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (agent, event_id) DO NOTHING"
                    " RETURNING 1 AS new",
                    (d.agent, d.event_id, d.ts, d.kind, d.title, d.body),
                )
                added += len(await cur.fetchall())
            await conn.execute(
                "INSERT INTO turn_cursors(agent, event_id) VALUES (%s, %s) ON CONFLICT (agent)"
                " DO UPDATE SET event_id = GREATEST(turn_cursors.event_id, EXCLUDED.event_id)",
                (agent, cursor),
            )
            return added

        return await self.db.write(fn)

    async def turn_cursor(self, agent: str) -> int:
        async def fn(conn: Conn) -> int:
            cur = await conn.execute("SELECT event_id FROM turn_cursors WHERE agent = %s", (agent,))
            row = await cur.fetchone()
            return int(row["event_id"]) if row is not None else 0

        return await self.db.read(fn)

    async def forget_turns(
        self, agent: str, *, below_id: int | None = None, before: str | None = None
    ) -> int:
        async def fn(conn: Conn) -> int:
            n = 0
            if below_id is not None:
                cur = await conn.execute(
                    "DELETE FROM turn_docs WHERE agent = %s AND event_id < %s RETURNING 1 AS gone",
                    (agent, below_id),
                )
                n += len(await cur.fetchall())
            if before is not None:
                cur = await conn.execute(
                    "DELETE FROM turn_docs WHERE agent = %s AND ts < %s RETURNING 1 AS gone",
                    (agent, before),
                )
                n += len(await cur.fetchall())
            return n

        return await self.db.write(fn)

    async def reset_turns(self, agent: str) -> int:
        async def fn(conn: Conn) -> int:
            await conn.execute("DELETE FROM turn_cursors WHERE agent = %s", (agent,))
            cur = await conn.execute(
                "DELETE FROM turn_docs WHERE agent = %s RETURNING 1 AS gone", (agent,)
            )
            return len(await cur.fetchall())

        return await self.db.write(fn)

    async def turn_agents(self) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            cur = await conn.execute("SELECT agent FROM turn_cursors ORDER BY agent")
            return [str(r["agent"]) for r in await cur.fetchall()]

        return await self.db.read(fn)

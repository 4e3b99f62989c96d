"""Turn history into the search index: the core copies the searchable events of each agent's
own event store (`<state>/hyperhive-events.sqlite`, written by its harness) into the hive
database's `turn_docs` (`SearchStore.add_turns`), incrementally by event id.

Why a host-side pull, not FTS5 in the agent's store or events pushed by the harness: a query
must cover every agent at once in one index (a search that opened N agent stores per query, as
the agent, would cost a process per agent); the agent's store is agent-writable (an FTS table
and triggers there could be crafted by the agent), while the hive database is the core's alone;
and a pull by cursor needs no new harness verb, loses nothing while the core is down (the next
pass catches up) and costs nothing on the turn's path.

What is indexed (`docs_of`): `turn_start` (the wake message: "prompt from X"), assistant `text`,
`tool_use` (tool name and its input as JSON) and `tool_result` (content), each clipped to
`DOC_MAX` characters (tool results to `RESULT_MAX`).

Invariants:
- The agent's store is hostile input. A root core reads it as the agent (`safefs.run_as`, the
  child opens it by relative path inside the state dir it was chrooted into, read-only, with
  `harden`); otherwise it is opened only when it is a regular file (`safefs.is_regular`), never
  through a link. Every field read back is type-checked and clipped; the SQL extracts fields
  with `json_extract` only from rows that are `json_valid`, so a malformed row is skipped.
- The index follows its source: events the agent's store no longer has (the host's retention
  sweep, `core/retention.py`) are forgotten on the next pass (`forget_turns(below_id=first id
  left)`); a store that started over (its newest id is below the cursor: a new incarnation)
  drops the agent's docs and cursor; docs older than `events_days` go in every pass too.
- A pass reads one snapshot per page (one read transaction) and moves the cursor to the last
  id that page scanned, so an event is indexed once (unique by agent and event id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperhive import safefs
from hyperhive.core.store.search import SearchStore, TurnDoc, clean
from hyperhive.db import harden

logger = logging.getLogger(__name__)

EVENTS_DB = "hyperhive-events.sqlite"
DOC_MAX = 8000
RESULT_MAX = 4000
PAGE = 500
READ_AS_TIMEOUT = 60.0

# the SQL that pulls one page: only the kinds indexed, fields extracted and clipped in SQLite
_KINDS = ("turn_start", "text", "tool_use", "tool_result")
_PAGE_SQL = f"""
SELECT id, substr(ts, 1, 40) AS ts, kind,
  substr(CASE kind
    WHEN 'turn_start' THEN json_extract(payload_json, '$.body')
    WHEN 'text' THEN json_extract(payload_json, '$.text')
    WHEN 'tool_use' THEN json_extract(payload_json, '$.input')
    ELSE json_extract(payload_json, '$.content') END, 1, {DOC_MAX}) AS a,
  substr(CASE kind
    WHEN 'turn_start' THEN json_extract(payload_json, '$.from')
    WHEN 'tool_use' THEN json_extract(payload_json, '$.name')
    WHEN 'tool_result' THEN json_extract(payload_json, '$.is_error')
    ELSE NULL END, 1, 200) AS b
FROM events
WHERE id > ? AND kind IN ({", ".join(repr(k) for k in _KINDS)}) AND json_valid(payload_json)
ORDER BY id LIMIT ?
"""


@dataclass(frozen=True)
class EventPage:
    rows: list[tuple[int, str, str, str, str]]  # id, ts, kind, a, b (type-checked, clipped)
    first: int | None  # the store's lowest and highest event ids (None: empty or no store)
    last: int | None
    scanned_to: int  # the cursor after this page
    read: bool = True  # False: no store, or it could not be read (nothing to conclude)


def _unread(after: int) -> EventPage:
    return EventPage([], None, None, after, read=False)


def _page_here(conn: sqlite3.Connection, after: int, limit: int) -> dict[str, Any]:
    conn.execute("BEGIN")
    try:
        rows = conn.execute(_PAGE_SQL, (after, limit)).fetchall()
        first, last = conn.execute("SELECT min(id), max(id) FROM events").fetchone()
    finally:
        conn.execute("COMMIT")
    # a full page may have more after it: the cursor stops at its last row
    scanned = rows[-1][0] if len(rows) == limit else (last if last is not None else after)
    return {"rows": [list(r) for r in rows], "first": first, "last": last, "scanned": scanned}


def _open_ro(name: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{name}?mode=ro", uri=True, timeout=5, isolation_level=None)
    return harden(conn)


def child_main(argv: list[str]) -> None:
    """`safefs.run_as` entry (already the agent, chrooted in its state dir): one page as JSON."""
    after, limit = int(argv[0]), int(argv[1])
    if not os.path.isfile(EVENTS_DB):
        print("null")
        return
    conn = _open_ro(EVENTS_DB)
    try:
        print(json.dumps(_page_here(conn, after, limit), ensure_ascii=False))
    finally:
        conn.close()


def _checked(got: Any, after: int) -> EventPage:
    """The page as JSON from the agent's side, type-checked (anything odd: an empty page)."""
    empty = _unread(after)
    if not isinstance(got, dict) or not isinstance(got.get("rows"), list):
        return empty
    rows: list[tuple[int, str, str, str, str]] = []
    for r in got["rows"]:
        if not (isinstance(r, list) and len(r) == 5 and type(r[0]) is int and r[0] > after):
            continue
        ident, ts, kind, a, b = r
        if not isinstance(ts, str) or kind not in _KINDS:
            continue
        rows.append(
            (ident, ts[:40], kind, str(a if a is not None else "")[:DOC_MAX], str(b or "")[:200])
        )
    first, last, scanned = got.get("first"), got.get("last"), got.get("scanned")
    ints = all(x is None or type(x) is int for x in (first, last))
    if not ints or type(scanned) is not int:
        return empty
    return EventPage(rows, first, last, max(scanned, rows[-1][0] if rows else scanned))


def read_page(state_dir: Path, after: int, limit: int = PAGE) -> EventPage:
    """Events after id `after` from the agent store in `state_dir` (blocking: run it in a
    thread). A root core reads as the store's owner; see the module invariants."""
    try:
        fd = os.open(state_dir, safefs.DIR_FLAGS)
    except OSError:
        return _unread(after)
    try:
        owner = os.fstat(fd).st_uid
        if os.geteuid() == 0 and owner != 0:
            done = safefs.run_as(owner, fd, __name__, [str(after), str(limit)], READ_AS_TIMEOUT)
            if done.returncode != 0:
                logger.warning(
                    "reading the events of %s failed: %s",
                    state_dir,
                    done.stderr.strip()[-300:],
                    extra={"action": "search_pull_failed"},
                )
                return _unread(after)
            try:
                return _checked(json.loads(done.stdout or "null"), after)
            except ValueError:
                return _unread(after)
    finally:
        os.close(fd)
    if not safefs.is_regular(state_dir, EVENTS_DB):  # missing, or a link the agent planted
        return _unread(after)
    try:
        conn = _open_ro(str(state_dir / EVENTS_DB))
        try:
            got = _page_here(conn, after, limit)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        logger.warning(
            "reading the events of %s failed: %s",
            state_dir,
            exc,
            extra={"action": "search_pull_failed"},
        )
        return _unread(after)
    return _checked(json.loads(json.dumps(got)), after)


def docs_of(agent: str, page: EventPage) -> list[TurnDoc]:
    """The searchable docs of one page of events."""
    out: list[TurnDoc] = []
    for ident, ts, kind, a, b in page.rows:
        if kind == "turn_start":
            doc = TurnDoc(agent, ident, ts, "prompt", f"prompt from {b or '?'}", a)
        elif kind == "text":
            doc = TurnDoc(agent, ident, ts, "assistant", "assistant", a)
        elif kind == "tool_use":
            doc = TurnDoc(agent, ident, ts, "tool_use", f"tool {b[:80]}", f"{b} {a}")
        else:
            failed = b in ("1", "true", "True")
            title = "tool result (error)" if failed else "tool result"
            doc = TurnDoc(agent, ident, ts, "tool_result", title, a[:RESULT_MAX])
        if doc.body.strip():
            out.append(TurnDoc(agent, ident, ts, doc.kind, clean(doc.title), clean(doc.body)))
    return out


async def index_agent(
    store: SearchStore, agent: str, state_dir: Path, *, before: str | None = None
) -> int:
    """One pass over one agent's store: new docs in, gone ones out. Returns docs added."""
    added = 0
    cursor = await store.turn_cursor(agent)
    while True:
        page = await asyncio.to_thread(read_page, state_dir, cursor)
        if not page.read:
            return added
        if (page.last if page.last is not None else 0) < cursor:
            # the store started over (a new incarnation, or it was wiped): so does its index
            await store.reset_turns(agent)
            cursor = 0
            continue
        if page.first is not None:
            await store.forget_turns(agent, below_id=page.first, before=before)
        elif before is not None:
            await store.forget_turns(agent, before=before)
        if page.scanned_to == cursor and not page.rows:
            return added
        added += await store.add_turns(agent, docs_of(agent, page), page.scanned_to)
        cursor = page.scanned_to
        if len(page.rows) < PAGE:
            return added

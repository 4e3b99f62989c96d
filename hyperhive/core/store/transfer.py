"""Moving a hive's data between backends: `export_storage` / `import_storage` (`hive db export`,
`hive db import`, `hive db migrate --to URL`).

The file is one JSON document: `{"format": FORMAT, "version": 1, "tables": {table: [row, ...]}}`
holding every row of every hive table (agents, agent_generations, messages with their trace
context, operator questions, reminders, approvals, tool permission requests and kept rules,
budget usage, trips and raises) with its id, so threads, `proposal/<id>` tags and generations
mean the same after the move. Booleans are stored as JSON booleans whatever the backend.

Invariants:
- Export reads each table as it is (run it on a stopped hive for one consistent snapshot; on a
  running one each table is consistent on its own).
- Import refuses a target that already holds hive rows (`Conflict`) and writes everything in
  one transaction: all or nothing. Afterwards new ids continue above the imported ones (the
  PostgreSQL identity sequences are moved past them; sqlite's AUTOINCREMENT does it itself).
- An export from before a table or column existed still imports (the table empty, the
  column NULL). Derived data is not carried: the search index rebuilds from the rows (turn
  history is re-copied from the agents' own stores), and nodes re-register by heartbeat.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from hyperhive.core.store.backend import SqliteStorage, Storage
from hyperhive.errors import BadRequest, Conflict

FORMAT = "hyperhive-db"
VERSION = 1

# table → (columns in order, the boolean ones, has an id sequence)
TABLES: dict[str, tuple[tuple[str, ...], frozenset[str], bool]] = {
    "agents": (
        (
            "name",
            "kind",
            "created_at",
            "generation",
            "runtime",
            "paused",
            "status_text",
            "status_set_at",
            "parent",
            "model",
        ),
        frozenset({"paused"}),
        False,
    ),
    "agent_generations": (("name", "generation"), frozenset(), False),
    "messages": (
        (
            "id",
            "sender",
            "recipient",
            "body",
            "kind",
            "sent_at",
            "delivered_at",
            "recipient_generation",
            "trace_parent",
        ),
        frozenset(),
        True,
    ),
    "operator_questions": (
        (
            "id",
            "asker",
            "question",
            "options_json",
            "multi",
            "asked_at",
            "deadline_at",
            "answered_at",
            "answer",
            "target",
            "generation",
        ),
        frozenset({"multi"}),
        True,
    ),
    "reminders": (
        (
            "id",
            "agent",
            "body",
            "file_path",
            "due_at",
            "created_at",
            "attempts",
            "status",
            "delivered_at",
            "last_error",
            "generation",
        ),
        frozenset(),
        True,
    ),
    "approvals": (
        (
            "id",
            "agent",
            "kind",
            "commit_ref",
            "fetched_sha",
            "requested_by",
            "requested_at",
            "status",
            "resolved_at",
            "note",
            "description",
        ),
        frozenset(),
        True,
    ),
    "permission_requests": (
        (
            "id",
            "agent",
            "generation",
            "harness",
            "key",
            "tool",
            "input_json",
            "tool_use_id",
            "reason",
            "rule",
            "asked_at",
            "deadline_at",
            "status",
            "decided_at",
            "note",
            "kept_rule",
        ),
        frozenset(),
        True,
    ),
    "permission_rules": (("agent", "generation", "rule", "kept_at"), frozenset(), False),
    "budget_usage": (("id", "agent", "at", "model", "tokens", "cost_usd"), frozenset(), True),
    "budget_trips": (
        ("agent", "key", "reason", "tripped_at", "raise_by", "question_id"),
        frozenset(),
        False,
    ),
    "budget_raises": (("id", "agent", "key", "amount", "until"), frozenset(), True),
}

# columns an export from before they existed may lack (imported as NULL)
OPTIONAL = frozenset({"trace_parent"})

# the order rows are read in, where not by id: kept rules in the order they were kept
_ORDER = {
    "agents": ("name", "name"),
    "agent_generations": ("name", "name"),
    "permission_rules": ("rowid", "seq"),  # (sqlite, PostgreSQL)
    "budget_trips": ("agent", "agent"),
}


def _order(table: str, storage: Storage) -> str:
    if TABLES[table][2]:
        return "id"
    return _ORDER[table][0 if isinstance(storage, SqliteStorage) else 1]


async def dump(storage: Storage) -> dict[str, Any]:
    """Every hive row of an open storage, as the export document."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, (cols, bools, _) in TABLES.items():
        sql = f"SELECT {', '.join(cols)} FROM {table} ORDER BY {_order(table, storage)}"
        rows = await _read_all(storage, sql)
        tables[table] = [
            {c: (bool(v) if c in bools else v) for c, v in zip(cols, r, strict=True)} for r in rows
        ]
    return {"format": FORMAT, "version": VERSION, "tables": tables}


async def _read_all(storage: Storage, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(storage, SqliteStorage):
        return await storage.db.read(lambda c: [tuple(r) for r in c.execute(sql).fetchall()])
    from hyperhive.core.store.pg.storage import PgStorage

    assert isinstance(storage, PgStorage)

    async def fn(conn: Any) -> list[tuple[Any, ...]]:
        cur = await conn.execute(sql)
        return [tuple(r.values()) for r in await cur.fetchall()]

    return await storage.db.read(fn)


def _check(doc: Any) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadRequest(f"not a {FORMAT} export")
    if doc.get("version") != VERSION:
        raise BadRequest(f"export version {doc.get('version')!r}; this hive reads {VERSION}")
    tables = doc.get("tables")
    if not isinstance(tables, dict):
        raise BadRequest("the export has no tables")
    out: dict[str, list[dict[str, Any]]] = {}
    for table, (cols, _, _) in TABLES.items():
        rows = tables.get(table, [])
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and set(cols) - OPTIONAL <= set(r) <= set(cols) for r in rows
        ):
            raise BadRequest(f"the export's {table} rows do not have the columns {cols}")
        out[table] = [{c: r.get(c) for c in cols} for r in rows]
    return out


async def load(storage: Storage, doc: Any) -> dict[str, int]:
    """Write an export document into an open, empty storage; rows per table."""
    tables = _check(doc)
    if isinstance(storage, SqliteStorage):
        return await storage.db.write(lambda c: _load_sqlite(c, tables))
    from hyperhive.core.store.pg.storage import PgStorage

    assert isinstance(storage, PgStorage)

    async def fn(conn: Any) -> dict[str, int]:
        for table in TABLES:
            cur = await conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
            if await cur.fetchone() is not None:
                raise Conflict(f"the target database already holds hive data ({table})")
        counts = {}
        for table, (cols, bools, has_id) in TABLES.items():
            rows = tables[table]
            if rows:
                overriding = " OVERRIDING SYSTEM VALUE" if has_id else ""
                marks = ", ".join(["%s"] * len(cols))
                async with conn.cursor() as cur:
                    await cur.executemany(
                        f"INSERT INTO {table}({', '.join(cols)}){overriding} VALUES ({marks})",
                        [tuple(bool(r[c]) if c in bools else r[c] for c in cols) for r in rows],
                    )
            if has_id:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" GREATEST((SELECT max(id) FROM {table}), 1), (SELECT max(id) FROM {table})"
                    " IS NOT NULL)"
                )
            counts[table] = len(rows)
        return counts

    return await storage.db.write(fn)


def _load_sqlite(
    conn: sqlite3.Connection, tables: dict[str, list[dict[str, Any]]]
) -> dict[str, int]:
    for table in TABLES:
        if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
            raise Conflict(f"the target database already holds hive data ({table})")
    counts = {}
    for table, (cols, bools, _) in TABLES.items():
        rows = tables[table]
        conn.executemany(
            f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(int(r[c]) if c in bools else r[c] for c in cols) for r in rows],
        )
        counts[table] = len(rows)
    return counts


async def export_storage(storage: Storage, path: Path) -> dict[str, int]:
    """Write `storage`'s rows to `path` (created 0600: it holds every message)."""
    doc = await dump(storage)
    await asyncio.to_thread(_write_private, path, doc)
    return {t: len(rows) for t, rows in doc["tables"].items()}


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
    tmp.replace(path)


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


async def import_storage(storage: Storage, path: Path) -> dict[str, int]:
    try:
        doc = await asyncio.to_thread(_read, path)
    except (OSError, ValueError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}") from exc
    return await load(storage, doc)

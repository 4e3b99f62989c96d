"""Turn stats: one row per Claude turn in `<state>/hyperhive-turn-stats.sqlite`.

Invariant: recording is best-effort — a failure is logged and never blocks or fails a turn.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyperhive import safefs
from hyperhive.clock import iso
from hyperhive.db import (
    Database,
    Migration,
    connect_foreign_ro,
    execute_script,
    harden,
)
from hyperhive.harness.stream import TurnOutcome, TurnTally

logger = logging.getLogger(__name__)
STATS_DB = "hyperhive-turn-stats.sqlite"


def _m1(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE turn_stats (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT NOT NULL,
            wake_from TEXT NOT NULL,
            result_kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            cli_ms INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            tool_call_count INTEGER NOT NULL DEFAULT 0,
            tool_breakdown_json TEXT NOT NULL DEFAULT '{}',
            open_threads_count INTEGER NOT NULL DEFAULT 0,
            open_reminders_count INTEGER NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX turn_stats_by_start ON turn_stats(started_at);
        """,
    )


def _m2(conn: sqlite3.Connection) -> None:
    # the harness's own time in the turn: everything but the CLI process, up to this row
    conn.execute("ALTER TABLE turn_stats ADD COLUMN harness_ms INTEGER NOT NULL DEFAULT 0")


STATS_MIGRATIONS = [Migration("0001_turn_stats", _m1), Migration("0002_harness_ms", _m2)]


@dataclass
class TurnStatRow:
    model: str
    wake_from: str
    result_kind: str
    started_at: str
    ended_at: str
    duration_ms: int
    cli_ms: int = 0
    harness_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cost_usd: float | None = None
    tool_call_count: int = 0
    tool_breakdown: dict[str, int] = field(default_factory=dict)
    open_threads_count: int = 0
    open_reminders_count: int = 0
    note: str = ""


@dataclass(frozen=True)
class TurnTimes:
    """When a turn ran: wall clock start and end (epoch seconds), its whole duration and the
    CLI process's share of it (milliseconds)."""

    started: float
    ended: float
    duration_ms: float
    cli_ms: float


def turn_row(
    model: str,
    wake_from: str,
    outcome: TurnOutcome,
    tally: TurnTally,
    times: TurnTimes,
    *,
    open_threads: int = 0,
    open_reminders: int = 0,
) -> TurnStatRow:
    """The stats row of one turn (its `harness_ms` is set by the caller, last)."""
    usage = tally.usage
    cost = tally.turn_cost_usd if tally.turn_cost_usd is not None else tally.total_cost_usd
    return TurnStatRow(
        model=model,
        wake_from=wake_from,
        result_kind=str(outcome.kind),
        started_at=iso(times.started),
        ended_at=iso(times.ended),
        duration_ms=round(times.duration_ms),
        cli_ms=round(times.cli_ms),
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        cache_read_tokens=usage.cache_read_tokens if usage else 0,
        cache_creation_tokens=usage.cache_creation_tokens if usage else 0,
        cost_usd=cost,
        tool_call_count=tally.total_tool_calls,
        tool_breakdown=dict(tally.tool_calls),
        open_threads_count=open_threads,
        open_reminders_count=open_reminders,
        note=outcome.note,
    )


_COLS = [
    "model", "wake_from", "result_kind", "started_at", "ended_at", "duration_ms", "cli_ms", "harness_ms",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "cost_usd",
    "tool_call_count", "tool_breakdown_json", "open_threads_count", "open_reminders_count", "note",
]  # fmt: skip


def _row_values(row: TurnStatRow) -> tuple[Any, ...]:
    d = asdict(row)
    d["tool_breakdown_json"] = json.dumps(d.pop("tool_breakdown"), sort_keys=True)
    return tuple(d[c] for c in _COLS)


def row_from_sql(r: sqlite3.Row) -> dict[str, Any]:
    d = {k: r[k] for k in r.keys()}
    d["tool_breakdown"] = json.loads(d.pop("tool_breakdown_json") or "{}")
    return d


class TurnStats:
    def __init__(self, state_dir: Path) -> None:
        self.db = Database(state_dir / STATS_DB, STATS_MIGRATIONS)

    async def __aenter__(self) -> TurnStats:
        await self.db.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.db.aclose()

    async def record(self, row: TurnStatRow) -> None:
        marks = ",".join("?" * len(_COLS))
        values = _row_values(row)
        try:
            await self.db.write(
                lambda conn: conn.execute(
                    f"INSERT INTO turn_stats({','.join(_COLS)}) VALUES ({marks})", values
                )
            )
        except Exception:
            logger.warning(
                "could not record turn stats", exc_info=True, extra={"action": "stats_failed"}
            )

    async def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        def fn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute("SELECT * FROM turn_stats ORDER BY id DESC LIMIT ?", (limit,))
            return [row_from_sql(r) for r in rows]

        return await self.db.read(fn)

    async def totals(self) -> dict[str, Any]:
        return await self.db.read(totals_sql)


def totals_sql(conn: sqlite3.Connection) -> dict[str, Any]:
    r = conn.execute(
        "SELECT count(*) AS turns, coalesce(sum(input_tokens),0) AS input_tokens,"
        " coalesce(sum(output_tokens),0) AS output_tokens,"
        " coalesce(sum(cache_read_tokens),0) AS cache_read_tokens,"
        " coalesce(sum(cache_creation_tokens),0) AS cache_creation_tokens,"
        " coalesce(sum(cost_usd),0) AS cost_usd, coalesce(sum(tool_call_count),0) AS tool_calls,"
        " coalesce(sum(duration_ms),0) AS duration_ms,"
        " sum(result_kind = 'ok') AS ok, sum(result_kind != 'ok') AS not_ok FROM turn_stats"
    ).fetchone()
    return {k: r[k] for k in r.keys()}


READ_AS_TIMEOUT = 60.0


def read_stats(state_dir: Path, limit: int = 20) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Synchronous read-only access for `hive stats` (works while the harness runs). A root
    caller reads an agent's store as the agent (`safefs.run_as`): root never parses a file
    the agent crafted."""
    if os.geteuid() == 0:
        try:
            fd = os.open(state_dir, safefs.DIR_FLAGS)
        except OSError:
            return [], {}
        try:
            owner = os.fstat(fd).st_uid
            if owner != 0:
                done = safefs.run_as(owner, fd, __name__, [str(limit)], READ_AS_TIMEOUT)
                got = json.loads(done.stdout or "null") if done.returncode == 0 else None
                if not isinstance(got, dict):
                    return [], {}
                return list(got.get("rows") or []), dict(got.get("totals") or {})
        finally:
            os.close(fd)
    return _read_stats_here(state_dir, limit)


def child_main(argv: list[str]) -> None:
    """`safefs.run_as` entry (already the agent, in its state dir): its stats as JSON. The
    store is the agent's own here, so it is opened in place (read-only)."""
    if not os.path.isfile(STATS_DB):
        print(json.dumps({"rows": [], "totals": {}}))
        return
    conn = harden(sqlite3.connect(f"file:{STATS_DB}?mode=ro", uri=True, timeout=5))
    conn.row_factory = sqlite3.Row
    rows, totals = _query(conn, int(argv[0]))
    print(json.dumps({"rows": rows, "totals": totals}))


def _read_stats_here(state_dir: Path, limit: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    path = state_dir / STATS_DB
    if not safefs.is_regular(state_dir, STATS_DB):  # missing, or a link the agent planted
        return [], {}
    try:
        conn = connect_foreign_ro(path)
    except sqlite3.OperationalError:  # swapped for a link meanwhile
        return [], {}
    return _query(conn, limit)


def _query(conn: sqlite3.Connection, limit: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    try:
        rows = [
            row_from_sql(r)
            for r in conn.execute("SELECT * FROM turn_stats ORDER BY id DESC LIMIT ?", (limit,))
        ]
        return rows, totals_sql(conn)
    except sqlite3.OperationalError:  # created but not migrated yet (the harness is starting)
        return [], {}
    finally:
        conn.close()

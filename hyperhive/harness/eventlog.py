"""Where an agent's event bus keeps its events: the `EventLog` interface, its sqlite backend
(`<state>/hyperhive-events.sqlite`: events(id, ts, kind, payload_json)) and an in-memory fake.

The bus (`events.py`) numbers events and serves pages from its ring; the log only stores them
and, on open, gives back the newest ones so ids continue across harness restarts.

Invariants (every backend, proven by `tests/harness/test_eventlog.py`): `tail(n)` returns the
newest `n` stored events oldest first; an id is stored at most once (a second append of the
same id raises); `aclose` is idempotent.
"""

from __future__ import annotations

import abc
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperhive.db import Database, Migration, execute_script

EVENTS_DB = "hyperhive-events.sqlite"


@dataclass(frozen=True)
class AgentEvent:
    id: int
    ts: str
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "kind": self.kind, **self.payload}


class EventLog(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def tail(self, limit: int) -> list[AgentEvent]:
        """The newest `limit` stored events, oldest first."""

    @abc.abstractmethod
    async def append(self, ev: AgentEvent) -> None:
        """Store `ev` (its id is new: a stored id raises)."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


def _m1(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload_json TEXT NOT NULL
        );
        CREATE INDEX events_by_ts ON events(ts);
        """,
    )


EVENT_MIGRATIONS = [Migration("0001_events", _m1)]


class SqliteEventLog(EventLog):
    def __init__(self, state_dir: Path) -> None:
        self.db = Database(state_dir / EVENTS_DB, EVENT_MIGRATIONS)

    async def open(self) -> None:
        await self.db.open()

    async def tail(self, limit: int) -> list[AgentEvent]:
        def fn(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()

        rows = await self.db.read(fn)
        return [
            AgentEvent(r["id"], r["ts"], r["kind"], json.loads(r["payload_json"]))
            for r in reversed(rows)
        ]

    async def append(self, ev: AgentEvent) -> None:
        payload = json.dumps(ev.payload, ensure_ascii=False, default=str)
        await self.db.write(
            lambda conn: conn.execute(
                "INSERT INTO events(id, ts, kind, payload_json) VALUES (?,?,?,?)",
                (ev.id, ev.ts, ev.kind, payload),
            )
        )

    async def aclose(self) -> None:
        await self.db.aclose()


class MemoryEventLog(EventLog):
    """The fake: events live in this object (payloads round-trip through JSON, as stored)."""

    def __init__(self) -> None:
        self._rows: dict[int, AgentEvent] = {}

    async def open(self) -> None:
        pass

    async def tail(self, limit: int) -> list[AgentEvent]:
        ids = sorted(self._rows)[-limit:] if limit > 0 else []
        return [self._rows[i] for i in ids]

    async def append(self, ev: AgentEvent) -> None:
        if ev.id in self._rows:
            raise ValueError(f"event {ev.id} is already stored")
        payload = json.loads(json.dumps(ev.payload, ensure_ascii=False, default=str))
        self._rows[ev.id] = AgentEvent(ev.id, ev.ts, ev.kind, payload)

    async def aclose(self) -> None:
        pass

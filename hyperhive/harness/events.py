"""The agent's live event bus: a 500-event ring for pages plus a sqlite store
(`<state>/hyperhive-events.sqlite`: events(id, ts, kind, payload_json)).

Invariants:
- Ids are monotonic across harness restarts (continued from the store), so a page can resume
  a stream from the last id it saw, with no gap and no duplicate.
- `publish` is synchronous and never blocks on the store: persisting is best-effort (a failed
  write is logged, never fails a turn).
- The harness is the store's writer; the core's retention sweep is the only other writer
  (sqlite's locking serialises the two; see docs/harness.md).
- The ring is `hyperhive.eventring` (the one the dashboard hub uses): a page's stream that
  falls behind gets `ResyncNeeded` (the page starts over) instead of going silent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperhive.clock import iso
from hyperhive.db import Database, Migration, execute_script
from hyperhive.eventring import EventRing

logger = logging.getLogger(__name__)
RING = 500
EVENTS_DB = "hyperhive-events.sqlite"


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


@dataclass(frozen=True)
class AgentEvent:
    id: int
    ts: str
    kind: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "kind": self.kind, **self.payload}


class EventBus:
    def __init__(self, state_dir: Path, *, queue_size: int = 10_000) -> None:
        self.db = Database(state_dir / EVENTS_DB, EVENT_MIGRATIONS)
        self._ring: EventRing[AgentEvent] = EventRing(_id_of, ring_size=RING, queue_size=queue_size)
        self._next = 1
        self._pending: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[AgentEvent], None]] = []

    async def __aenter__(self) -> EventBus:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        await self.db.open()

        def tail(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (RING,)).fetchall()

        rows = await self.db.read(tail)
        for r in reversed(rows):
            self._ring.append(
                AgentEvent(r["id"], r["ts"], r["kind"], json.loads(r["payload_json"]))
            )
        self._next = (rows[0]["id"] + 1) if rows else 1

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self.end_streams()
        await self.db.aclose()

    def end_streams(self) -> None:
        """End every open `follow` (each sees what it had queued first), as closing does."""
        self._ring.close()

    @property
    def subscribers(self) -> int:
        """How many `follow` streams are open."""
        return self._ring.subscribers

    @property
    def last_id(self) -> int:
        return self._next - 1

    def add_listener(self, fn: Callable[[AgentEvent], None]) -> None:
        """A synchronous in-process listener, called inline on publish (must not block; an
        exception is logged, never raised into the publisher)."""
        self._listeners.append(fn)

    def publish(self, kind: str, /, **payload: Any) -> AgentEvent:
        ev = AgentEvent(self._next, iso(time.time()), kind, payload)
        self._next += 1
        self._ring.append(ev)
        for fn in self._listeners:
            try:
                fn(ev)
            except Exception:
                logger.exception("event listener failed", extra={"action": "event_listener"})
        task = asyncio.get_running_loop().create_task(self._persist(ev), name="events-persist")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return ev

    async def _persist(self, ev: AgentEvent) -> None:
        payload = json.dumps(ev.payload, ensure_ascii=False, default=str)
        try:
            await self.db.write(
                lambda conn: conn.execute(
                    "INSERT INTO events(id, ts, kind, payload_json) VALUES (?,?,?,?)",
                    (ev.id, ev.ts, ev.kind, payload),
                )
            )
        except Exception:
            logger.warning(
                "could not store event %d",
                ev.id,
                exc_info=True,
                extra={"action": "event_store_failed"},
            )

    def history(self, since: int = 0) -> list[AgentEvent]:
        return self._ring.history(since)

    def follow(self, since: int) -> AsyncIterator[AgentEvent]:
        """Every event after `since`, then each new one (subscribe first: no gap); ends when
        the bus closes; `ResyncNeeded` if the follower fell behind."""
        return self._ring.follow(since)


def _id_of(ev: AgentEvent) -> int:
    return ev.id

"""The agent's live event bus: a 500-event ring for pages plus an event log (`eventlog.py`:
by default the sqlite `<state>/hyperhive-events.sqlite`; tests may pass the in-memory fake).

Invariants:
- Ids are monotonic across harness restarts (continued from the store), so a page can resume
  a stream from the last id it saw, with no gap and no duplicate.
- `publish` is synchronous and never blocks on the store: persisting is best-effort (a failed
  write is logged, never fails a turn). `publish_live` events (streaming text) reach the ring
  and listeners only: the log never holds them (a restarted harness may reuse the ids of
  live events it never stored; pages drop live rows at `turn_end` / `harness_start` anyway).
- The harness is the store's writer; the core's retention sweep is the only other writer
  (sqlite's locking serialises the two; see docs/harness.md).
- The ring is `hyperhive.eventring` (the one the dashboard hub uses): a page's stream that
  falls behind gets `ResyncNeeded` (the page starts over) instead of going silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from hyperhive.clock import iso
from hyperhive.eventring import EventRing
from hyperhive.harness.eventlog import AgentEvent as AgentEvent  # the bus's event type
from hyperhive.harness.eventlog import EventLog, SqliteEventLog

logger = logging.getLogger(__name__)
RING = 500


class EventBus:
    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        log: EventLog | None = None,
        queue_size: int = 10_000,
    ) -> None:
        if log is None:
            if state_dir is None:
                raise ValueError("EventBus needs a state_dir or a log")
            log = SqliteEventLog(state_dir)
        self.log = log
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
        await self.log.open()
        rows = await self.log.tail(RING)
        for ev in rows:
            self._ring.append(ev)
        self._next = (rows[-1].id + 1) if rows else 1

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self.end_streams()
        await self.log.aclose()

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
        ev = self.publish_live(kind, **payload)
        task = asyncio.get_running_loop().create_task(self._persist(ev), name="events-persist")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return ev

    def publish_live(self, kind: str, /, **payload: Any) -> AgentEvent:
        """Publish to pages and listeners only, never to the event log (streaming text: many
        small events that the final row makes redundant). Its id is skipped in the log."""
        ev = AgentEvent(self._next, iso(time.time()), kind, payload)
        self._next += 1
        self._ring.append(ev)
        for fn in self._listeners:
            try:
                fn(ev)
            except Exception:
                logger.exception("event listener failed", extra={"action": "event_listener"})
        return ev

    async def _persist(self, ev: AgentEvent) -> None:
        try:
            await self.log.append(ev)
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

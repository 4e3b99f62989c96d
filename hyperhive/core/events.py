"""Dashboard events: every state change in the hive, numbered by a monotonic `seq`.

Invariants:
- `seq` strictly increases by 1 per published event within one daemon run; `epoch` (the
  daemon's start id) changes when the daemon restarts, so a page that sees a new epoch reloads.
- The hub keeps the newest `ring_size` events; `history(since)` returns every kept event with
  `seq > since`, and `follow(since)` yields the same and then each new one, with no gap and no
  duplicate (a subscriber that falls more than its queue behind is told to resync).
- A subscriber costs at most `queue_size` queued events (1,000 by default): one that falls
  further behind is dropped on the spot, its queue emptied down to the resync mark, so a
  subscriber that never reads pins no events.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from hyperhive.clock import iso

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class HiveEvent:
    """One published state change. Treated as immutable once published (not `frozen`:
    a frozen dataclass's `__init__` costs ~3x more, and one is built per message)."""

    seq: int
    ts: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, "data": self.data}


class ResyncNeeded(Exception):
    """The subscriber fell behind the ring; it should fetch history again."""


class EventHub:
    def __init__(self, ring_size: int = 5000, queue_size: int = 1000) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)
        self._last = 0
        self._ring: deque[HiveEvent] = deque(maxlen=ring_size)
        self._subs: set[asyncio.Queue[HiveEvent | None]] = set()
        # every follower's queue until its generator ends, dropped or not (`queued`)
        self._queues: weakref.WeakSet[asyncio.Queue[HiveEvent | None]] = weakref.WeakSet()
        self._queue_size = queue_size
        self._listeners: list[Callable[[HiveEvent], None]] = []

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def subscribers(self) -> int:
        """Live followers (a dropped one no longer counts)."""
        return len(self._subs)

    def queued(self) -> int:
        """Items waiting in every follower's queue, dropped ones included (for tests)."""
        return sum(q.qsize() for q in self._queues)

    def add_listener(self, fn: Callable[[HiveEvent], None]) -> None:
        """Synchronous in-process listener (called inline on publish; must not block)."""
        self._listeners.append(fn)

    def publish(self, kind: str, /, **data: Any) -> HiveEvent:
        ev = HiveEvent(seq=next(self._seq), ts=iso(time.time()), kind=kind, data=data)
        self._last = ev.seq
        self._ring.append(ev)
        for q in list(self._subs):
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                self._subs.discard(q)
                _drop_all_but_resync(q)
        for fn in self._listeners:
            try:
                fn(ev)
            except Exception:
                logger.exception("event listener failed", extra={"action": "event_listener"})
        return ev

    def history(self, since: int = 0) -> list[HiveEvent]:
        return [e for e in self._ring if e.seq > since]

    async def follow(self, since: int = 0) -> AsyncIterator[HiveEvent]:
        q: asyncio.Queue[HiveEvent | None] = asyncio.Queue(self._queue_size)
        self._subs.add(q)
        self._queues.add(q)  # subscribe first, then replay: nothing can fall in between
        try:
            backlog = self.history(since)
            if backlog and backlog[0].seq > since + 1 and since > 0:
                raise ResyncNeeded(f"events after seq {since} are no longer kept")
            last = since
            for ev in backlog:
                last = ev.seq
                yield ev
            while True:
                item = await q.get()
                if item is None:
                    raise ResyncNeeded("subscriber fell behind")
                if item.seq <= last:
                    continue
                last = item.seq
                yield item
        finally:
            self._subs.discard(q)
            self._queues.discard(q)


def _drop_all_but_resync(q: asyncio.Queue[HiveEvent | None]) -> None:
    """Empty an overflowed queue (its events are freed now, not when its reader wakes) and
    leave the resync mark its reader will find next."""
    while True:
        try:
            q.get_nowait()
        except asyncio.QueueEmpty:
            break
    q.put_nowait(None)

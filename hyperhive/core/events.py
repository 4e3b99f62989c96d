"""Dashboard events: every state change in the hive, numbered by a monotonic `seq`.

Invariants:
- `seq` strictly increases by 1 per published event within one daemon run; `epoch` (the
  daemon's start id) changes when the daemon restarts, so a page that sees a new epoch reloads.
- The hub keeps the newest `ring_size` events; `history(since)` returns every kept event with
  `seq > since`, and `follow(since)` yields the same and then each new one, with no gap and no
  duplicate (a subscriber that falls more than its queue behind is told to resync). The ring
  is `hyperhive.eventring`, shared with each agent's event bus.
- Relayed events (published on another node of the hive, `core/eventrelay.py`) enter the ring
  like any other (the dashboard and streams see them, `data.relayed` true, `data.node` the
  source) but reach only the in-process listeners that asked for them
  (`add_listener(fn, relayed=True)`): a listener that counts, derives or acts on local events
  never sees a remote one twice or as its own.
- A subscriber costs at most `queue_size` queued events (1,000 by default): one that falls
  further behind is dropped on the spot, its queue emptied down to the resync mark, so a
  subscriber that never reads pins no events.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from hyperhive.clock import iso
from hyperhive.eventring import EventRing, ResyncNeeded

__all__ = ["EventHub", "HiveEvent", "ResyncNeeded"]

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


class EventHub:
    def __init__(self, ring_size: int = 5000, queue_size: int = 1000) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)
        self._last = 0
        self.queue_size = queue_size  # events a follower may lag before it is dropped
        self._ring: EventRing[HiveEvent] = EventRing(
            _seq_of, ring_size=ring_size, queue_size=queue_size
        )
        self._listeners: list[Callable[[HiveEvent], None]] = []
        self._relayed_listeners: list[Callable[[HiveEvent], None]] = []

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def subscribers(self) -> int:
        """Live followers (a dropped one no longer counts)."""
        return self._ring.subscribers

    def queued(self) -> int:
        """Items waiting in every follower's queue, dropped ones included (for tests)."""
        return self._ring.queued()

    def add_listener(self, fn: Callable[[HiveEvent], None], *, relayed: bool = False) -> None:
        """Synchronous in-process listener (called inline on publish; must not block). With
        `relayed`, it also hears the events relayed from other nodes."""
        self._listeners.append(fn)
        if relayed:
            self._relayed_listeners.append(fn)

    def publish(self, kind: str, /, **data: Any) -> HiveEvent:
        ev = HiveEvent(seq=next(self._seq), ts=iso(time.time()), kind=kind, data=data)
        return self._deliver(ev, self._listeners)

    def publish_relayed(self, kind: str, ts: str, node: str, data: dict[str, Any]) -> HiveEvent:
        """An event another node published (its time `ts`), marked `relayed` with its `node`;
        only listeners added with `relayed=True` hear it."""
        ev = HiveEvent(
            seq=next(self._seq), ts=ts, kind=kind, data={**data, "relayed": True, "node": node}
        )
        return self._deliver(ev, self._relayed_listeners)

    def _deliver(self, ev: HiveEvent, listeners: list[Callable[[HiveEvent], None]]) -> HiveEvent:
        self._last = ev.seq
        self._ring.append(ev)
        for fn in listeners:
            try:
                fn(ev)
            except Exception:
                logger.exception("event listener failed", extra={"action": "event_listener"})
        return ev

    def history(self, since: int = 0) -> list[HiveEvent]:
        return self._ring.history(since)

    def follow(self, since: int = 0) -> AsyncIterator[HiveEvent]:
        """Every kept event after `since`, then each new one; `ResyncNeeded` when that cannot
        be done without a gap."""
        return self._ring.follow(since)


def _seq_of(ev: HiveEvent) -> int:
    return ev.seq

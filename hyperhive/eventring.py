"""A numbered event ring with followers: the one implementation behind the daemon's dashboard
hub (`core/events.py`) and each agent's live event bus (`harness/events.py`). A neutral module
(imports nothing of ours), so the sandbox side may use it without importing `core/`.

Invariants:
- Events carry a strictly increasing number (`number(event)`); the ring keeps the newest
  `ring_size` of them, and `history(since)` returns every kept event numbered above `since`.
- `follow(since)` yields the same and then each new event, with no gap and no duplicate (it
  subscribes before it replays). When it cannot keep that promise it raises `ResyncNeeded`
  instead of going silent: the events after `since` have left the ring already, `since` is
  ahead of the newest event (a number from an earlier run: this run's would be skipped), or
  the follower fell more than `queue_size` events behind. Such a follower is dropped on the spot
  and its queue emptied down to the resync mark, so a follower that never reads pins no
  events. `close()` ends every follower normally, after what it has queued.
"""

from __future__ import annotations

import asyncio
import enum
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

E = TypeVar("E")


class ResyncNeeded(Exception):
    """The follower fell behind the ring; it should fetch the history again."""


class _Mark(enum.Enum):
    RESYNC = "resync"
    CLOSED = "closed"


class EventRing(Generic[E]):
    def __init__(
        self, number: Callable[[E], int], *, ring_size: int, queue_size: int = 10_000
    ) -> None:
        self._number = number
        self._ring: deque[E] = deque(maxlen=ring_size)
        self._last = 0  # the newest number appended
        self._subs: set[asyncio.Queue[E | _Mark]] = set()
        # every follower's queue until its generator ends, dropped or not (`queued`)
        self._queues: weakref.WeakSet[asyncio.Queue[E | _Mark]] = weakref.WeakSet()
        self._queue_size = queue_size

    def append(self, ev: E) -> None:
        """Keep `ev` and hand it to every follower (never blocks)."""
        self._last = self._number(ev)
        self._ring.append(ev)
        for q in list(self._subs):
            if q.qsize() < self._queue_size:
                q.put_nowait(ev)
            else:  # fell behind: its events are freed now, not when its reader wakes
                self._subs.discard(q)
                _empty(q)
                q.put_nowait(_Mark.RESYNC)

    def history(self, since: int = 0) -> list[E]:
        return [e for e in self._ring if self._number(e) > since]

    @property
    def subscribers(self) -> int:
        """Live followers (a dropped one no longer counts)."""
        return len(self._subs)

    def queued(self) -> int:
        """Items waiting in every follower's queue, dropped ones included (for tests)."""
        return sum(q.qsize() for q in self._queues)

    def close(self) -> None:
        """End every follower (each sees what it had queued first)."""
        for q in list(self._subs):
            self._subs.discard(q)
            q.put_nowait(_Mark.CLOSED)

    async def follow(self, since: int = 0) -> AsyncIterator[E]:
        q: asyncio.Queue[E | _Mark] = asyncio.Queue()  # bounded by `append`, marks always fit
        self._subs.add(q)  # subscribe first, then replay: nothing can fall in between
        self._queues.add(q)
        try:
            if since > self._last:
                raise ResyncNeeded(f"{since} is ahead of the newest event ({self._last})")
            backlog = self.history(since)
            if since > 0 and backlog and self._number(backlog[0]) > since + 1:
                raise ResyncNeeded(f"events after {since} are no longer kept")
            last = since
            for ev in backlog:
                last = self._number(ev)
                yield ev
            while True:
                item = await q.get()
                if item is _Mark.CLOSED:
                    return
                if item is _Mark.RESYNC:
                    raise ResyncNeeded("the follower fell behind")
                assert not isinstance(item, _Mark)
                n = self._number(item)
                if n <= last:
                    continue
                last = n
                yield item
        finally:
            self._subs.discard(q)
            self._queues.discard(q)


def _empty(q: asyncio.Queue[E | _Mark]) -> None:
    while True:
        try:
            q.get_nowait()
        except asyncio.QueueEmpty:
            return

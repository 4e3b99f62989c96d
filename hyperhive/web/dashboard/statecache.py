"""One `/api/state` build shared by every page that asks for the same moment.

Every hive event makes every open dashboard page refetch `/api/state`; with twenty pages and a
hundred agents, twenty identical builds per event saturated the daemon's loop (each reads
every agent's status row). With ten tabs acting at once, each POST invalidated the state and
each tab's refetch started its own build, so the builds queued on the loop and every answer
(the POSTs too) waited seconds. `SharedState.get` answers them all from at most two builds:
the one running and the one queued after it.

Invariants:
- An answer reflects at least every hub event published before the request: a build is only
  reused when no event arrived since it started (same `hub.last_seq`), and never when older
  than `max_age` seconds (facts that change without an event, such as ages, stay fresh).
- A state-changing request `invalidate`s it (its effect may not have published an event yet):
  neither the cached answer nor the build running at that moment serves later requests.
- At most one build runs at a time. A request that cannot share the running build waits for
  the next one, which starts when the running one ends and is shared by every request that
  arrived meanwhile (so it reflects them all: it starts after each of them). Builds run in
  their own task: a request that goes away cancels nothing another request waits on.
- A failing build fails the requests waiting on it only (the next request builds again). The
  shared dict is never mutated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperhive.web.dashboard.state import build_state

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

MAX_AGE = 1.0

State = dict[str, Any]


@dataclass
class _Build:
    seq: int  # hub.last_seq when it started
    epoch: int  # invalidations before it started
    fut: asyncio.Future[State]
    task: asyncio.Task[None] | None = None


class SharedState:
    def __init__(self, hive: Hive, max_age: float = MAX_AGE) -> None:
        self.hive = hive
        self.max_age = max_age
        self._seq = -1
        self._at = 0.0
        self._value: State | None = None
        self._epoch = 0
        self._running: _Build | None = None
        self._next: asyncio.Future[State] | None = None  # shared by those waiting for it
        self.builds = 0  # how many builds ran (tests)

    def invalidate(self) -> None:
        self._value = None
        self._epoch += 1

    async def get(self) -> State:
        seq = self.hive.hub.last_seq
        if (
            self._value is not None
            and self._seq == seq
            and time.monotonic() - self._at < self.max_age
        ):
            return self._value
        run = self._running
        if run is None:
            fut: asyncio.Future[State] = asyncio.get_running_loop().create_future()
            self._start(fut)
        elif run.seq == seq and run.epoch == self._epoch:
            fut = run.fut  # started after everything this request must see
        else:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            fut = self._next
        return await asyncio.shield(fut)

    def _start(self, fut: asyncio.Future[State]) -> None:
        build = _Build(self.hive.hub.last_seq, self._epoch, fut)
        self._running = build
        self.builds += 1
        build.task = asyncio.create_task(self._run(build), name="dashboard-state-build")

    async def _run(self, build: _Build) -> None:
        started = time.monotonic()
        try:
            value = await build_state(self.hive)
        except asyncio.CancelledError:  # the loop is going away: so do those waiting
            self._running = None
            nxt, self._next = self._next, None
            for fut in (build.fut, nxt):
                if fut is not None:
                    fut.cancel()
            raise
        except Exception as exc:
            build.fut.set_exception(exc)
            build.fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
        else:
            build.fut.set_result(value)
            if build.epoch == self._epoch:  # not invalidated meanwhile
                self._value, self._seq, self._at = value, build.seq, started
        self._running = None
        nxt, self._next = self._next, None
        if nxt is not None and not nxt.done():
            self._start(nxt)

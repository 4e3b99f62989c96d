"""One `/api/state` build shared by every page that asks for the same moment.

Every hive event makes every open dashboard page refetch `/api/state`; with twenty pages and a
hundred agents, twenty identical builds per event saturated the daemon's loop (each reads
every agent's status row). `SharedState.get` answers them all from one build.

Invariants:
- An answer reflects at least every hub event published before the request: a build is only
  reused when no event arrived since it started (same `hub.last_seq`), and never when older
  than `max_age` seconds (facts that change without an event, such as ages, stay fresh).
- A state-changing request `invalidate`s it (its effect may not have published an event yet).
- Concurrent requests for the same seq wait for the one build in flight; a failing build fails
  those requests only (the next request builds again). The shared dict is never mutated.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from hyperhive.web.dashboard.state import build_state

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

MAX_AGE = 1.0


class SharedState:
    def __init__(self, hive: Hive, max_age: float = MAX_AGE) -> None:
        self.hive = hive
        self.max_age = max_age
        self._seq = -1
        self._at = 0.0
        self._value: dict[str, Any] | None = None
        self._inflight: asyncio.Future[dict[str, Any]] | None = None
        self._inflight_seq = -1
        self.builds = 0  # how many builds ran (tests)

    def invalidate(self) -> None:
        self._value = None
        self._inflight = None

    async def get(self) -> dict[str, Any]:
        seq = self.hive.hub.last_seq
        if (
            self._value is not None
            and self._seq == seq
            and time.monotonic() - self._at < self.max_age
        ):
            return self._value
        if self._inflight is not None and self._inflight_seq == seq and not self._inflight.done():
            return await asyncio.shield(self._inflight)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._inflight, self._inflight_seq = fut, seq
        started = time.monotonic()
        try:
            self.builds += 1
            value = await build_state(self.hive)
        except BaseException as exc:
            if self._inflight is fut:
                self._inflight = None
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        fut.set_result(value)
        if self._inflight is fut:  # not invalidated meanwhile
            self._inflight = None
            self._value, self._seq, self._at = value, seq, started
        return value

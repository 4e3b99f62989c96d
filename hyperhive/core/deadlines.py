"""`DeadlineScheduler`: one task that acts when the earliest stored deadline passes.

Used by question expiry and reminder delivery. The deadlines live in the database; this task
only knows how to ask for the earliest one (`next_due`) and how to act on everything due
(`fire(now)`).

Invariants:
- One task per scheduler, never one per deadline. Each cycle it first fires everything due
  (so on start it handles what became overdue while the daemon was down), then asks for the
  next deadline and sleeps until it through `Clock.sleep_until` (a `ManualClock` in tests).
- `poke(ts)` (called after a new deadline is committed) wakes the sleep early when `ts` is
  earlier than the current target, or when the task is between firing and sleeping (so a
  deadline added while it queries is never missed).
- With a deadline stored, a sleep never exceeds `max_sleep` seconds, so a wall-clock jump or
  a suspended host delays it by at most that much (asyncio sleeps on the monotonic clock).
  With none stored, the task sleeps until poked.
- `Inflight.run` lets an effect (resolve + notify, send + mark) finish even if its caller is
  cancelled; the owner's `aclose` waits for those before the database closes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from hyperhive.clock import Clock
from hyperhive.core.tasks import Supervisor

logger = logging.getLogger(__name__)
T = TypeVar("T")


class DeadlineScheduler:
    def __init__(
        self,
        name: str,
        clock: Clock,
        next_due: Callable[[], Awaitable[float | None]],
        fire: Callable[[float], Awaitable[None]],
        *,
        max_sleep: float = 60.0,
    ) -> None:
        self.name = name
        self._clock = clock
        self._next_due = next_due
        self._fire = fire
        self._max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._target: float | None = None  # None: not sleeping (firing or querying)
        self._idle = asyncio.Condition()

    def start(self, tasks: Supervisor) -> None:
        tasks.spawn(self.name, self.run, restart=True)

    def poke(self, ts: float) -> None:
        """A deadline at `ts` was just stored: wake early if it is earlier than the target."""
        if self._target is None or ts < self._target:
            self._target = None
            self._wake.set()

    async def wait_idle(self) -> None:
        """Until the task is asleep with nothing due at the clock's current time (tests use
        this after `ManualClock.advance` instead of sleeping)."""
        async with self._idle:
            await self._idle.wait_for(
                lambda: self._target is not None and self._target > self._clock.now()
            )

    async def _set_target(self, target: float | None) -> None:
        self._target = target
        async with self._idle:
            self._idle.notify_all()

    async def run(self) -> None:
        try:
            while True:
                await self._set_target(None)
                self._wake.clear()
                await self._fire(self._clock.now())
                nxt = await self._next_due()
                if self._wake.is_set():
                    continue  # poked while querying: look again
                # nothing stored: sleep until poked; else until the deadline (bounded)
                target = math.inf if nxt is None else min(nxt, self._clock.now() + self._max_sleep)
                await self._set_target(target)
                await self._sleep(target)
        finally:
            self._target = None

    async def _sleep(self, target: float) -> None:
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if target != math.inf:
            waiters.append(asyncio.ensure_future(self._clock.sleep_until(target)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


class Inflight:
    """Effects that must finish once started, even if the caller is cancelled."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._orphans: set[asyncio.Task[Any]] = set()  # their callers were cancelled

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                self._orphans.add(task)  # nobody will see its outcome but the log
            raise

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        orphan = task in self._orphans
        self._orphans.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if orphan:  # its caller was cancelled: this log line is the only trace of the failure
            logger.warning(
                "effect failed after its caller was cancelled: %r",
                exc,
                exc_info=exc,
                extra={"action": "inflight_failed"},
            )
        else:  # the caller got the exception and deals with it
            logger.debug("effect failed: %r", exc, extra={"action": "inflight"})

    async def aclose(self, timeout: float = 10.0) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for t in pending:
                logger.warning("effect %r did not finish in time", t, extra={"action": "inflight"})

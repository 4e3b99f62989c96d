"""Time, behind a small interface so schedulers can be tested against a controllable clock.

Invariant: everything in the core that waits *until a wall-clock time* (question deadlines,
reminders) asks a `Clock`; tests drive a `ManualClock` and never sleep.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

_iso_second: tuple[int, str] = (-1, "")  # (whole second, its "YYYY-MM-DDTHH:MM:SS") cache


def iso(ts: float) -> str:
    """RFC 3339 UTC with a `Z`, microseconds; sorts lexicographically in time order.
    (Called for every message and event: the formatted second is cached.)"""
    global _iso_second
    sec = int(ts)
    micros = round((ts - sec) * 1_000_000)
    if micros >= 1_000_000:
        sec, micros = sec + 1, 0
    cached_sec, prefix = _iso_second
    if cached_sec != sec:
        t = time.gmtime(sec)
        prefix = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        )
        _iso_second = (sec, prefix)
    return f"{prefix}.{micros:06d}Z"


def iso_seconds(ts: float) -> str:
    """RFC 3339 UTC with a `Z`, whole seconds (for the host socket's status rows)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Clock:
    """Wall-clock time and sleeping until a point in it."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, ts: float) -> None:
        delay = ts - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock(Clock):
    """A clock that only moves when told to; sleepers wake when `advance` passes their time."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._changed = asyncio.Condition()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, ts: float) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._now >= ts)

    async def advance(self, seconds: float) -> None:
        async with self._changed:
            self._now += seconds
            self._changed.notify_all()
        await asyncio.sleep(0)

"""The harness's turn driver: hands out turns on a `claude` process it keeps warm for
`warm_seconds` after each turn (`harness/warm.py`), or one process per turn when that is 0.

Invariants:
- At most one process per agent; at most one turn at a time.
- The process is started on the first turn after it is gone (never, idle expiry, crash,
  `close`), with `--continue` when a session exists (the launcher decides), so a cold start
  continues the same conversation.
- After a turn: `warm_seconds <= 0` → the process is closed before `turn()` returns (today's
  one process per turn, only spoken to over stream-json); else an idle timer closes it after
  `warm_seconds` without a turn.
- A turn left before its result (its caller cancelled or raised) kills the process: its state
  is unknown, and the next turn starts cold.
- An exit we did not ask for (crash between turns or mid-turn) is told to `on_exit` with the
  exit code; the next turn starts cold.
- `close` is idempotent and stops the idle timer and the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from hyperhive.harness.permgate import PermissionGate
from hyperhive.harness.settings import StrPath
from hyperhive.harness.stream import TurnOutcome, TurnTally
from hyperhive.harness.streamevents import StreamLine
from hyperhive.harness.warm import WarmClaude, WarmTurn

logger = logging.getLogger(__name__)


class TurnHandle(Protocol):
    """What the loop needs of a running turn (`ClaudeTurn` and `WarmTurn` both fit)."""

    def lines(self) -> AsyncIterator[StreamLine]: ...

    async def wait(self) -> tuple[TurnOutcome, TurnTally]: ...

    async def interrupt(self) -> None: ...


@dataclass(frozen=True)
class Launch:
    """How to start the CLI for a turn (argv without a prompt: it comes on stdin)."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: StrPath


class TurnDriver:
    """`async with TurnDriver(warm_seconds, launch, gate=...) as d:` then
    `async with d.turn(prompt) as turn:`."""

    def __init__(
        self,
        warm_seconds: float,
        launch: Callable[[], Launch],
        *,
        gate: PermissionGate | None = None,
        agent: str | None = None,
        on_stray: Callable[[StreamLine], None] | None = None,
        on_start: Callable[[int, bool], None] | None = None,
        on_exit: Callable[[int | None, str], None] | None = None,
    ) -> None:
        self.warm_seconds = warm_seconds
        self.launch = launch
        self.gate = gate
        self.agent = agent
        self.on_stray = on_stray
        self.on_start = on_start
        self.on_exit = on_exit
        self.starts = 0  # processes started (a cold turn each)
        self._proc: WarmClaude | None = None
        self._watch: asyncio.Task[None] | None = None
        self._idle: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def warm(self) -> bool:
        """Whether a live process is waiting for the next turn."""
        return self._proc is not None and self._proc.alive

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.warm and self._proc is not None else None

    @contextlib.asynccontextmanager
    async def turn(self, prompt: str) -> AsyncIterator[WarmTurn]:
        """Run one turn: on the warm process, or a fresh one (`Unavailable` if it cannot
        start). The body reads the turn to its end; leaving it early kills the process."""
        self._stop_idle()
        proc = self._proc
        cold = proc is None or not proc.alive
        if cold:
            await self.close()
            proc = await self._start()
        assert proc is not None
        turn = await proc.turn(prompt)
        try:
            yield turn
        except BaseException:
            proc.kill()
            raise
        finally:
            if not turn.ended:
                proc.kill()
        if self.warm_seconds <= 0 or not proc.alive:
            await self.close()
        else:
            self._idle = asyncio.create_task(
                self._expire(proc), name=f"claude-warm-idle:{self.agent}"
            )

    async def close(self) -> None:
        """Stop the idle timer and the process (if any)."""
        self._stop_idle()
        proc, self._proc = self._proc, None
        watch, self._watch = self._watch, None
        if proc is not None:
            await proc.close()
        if watch is not None:
            await asyncio.gather(watch, return_exceptions=True)

    async def _start(self) -> WarmClaude:
        launch = self.launch()
        proc = WarmClaude(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            gate=self.gate,
            agent=self.agent,
            on_stray=self.on_stray,
        )
        await proc.start()
        self._proc = proc
        self.starts += 1
        assert proc.pid is not None
        if self.on_start is not None:
            self.on_start(proc.pid, self.warm_seconds > 0)
        self._watch = asyncio.create_task(
            self._watch_exit(proc), name=f"claude-warm-exit:{self.agent}"
        )
        return proc

    async def _watch_exit(self, proc: WarmClaude) -> None:
        await proc.exited.wait()
        crashed = not proc.closing
        if self.on_exit is not None:
            self.on_exit(proc.returncode, "crashed" if crashed else "closed")
        if crashed and self._proc is proc:
            # reap it and end its readers now; the next turn starts a fresh one
            self._stop_idle()
            await proc.stop()

    async def _expire(self, proc: WarmClaude) -> None:
        await asyncio.sleep(self.warm_seconds)  # the idle timer: warm_seconds without a turn
        if self._proc is proc:
            logger.info(
                "no turn for %g s: letting claude go",
                self.warm_seconds,
                extra={"action": "claude.idle_exit", "agent": self.agent},
            )
            self._idle = None  # close() must not cancel the task running it
            await self.close()

    def _stop_idle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None and idle is not asyncio.current_task():
            idle.cancel()

"""Named, supervised asyncio tasks.

Invariants: every task the daemon starts has a name and a reference held here; a *critical*
task that dies unexpectedly is logged and either restarted (with backoff) or makes the daemon
stop (`failed` is set), never silently vanishes; `aclose` cancels everything and waits, with a
timeout, for it to finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

logger = logging.getLogger(__name__)


Sleep = Callable[[float], Awaitable[None]]


class Supervisor:
    def __init__(self, name: str = "hive", *, sleep: Sleep = asyncio.sleep) -> None:
        self.name = name
        self._sleep = sleep  # the restart backoff's wait (tests record it instead)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None
        self._closing = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def spawn(
        self,
        name: str,
        factory: Callable[[], Awaitable[Any]],
        *,
        critical: bool = True,
        restart: bool = False,
        max_backoff: float = 30.0,
    ) -> asyncio.Task[Any]:
        """Run `factory()` as task `name`. If it raises: restart it (when `restart`) with
        exponential backoff from 0.5 s, never over `max_backoff`, else (when `critical`) mark
        the supervisor failed."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"task {name!r} already running")

        async def runner() -> Any:
            backoff = min(0.5, max_backoff)
            while True:
                try:
                    return await factory()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._closing:
                        return None
                    logger.exception(
                        "task %s died", name, extra={"action": "task_died", "task": name}
                    )
                    if restart:
                        await self._sleep(backoff)
                        backoff = min(backoff * 2, max_backoff)
                        logger.warning("restarting task %s", name, extra={"action": "task_restart"})
                        continue
                    if critical:
                        self.failure = exc
                        self.failed.set()
                    raise

        task = asyncio.create_task(runner(), name=f"{self.name}:{name}")
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._forget(name, t))
        return task

    def _forget(self, name: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]
        if not task.cancelled() and task.exception() is not None:
            pass  # already logged by the runner

    def watch(self, task: asyncio.Task[Any], *, critical: bool = True) -> None:
        """Supervise a task another resource owns and closes itself (the database's writer
        and checkpoint tasks, which must outlive `aclose`'s cancel-everything so the last
        writes of a shutdown still commit): if it ends with an error while the daemon is not
        closing, log it and, when `critical`, mark the supervisor failed."""
        name = task.get_name()

        def done(t: asyncio.Task[Any]) -> None:
            if t.cancelled():
                return
            exc = t.exception()
            if exc is None or self._closing:
                return
            logger.error(
                "task %s died: %r",
                name,
                exc,
                exc_info=exc,
                extra={"action": "task_died", "task": name},
            )
            if critical and self.failure is None:
                self.failure = exc
                self.failed.set()

        task.add_done_callback(done)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    async def cancel(self, name: str) -> None:
        task = self._tasks.get(name)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def aclose(self, timeout: float = 10.0) -> None:
        self._closing = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                logger.warning("task %s did not stop in time", t.get_name())

"""uvicorn, embedded: the one way hyperhive runs an ASGI app inside an event loop it owns.

`QuietServer` leaves signal handling to the entry point, waits on an event instead of polling
`should_exit` every 0.1 s, and tells when it is ready. `EmbeddedServer` runs an app on a bound
TCP socket as a task (the dashboard, agent ports, `hive sim`); `serve_unix` runs one on a unix
socket until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from hyperhive.netio import bind_unix

logger = logging.getLogger(__name__)


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers or its 0.1 s exit polling, with a readiness event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.exit_requested = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self.exit_requested.set()

    async def main_loop(self) -> None:
        # uvicorn polls `should_exit` every 0.1 s; wait on an event instead, waking once a
        # second for `on_tick` (it refreshes the Date header when the counter is a multiple of 10).
        counter = 0
        while not await self.on_tick(counter):
            counter += 10
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self.exit_requested.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


async def serve_unix(app: Any, path: Path, sock: socket.socket | None = None) -> None:
    """Serve `app` on the unix socket `path` until cancelled; the socket file is removed.

    `sock` is `path` already bound and listening (connections waiting in its backlog are
    served); without it, `path` is bound here, mode 0600 (uvicorn's own `uds` bind would make
    it 0666: any local user could use the page)."""
    own = None
    if sock is None:
        own = sock = bind_unix(path)
    config = uvicorn.Config(
        app, uds=str(path), log_level="warning", lifespan="off", access_log=False
    )
    server = QuietServer(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(task)
    finally:
        server.request_exit()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        if own is not None:
            own.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # noqa: ASYNC240 - unlinking a socket file does not block


class EmbeddedServer:
    """One ASGI app served on an already-bound socket as a named task: `start` returns once it
    accepts connections (False if it died first), `stop` asks it to exit and waits up to
    `close_timeout`, cancelling it after that. `stop` is idempotent. `keep_alive`: seconds an
    idle HTTP/1.1 connection is kept open (uvicorn's default, 5)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        name: str,
        *,
        graceful: int = 5,
        close_timeout: float = 10.0,
        keep_alive: int = 5,
    ) -> None:
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=graceful,
            timeout_keep_alive=keep_alive,
        )
        self.server = QuietServer(config)
        self.sock = sock
        self.name = name
        self.close_timeout = close_timeout
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name=self.name)
        ready = asyncio.create_task(self.server.ready.wait(), name=f"{self.name}:ready")
        await asyncio.wait({self.task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            return True
        ready.cancel()
        return False

    async def stop(self) -> None:
        self.server.request_exit()
        task, self.task = self.task, None
        if task is not None:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except Exception:
                logger.exception("%s ended with an error", self.name)
        self.sock.close()

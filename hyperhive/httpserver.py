"""uvicorn, embedded: the one way hyperhive runs an ASGI app inside an event loop it owns.

`QuietServer` leaves signal handling to the entry point, waits on an event instead of polling
`should_exit` every 0.1 s, and tells when it is ready. `serve_unix` runs an app on a unix socket
until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn


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


async def serve_unix(app: Any, path: Path) -> None:
    """Serve `app` on the unix socket `path` until cancelled; the socket file is removed."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # noqa: ASYNC240 - unlinking a socket file does not block
    config = uvicorn.Config(
        app, uds=str(path), log_level="warning", lifespan="off", access_log=False
    )
    server = QuietServer(config)
    task = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(task)
    finally:
        server.request_exit()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # noqa: ASYNC240 - unlinking a socket file does not block

"""`DashboardServer`: the dashboard app on a TCP port, inside the daemon's event loop.

Invariants:
- A non-loopback address without an operator token refuses to start (`ConfigError`), before
  anything is bound.
- The socket comes from `bind_with_retry` (retries EADDRINUSE: a previous daemon's socket); port
  0 picks a free port, and `url` names the port actually bound.
- `aclose` is idempotent: it ends open event streams first, so uvicorn's graceful shutdown
  never waits on a page left open, then stops the server (cancelled after a timeout).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import TracebackType
from typing import TYPE_CHECKING, Self

from hyperhive.errors import ConfigError, Unavailable
from hyperhive.httpserver import EmbeddedServer
from hyperhive.netio import bind_with_retry
from hyperhive.web.dashboard.app import build_app
from hyperhive.web.dashboard.security import is_loopback, split_listen

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


class DashboardServer:
    def __init__(self, hive: Hive, listen: str, token: str | None = None) -> None:
        try:
            self.host, self.port = split_listen(listen)
        except ValueError as exc:
            raise ConfigError(f"dashboard.listen: {exc}") from None
        self.hive = hive
        self.token = token
        self.loopback = is_loopback(self.host)
        self.closing = asyncio.Event()
        self._sock: socket.socket | None = None
        self._embedded: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.url = ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        if not self.loopback and not self.token:
            raise ConfigError(
                f"dashboard.listen: {self.host}:{self.port} is not a loopback address, so the "
                "dashboard needs an operator token: set [dashboard] token_file in hive.toml"
            )
        self._sock = await bind_with_retry(self.host, self.port, agent="dashboard")
        # accepted sockets inherit it: small JSON answers are not held back by Nagle
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = self._sock.getsockname()[1]
        app = build_app(
            self.hive,
            token=self.token,
            loopback_only=self.loopback,
            port=port,
            closing=self.closing,
        )
        self._embedded = EmbeddedServer(
            app, self._sock, f"dashboard:{port}", graceful=3, close_timeout=CLOSE_TIMEOUT
        )
        ok = await self._embedded.start()
        self._task = self._embedded.task
        if not ok:
            await self.aclose()
            raise Unavailable(f"the dashboard failed to start on {self.host}:{port}")
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}/"
        logger.info("dashboard at %s", self.url, extra={"action": "dashboard_started"})

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.closing.set()
        if self._embedded is not None:
            await self._embedded.stop()
        elif self._sock is not None:
            self._sock.close()
        logger.info("dashboard stopped", extra={"action": "dashboard_stopped"})

"""The dashboard feature: serves the operator dashboard (`hyperhive.web.dashboard`) from the
daemon once everything else is up; its `url` is what `hive.dashboard_url` reads.

Where it listens: the `listen` given to the feature (the CLI's `--dashboard`), else
`HIVE_DASHBOARD`, else `[dashboard] listen` in hive.toml (default `127.0.0.1:7000`). Port 0
picks a free port (tests). A non-loopback address needs `[dashboard] token_file`; without it
the hive refuses to start.

Invariant: if the server dies while the hive runs, that is logged (the hive keeps running: the
host socket and CLI still work); `aclose` stops it and is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from hyperhive.core.feature import BaseFeature

if TYPE_CHECKING:
    from hyperhive.web.dashboard.server import DashboardServer

logger = logging.getLogger(__name__)

ENV = "HIVE_DASHBOARD"


class DashboardFeature(BaseFeature):
    name = "dashboard"

    def __init__(self, listen: str | None = None) -> None:
        self.listen = listen
        self.server: DashboardServer | None = None

    @property
    def url(self) -> str:
        """The dashboard's base URL once it serves, "" before (`core.hive.Surface`)."""
        return self.server.url if self.server is not None else ""

    def address(self) -> str:
        return self.listen or os.environ.get(ENV) or self.hive.config.dashboard.listen

    async def after_start(self) -> None:
        from hyperhive.web.dashboard.security import load_token
        from hyperhive.web.dashboard.server import DashboardServer

        token = load_token(self.hive.config.dashboard.token_file)
        server = DashboardServer(self.hive, self.address(), token)
        await server.start()
        self.server = server
        if server.task is not None:
            server.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self.server is not None and not self.server.closing.is_set():
            exc = None if task.cancelled() else task.exception()
            logger.error(
                "the dashboard server stopped unexpectedly: %r",
                exc,
                extra={"action": "dashboard_died"},
            )

    async def aclose(self) -> None:
        if self.server is not None:
            await self.server.aclose()

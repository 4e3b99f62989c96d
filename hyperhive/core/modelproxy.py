"""Per-agent model sockets: `run/agents/<name>/model.sock` forwards raw bytes to the hive's
http model endpoint (e.g. `hive sim` on host loopback).

Why: sandboxes in `none` or `egress` mode cannot reach host loopback, by design. The agent's
harness tunnels a loopback port inside the sandbox to this socket, so the real CLI reaches the
configured local model server in every network mode, and only that server. Only `http://`
endpoints are proxied (a TLS endpoint is reached directly, over the agent's own network).

Invariant: an agent's connection always gets an HTTP answer. When the endpoint cannot be
reached, the proxy reads the request and answers `502` with Anthropic's error body naming the
configured endpoint and the cause (the CLI then retries it as a server error, and its note says
what happened), never a bare close (which the CLI reports as a misleading ECONNRESET).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from urllib.parse import urlsplit

from hyperhive import safefs
from hyperhive.core.feature import BaseFeature
from hyperhive.netio import bad_gateway, splice

logger = logging.getLogger(__name__)


class ModelProxy(BaseFeature):
    name = "model_proxy"

    def __init__(self) -> None:
        self._servers: dict[str, asyncio.Server] = {}
        self._conns: set[asyncio.Task[None]] = set()
        self._opening = asyncio.Lock()

    def endpoint(self, name: str) -> str:
        """The configured endpoint of agent `name`."""
        return self.hive.config.model_endpoint.base_url.replace("{agent}", name)

    def target(self, name: str) -> tuple[str, int] | None:
        base = self.endpoint(name)
        if not base.startswith("http://"):
            return None
        parts = urlsplit(base)
        return parts.hostname or "127.0.0.1", parts.port or 80

    async def open(self, name: str) -> None:
        if name in self._servers or self.target(name) is None:
            return
        # a squatted path (a dir, a link) never stops the hive: prepare_socket clears it
        path = self.hive.paths.sock_dir(name) / "model.sock"

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._conns.add(task)
                task.add_done_callback(self._conns.discard)
            target = self.target(name)
            if target is None:
                w.close()
                return
            try:
                upstream = await asyncio.open_connection(*target)
            except OSError as exc:
                logger.warning(
                    "model endpoint unreachable for %s: %s",
                    name,
                    exc,
                    extra={"action": "model_proxy", "agent": name},
                )
                cause = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
                await bad_gateway(r, w, self.endpoint(name), cause)
                return
            await splice((r, w), upstream)

        async with self._opening:  # one bind at a time: two opens never race on one path
            if name in self._servers:
                return
            safefs.prepare_socket(path)
            server = await asyncio.start_unix_server(on_conn, path=str(path))
        owner = self.hive.socket_owner(name)
        if owner is not None:  # only the agent's own uid may use its model socket
            os.chown(path, owner, -1)
            path.chmod(0o600)
        self._servers[name] = server

    async def close(self, name: str) -> None:
        server = self._servers.pop(name, None)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def aclose(self) -> None:
        for name in list(self._servers):
            await self.close(name)
        for t in list(self._conns):
            t.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)

"""Inside the sandbox: a loopback TCP port that forwards to the core's `model.sock`, so the
CLI's `ANTHROPIC_BASE_URL` can point at 127.0.0.1 whatever the network mode.

The port's socket is bound here rather than by `start_server(host=...)`: that would resolve
the host with getaddrinfo, which uvloop runs on libuv's thread pool, starting four threads (and
their malloc arenas) that the harness then carries, idle, for its whole life.

Invariant: every connection's task is held here and ended (cancelled, awaited) on exit, so
none is left pending when the loop closes.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hyperhive.netio import bad_gateway, splice


class ModelTunnel:
    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ModelTunnel:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._conns.add(task)
            try:
                try:
                    upstream = await asyncio.open_unix_connection(str(self.sock))
                except OSError as exc:  # the core is down: say so, rather than a bare ECONNRESET
                    cause = exc.strerror or str(exc)
                    await bad_gateway(r, w, f"(the hive core's model socket {self.sock})", cause)
                    return
                await splice((r, w), upstream)
            finally:
                if task is not None:
                    self._conns.discard(task)

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            self._server = await asyncio.start_server(on_conn, sock=sock)
        except BaseException:
            sock.close()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        conns, self._conns = list(self._conns), set()
        for task in conns:
            task.cancel()
        await asyncio.gather(*conns, return_exceptions=True)

    def rewrite(self, base_url: str) -> str:
        """The same URL path, on the tunnel's port."""
        parts = urlsplit(base_url)
        return urlunsplit(("http", f"127.0.0.1:{self.port}", parts.path, parts.query, ""))

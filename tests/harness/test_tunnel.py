"""`ModelTunnel`: a loopback TCP port spliced to the core's model socket. Closing it ends every
open connection's task (a pending one was destroyed with the loop: "Task was destroyed but it
is pending" in the harness log). Real sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hyperhive.harness.tunnel import ModelTunnel


async def test_closing_the_tunnel_ends_open_connections(short_tmp: Path) -> None:
    sock = short_tmp / "model.sock"

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1024):
            w.write(data)
            await w.drain()
        w.close()

    upstream = await asyncio.start_unix_server(echo, path=str(sock))
    async with upstream:
        async with ModelTunnel(sock) as tunnel:
            r, w = await asyncio.open_connection("127.0.0.1", tunnel.port)
            w.write(b"ping")
            await w.drain()
            assert await r.readexactly(4) == b"ping"  # the connection is spliced, open
        handlers = [t for t in asyncio.all_tasks() if "on_conn" in repr(t.get_coro())]
        assert all(t.done() for t in handlers), handlers
        assert await r.read() == b""  # the client sees the tunnel's end
        w.close()
        await w.wait_closed()

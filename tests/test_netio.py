"""`hyperhive.netio`: bind_with_retry (waits out EADDRINUSE, gives up, fails at once on other
errors) and splice (bytes both ways, half-close passed on)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hyperhive.errors import Unavailable
from hyperhive.netio import bind_with_retry, splice


async def test_bind_with_retry_waits_for_the_port() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, blocker.close)  # the old owner goes away while we retry
    sock = await bind_with_retry("127.0.0.1", port, first_delay=0.02, tries=12)
    try:
        assert sock.getsockname()[1] == port
        server = await asyncio.start_server(lambda r, w: w.close(), sock=sock)
        server.close()
        await server.wait_closed()
    finally:
        sock.close()


async def test_bind_with_retry_gives_up() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        with pytest.raises(Unavailable, match="still in use after 3 tries"):
            await bind_with_retry("127.0.0.1", blocker.getsockname()[1], tries=3, first_delay=0.01)
    finally:
        blocker.close()


async def test_other_bind_errors_fail_at_once() -> None:
    with pytest.raises(Unavailable, match="cannot listen"):
        # TEST-NET address: not local, EADDRNOTAVAIL (nothing is sent)
        await bind_with_retry("192.0.2.1", 8100, tries=12, first_delay=10)


async def test_splice_copies_both_ways_and_passes_the_half_close_on() -> None:
    """client <-> [splice] <-> echo server: what the client writes comes back, and its EOF
    reaches the server (which then ends), so the client sees EOF too."""

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(await r.read())  # until the client's EOF
        await w.drain()
        w.close()

    async def spliced(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection("127.0.0.1", echo_port)
        await splice((r, w), upstream)

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    front = await asyncio.start_server(spliced, "127.0.0.1", 0)
    try:
        r, w = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        w.write(b"hello " * 20_000)
        await w.drain()
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 30) == b"hello " * 20_000
        w.close()
    finally:
        for s in (front, echo_server):
            s.close()
            await s.wait_closed()

"""Socket and byte-stream helpers for every side — the core, the web servers and the sandbox
side (`harness/`) alike: nothing here knows a hive.

- `splice` copies two streams into each other until both ends are done (half-closes are passed
  on: EOF on one side is `write_eof` on the other), then closes both writers.
- `bad_gateway` answers one HTTP request with a 502 in Anthropic's error shape (the model proxy
  and the harness's tunnel, when the model endpoint cannot be reached).
- `bind_with_retry` retries only EADDRINUSE (250 ms doubling, capped at 2 s, 12 tries); any other
  bind error fails at once. It returns a bound, listening, non-blocking socket, which a raw
  asyncio server or uvicorn (`Server.serve(sockets=[sock])`) can take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
from pathlib import Path

from hyperhive.errors import Unavailable

logger = logging.getLogger(__name__)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    try:
        await asyncio.gather(pump(a[0], b[1]), pump(b[0], a[1]))
    finally:
        for w in (a[1], b[1]):
            w.close()


_REQUEST_READ = 10.0  # seconds to read a request we are going to refuse
_BODY_MAX = 64 << 20


async def bad_gateway(
    r: asyncio.StreamReader, w: asyncio.StreamWriter, endpoint: str, cause: str
) -> None:
    """Read one HTTP request from `r` (head and `content-length` body) and answer 502 with an
    Anthropic-shaped error naming `endpoint` and `cause`; then close `w`."""
    message = f"hive model proxy: cannot reach the model endpoint {endpoint}: {cause}"
    body = json.dumps(
        {"type": "error", "error": {"type": "api_error", "message": message}}
    ).encode()
    try:
        async with asyncio.timeout(_REQUEST_READ):
            head = await r.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = min(int(value.strip() or 0), _BODY_MAX)
            if length:
                await r.readexactly(length)
        w.write(
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n".encode()
            + b"connection: close\r\n\r\n"
            + body
        )
        await w.drain()
    except (
        OSError,
        ValueError,
        TimeoutError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
    ):
        pass  # the agent hung up or sent no request: nothing to answer
    finally:
        w.close()


def _listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def bind_with_retry(
    host: str,
    port: int,
    *,
    backlog: int = 128,
    tries: int = 12,
    first_delay: float = 0.25,
    max_delay: float = 2.0,
    agent: str = "",
) -> socket.socket:
    """A listening TCP socket on (host, port), retrying while the port is still in use (a
    previous daemon's socket in TIME_WAIT or a slow-dying process)."""
    delay = first_delay
    for attempt in range(1, tries + 1):
        try:
            return _listen_socket(host, port, backlog)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            if attempt == tries:
                raise Unavailable(
                    f"cannot listen on {host}:{port}: still in use after {tries} tries"
                ) from exc
            logger.info(
                "port %s:%d in use, retrying in %.2fs",
                host,
                port,
                delay,
                extra={"action": "bind_retry", "agent": agent, "port": port},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


def bind_unix(path: Path, backlog: int = 2048) -> socket.socket:
    """A listening, non-blocking unix socket at `path` (a stale socket file is replaced),
    mode 0600 before it listens (the owner's own: for an agent's `web.sock`, only it and the
    root core may connect; see `hyperhive.core.access`) and uvicorn's default backlog. A
    missing parent directory is made when it can be (in a sandbox the core made it)."""
    with contextlib.suppress(OSError):  # made by the core in a sandbox (it owns the parent)
        path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock

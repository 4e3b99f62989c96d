"""Raw agent-socket conversations for tests of the socket layer (caps, idle, leases)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig, Sockets
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def with_sockets(config: HiveConfig, **limits: float) -> HiveConfig:
    return config.model_copy(update={"sockets": Sockets(**limits)})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def hive_with(paths: HivePaths, config: HiveConfig) -> AsyncIterator[Hive]:
    async with build_hive(paths, config) as hive:
        await hive.spawn("alice")
        yield hive


async def ask(conn: Conn, body: dict[str, object]) -> dict[str, object]:
    reader, writer = conn
    writer.write(json.dumps(body).encode() + b"\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    assert line.endswith(b"\n"), "the connection closed without an answer"
    answer: dict[str, object] = json.loads(line)
    return answer


async def closed(reader: asyncio.StreamReader) -> bool:
    """The daemon closed the connection (EOF, or a reset: it never read our request)."""
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionResetError:
        return True

"""`HostClient`: the host admin socket, hyperhive v1 framing (one request per connection).

Refuses an answer whose `version` is higher than it speaks (a missing version reads as 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hyperhive.errors import BadRequest, Unavailable, from_body
from hyperhive.wire.framing import MAX_LINE, decode_line, encode_line

SPOKEN_VERSION = 1


def _check(body: dict[str, Any]) -> dict[str, Any]:
    version = body.get("version", 0)
    if not isinstance(version, int) or version > SPOKEN_VERSION:
        raise BadRequest(
            f"host socket speaks version {version}; this client speaks {SPOKEN_VERSION}"
        )
    return body


class HostClient:
    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_unix_connection(self.path, limit=MAX_LINE + 2)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise Unavailable(
                f"no hive daemon is listening on {self.path} (start one with `hive serve`)"
            ) from exc

    async def request_raw(self, body: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await self._open()
        try:
            writer.write(encode_line(body))
            await writer.drain()
            raw = await asyncio.wait_for(reader.readline(), self.timeout)
        finally:
            await _close(writer)
        if not raw:
            raise Unavailable("the hive daemon closed the connection without answering")
        parsed = decode_line(raw)
        if not isinstance(parsed, dict):
            raise Unavailable("the hive daemon answered something that is not a JSON object")
        return _check(parsed)

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.request_raw(body)
        if not answer.get("ok"):
            raise from_body(answer)
        return answer

    async def call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return await self.request({"cmd": cmd, **fields})

    async def subscribe(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming request; yield every answer line after the first."""
        reader, writer = await self._open()
        try:
            writer.write(encode_line(body))
            await writer.drain()
            first = await reader.readline()
            if not first:
                raise Unavailable("the hive daemon closed the connection without answering")
            head = _check(decode_line(first))
            if not head.get("ok"):
                raise from_body(head)
            while True:
                line = await reader.readline()
                if not line:
                    return
                yield _check(decode_line(line))
        finally:
            await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close and wait until the transport has let go of the socket (a bare `close` leaves it
    to the garbage collector: an unclosed-socket ResourceWarning)."""
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass

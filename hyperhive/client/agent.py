"""`AgentClient`: one connection to an agent's socket, many requests, with retries.

Invariants: each `request` writes one line and reads exactly one answer line. On a connect or
I/O failure the client reconnects and resends with backoffs of 2, 4, 8, 16, 30 s (60 s budget
per outage: measured from the failure to the next successful connect, never counting the time a
request was parked before it failed), then raises `Unavailable`; a connection the core closed
while idle is replaced before the next request, with no wait (also when the close races the
request: a kept connection — one that already carried an answer — that ends before any byte
of the next answer is replaced and the request sent again at once, not counted as a retry; a
core that is really gone then fails the connect and the schedule above applies); the number of retries and seconds
waited are returned so callers can
tell a model "the core was unreachable for N s; the request went through". A resent `send` may
be stored twice (at-least-once), never lost; a resent `recv` loses nothing (its lease went back).
A recv's messages are delivered only once this connection acknowledges them (`ack`, or the
next `recv`); closing the client first gives them back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from hyperhive.errors import HiveError, Unavailable, from_body
from hyperhive.wire.framing import MAX_LINE, decode_line, encode_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 30.0)
    budget: float = 60.0

    def scaled(self, factor: float) -> RetryPolicy:
        return RetryPolicy(tuple(d * factor for d in self.delays), self.budget * factor)


NO_RETRY = RetryPolicy((), 0.0)


@dataclass
class Answer:
    body: dict[str, Any]
    retries: int = 0
    waited: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def retry_note(answer: Answer) -> str:
    """The one-line note appended to what a model sees after a slow round trip ('' if none)."""
    if answer.retries == 0:
        return ""
    return (
        f"(note: the hive core was unreachable for {answer.waited:.0f} s; "
        f"the request went through after {answer.retries} retr{'y' if answer.retries == 1 else 'ies'})"
    )


class AgentClient:
    def __init__(
        self, path: str | Path, *, retry: RetryPolicy | None = None, read_limit: int = MAX_LINE + 2
    ) -> None:
        self.path = str(path)
        self.retry = retry if retry is not None else RetryPolicy()
        self._limit = read_limit
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = False  # an answer came over the current connection (it was kept)
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        w, self._writer, self._reader = self._writer, None, None
        if w is not None:
            w.close()
            try:
                await w.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(
            self.path, limit=self._limit
        )
        self._used = False  # no answer has come over this connection yet

    async def _roundtrip(self, line: bytes) -> dict[str, Any]:
        if self._reader is not None and self._reader.at_eof():
            await self.aclose()  # the core closed it while idle (`[sockets] idle_timeout_seconds`)
        if self._writer is None:
            await self._connect()
        reused = self._used
        try:
            raw = await self._exchange(line)
        except (ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            raw = b""
        if raw == b"" and reused:
            # The core closed this kept connection while it was idle and its EOF had not
            # reached us yet (it races our write): the request was never read, so it goes out
            # again at once on a new connection — no retry, no backoff. A core that is really
            # gone fails the connect, and the caller's retry schedule takes over.
            await self.aclose()
            await self._connect()
            raw = await self._exchange(line)
        if not raw.endswith(b"\n"):
            raise ConnectionResetError("connection closed before the answer")
        self._used = True
        body = decode_line(raw)
        if not isinstance(body, dict):
            raise ConnectionResetError("answer is not a JSON object")
        return body

    async def _exchange(self, line: bytes) -> bytes:
        assert self._reader is not None and self._writer is not None
        self._writer.write(line)
        await self._writer.drain()
        return await self._reader.readline()

    async def request_answer(self, body: dict[str, Any]) -> Answer:
        """Send one request; retry on connect/I/O failure. Does not raise on ok:false.

        The budget is spent on outages, not on the time a request legitimately waits for its
        answer (a `recv` parked for a minute): an outage starts at the failure and ends when a
        connection is made again; the next outage (a second core restart during one parked
        `recv`) starts a fresh schedule. `Answer.waited` is the sum of the outages."""
        line = encode_line(body)
        async with self._lock:
            retries = 0
            waited = 0.0
            outage: float | None = None  # monotonic time the current outage began
            delays: list[float] = []
            while True:
                try:
                    if self._writer is None:
                        await self._connect()
                        if outage is not None:
                            waited += time.monotonic() - outage
                            outage = None
                    answer = await self._roundtrip(line)
                    return Answer(answer, retries, waited)
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                    await self.aclose()
                    now = time.monotonic()
                    if outage is None:
                        outage, delays = now, list(self.retry.delays)
                    down = now - outage
                    if not delays or down + delays[0] > self.retry.budget + 1e-9:
                        raise Unavailable(
                            f"hive core unreachable at {self.path} after {retries} retries "
                            f"({down:.0f} s): {exc}"
                        ) from exc
                    delay = delays.pop(0)
                    retries += 1
                    logger.info(
                        "core unreachable (%s); retry %d in %.1fs",
                        exc,
                        retries,
                        delay,
                        extra={"action": "client_retry"},
                    )
                    await asyncio.sleep(delay)

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one request; raise the matching `HiveError` on an `ok:false` answer."""
        answer = await self.request_answer(body)
        if not answer.body.get("ok"):
            raise from_body(answer.body)
        return answer.body

    async def call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return await self.request({"cmd": cmd, **fields})

    # -- recv leases (docs/wire.md, "Delivery guarantee") --------------------------------------
    # A recv's messages stay leased to this connection until `ack` (or the next `recv`);
    # `release` gives them back. A reconnect (retry) drops the connection's leases: the
    # server re-queues them, so an ack after one finds nothing and the messages come again.

    async def recv(self, wait_seconds: float | None = None, max: int = 8) -> dict[str, Any]:
        """Take up to `max` unread messages (acknowledging the previous batch)."""
        body: dict[str, Any] = {"cmd": "recv", "max": max}
        if wait_seconds:
            body["wait_seconds"] = wait_seconds
        return await self.request(body)

    async def ack(self, ids: Iterable[int] | None = None) -> list[int]:
        """Mark `ids` (None: everything this connection holds) delivered; returns those held."""
        body: dict[str, Any] = {"cmd": "ack"}
        if ids is not None:
            body["ids"] = list(ids)
        return list((await self.request(body))["ids"])

    async def release(self, ids: Iterable[int] | None = None) -> list[int]:
        """Give `ids` (None: everything held) back unread; returns those held."""
        body: dict[str, Any] = {"cmd": "release"}
        if ids is not None:
            body["ids"] = list(ids)
        return list((await self.request(body))["ids"])

    async def renew(self) -> dict[str, Any]:
        """Keep this connection's leases alive (`held`, `lease_seconds`)."""
        return await self.request({"cmd": "renew"})


__all__ = ["NO_RETRY", "AgentClient", "Answer", "HiveError", "RetryPolicy", "retry_note"]

"""The record of Messages requests a `SimServer` received, and waiting on it.

Invariants:
- An entry is appended when a request has been read and its answer decided, before the first
  byte of the answer is sent; `seq` counts from 0 and never repeats within one server.
- Only the server changes an entry, and only its `outcome` ("pending" → "complete",
  "disconnected" or "aborted"). Every append or change wakes the waiters.
- Waiting is on futures that every change resolves, never a sleep loop. Changes are synchronous
  so they can be made from any callback or `finally` block on the loop.
- With `limit` set, the oldest entries are dropped; `seq` keeps counting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hyperhive.sim.inbound import ToolResult
from hyperhive.sim.scenario import RequestKind

Outcome = Literal["pending", "complete", "disconnected", "aborted"]


@dataclass(slots=True)
class LoggedRequest:
    """One Messages request and what the sim answered."""

    seq: int
    agent: str | None
    session_id: str | None
    kind: RequestKind
    rule_id: str | None  # None: the default or a built-in answer
    latest_user_text: str
    tool_result_for: str | None  # tool name answered by the first tool_result, if any
    stream: bool
    model: str
    path: str
    status: int  # HTTP status of the answer
    tool_results: tuple[ToolResult, ...] = ()
    reply: tuple[Mapping[str, Any], ...] = ()  # content blocks sent back (empty for errors)
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the raw request JSON
    outcome: Outcome = "pending"

    @property
    def reply_text(self) -> str:
        return "".join(str(b.get("text", "")) for b in self.reply if b.get("type") == "text")

    @property
    def tool_uses(self) -> list[str]:
        """Names of the tools the sim's reply called."""
        return [str(b["name"]) for b in self.reply if b.get("type") == "tool_use"]


Predicate = Callable[[LoggedRequest], bool]


class Journal:
    """Entries in arrival order; waiters are woken (not polled) on every append or change."""

    def __init__(self, limit: int | None = None) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)
        self._waiters: set[asyncio.Future[None]] = set()
        self._next_seq = 0

    @property
    def entries(self) -> list[LoggedRequest]:
        return list(self._entries)

    @property
    def seen(self) -> int:
        """How many requests were ever logged (the `seq` the next one gets)."""
        return self._next_seq

    def next_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def add(self, entry: LoggedRequest) -> None:
        self._entries.append(entry)
        self._wake()

    def settle(self, entry: LoggedRequest, outcome: Outcome) -> None:
        entry.outcome = outcome
        self._wake()

    def _wake(self) -> None:
        # Synchronous on purpose: it runs in `finally` blocks of closing stream generators.
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait_for(
        self, predicate: Predicate | None, timeout: float, after: int
    ) -> LoggedRequest:
        """The first entry with `seq >= after` that satisfies `predicate` (any, if None)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for entry in self._entries:
                if entry.seq >= after and (predicate is None or predicate(entry)):
                    return entry
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise TimeoutError(
                    f"no matching request within {timeout:g}s ({self._next_seq} received)"
                ) from None
            finally:
                self._waiters.discard(waiter)

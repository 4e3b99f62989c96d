"""The durable message broker: send, recv (peek or park), recent, retention.

Invariants:
- A message is stored (committed) before `send` returns; ids are monotonic.
- `recv` hands out unread messages oldest first. They are *leased* to that recv until the
  caller either `ack`s (the reply carrying them was written: now marked delivered) or
  `release`s them (the connection died: they are unread again and waiters wake). Delivery is
  therefore at-least-once; ids let clients drop duplicates.
- A parked recv waits on an in-process wake-up (a per-recipient version counter + futures),
  never a poll loop, and wakes the moment a message for it commits.
- A paused recipient's messages queue: its recv parks as if the inbox were empty.
- Who may send to whom is asked of `policy` (a callable the hive installs), in the core, so a
  bypassed harness cannot send where its config forbids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hyperhive.clock import Clock, iso
from hyperhive.core.events import EventHub
from hyperhive.core.records import Message, NewMessage
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.store.base import MessageStore
from hyperhive.errors import BadRequest
from hyperhive.names import BROADCAST, OPERATOR, SYSTEM

logger = logging.getLogger(__name__)

SendPolicy = Callable[[str, str], Awaitable[None]]  # raises Forbidden to refuse (sender, to)


@dataclass
class Lease:
    recipient: str
    messages: list[Message]
    remaining: int
    _settled: bool = field(default=False, repr=False)

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.messages]


class Wakeups:
    """Per-recipient version counters with waiters: `notify` bumps and wakes at once."""

    def __init__(self) -> None:
        self._version: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def version(self, name: str) -> int:
        return self._version.get(name, 0)

    def notify(self, name: str) -> None:
        self._version[name] = self._version.get(name, 0) + 1
        for fut in self._waiters.pop(name, ()):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, name: str, seen: int, timeout: float) -> bool:
        """Wait until `name`'s version differs from `seen`; False on timeout."""
        if self.version(name) != seen:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, set()).add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(name)
            if waiters is not None:
                waiters.discard(fut)


class Broker:
    def __init__(
        self,
        store: MessageStore,
        registry: AgentRegistry,
        hub: EventHub,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.hub = hub
        self.clock = clock or Clock()
        self.wakeups = Wakeups()
        self._leased: dict[str, set[int]] = {}
        self.policy: SendPolicy | None = None
        self._acks: set[asyncio.Task[None]] = set()
        registry.on_change(self.wakeups.notify)  # e.g. unpause wakes a parked recv

    # -- send -------------------------------------------------------------------------------

    def _recipients(self, sender: str, to: str) -> list[str]:
        if to == BROADCAST:
            return [n for n in self.registry.names() if n != sender]
        if to == OPERATOR:
            return [OPERATOR]
        if to == SYSTEM:
            raise BadRequest("cannot send to 'system'")
        self.registry.require(to)
        return [to]

    async def send(self, sender: str, to: str, body: str, kind: str = "message") -> list[Message]:
        if not body:
            raise BadRequest("message body is empty")
        recipients = self._recipients(sender, to)
        if self.policy is not None and sender not in (OPERATOR, SYSTEM):
            for r in recipients if to != BROADCAST else [BROADCAST]:
                await self.policy(sender, r)
        if not recipients:
            return []
        stored = await self.store.insert_messages(
            [NewMessage(sender, r, body, kind) for r in recipients], iso(self.clock.now())
        )
        for m in stored:
            self.wakeups.notify(m.recipient)
            self.hub.publish(
                "message_sent",
                id=m.id,
                sender=m.sender,
                to=m.recipient,
                kind=m.kind,
                preview=body[:200],
                sent_at=m.sent_at,
            )
        logger.debug(
            "send %s -> %s (%d)", sender, to, len(stored), extra={"action": "send", "agent": sender}
        )
        return stored

    async def system_event(self, to: str, event: str, **data: object) -> list[Message]:
        """Drop a `system` event into an inbox (body = JSON {"event": ..., ...})."""
        import json

        body = json.dumps({"event": event, **data}, ensure_ascii=False, separators=(",", ":"))
        return await self.send(SYSTEM, to, body, kind="event")

    # -- recv -------------------------------------------------------------------------------

    def _paused(self, name: str) -> bool:
        rec = self.registry.get(name)
        return rec is not None and rec.paused

    async def recv(self, name: str, wait_seconds: float | None, max_n: int) -> Lease:
        """Lease up to `max_n` unread messages; park up to `wait_seconds` for the first."""
        deadline = time.monotonic() + (wait_seconds or 0.0)
        leased = self._leased.setdefault(name, set())
        while True:
            seen = self.wakeups.version(name)
            if not self._paused(name):
                rows, total = await self.store.undelivered(name, max_n, leased)
                rows = [r for r in rows if r.id not in leased]  # a concurrent recv took them
                if rows:
                    leased.update(r.id for r in rows)
                    return Lease(name, rows, max(total - len(rows), 0))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Lease(name, [], 0)
            await self.wakeups.wait(name, seen, remaining)

    async def ack(self, lease: Lease) -> None:
        """The reply carrying the lease was written: mark its messages delivered."""
        if lease._settled or not lease.messages:
            lease._settled = True
            return
        lease._settled = True
        at = iso(self.clock.now())
        try:
            await self.store.mark_delivered(lease.ids, at)
        finally:
            self._leased.get(lease.recipient, set()).difference_update(lease.ids)
        for m in lease.messages:
            self.hub.publish("message_delivered", id=m.id, to=m.recipient, delivered_at=at)

    def ack_soon(self, lease: Lease) -> None:
        """`ack` in the background (tracked; `drain` waits for every pending ack)."""
        if not lease.messages:
            lease._settled = True
            return
        task = asyncio.get_running_loop().create_task(self.ack(lease), name="broker-ack")
        self._acks.add(task)
        task.add_done_callback(self._ack_done)

    def _ack_done(self, task: asyncio.Task[None]) -> None:
        self._acks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "marking messages delivered failed: %r (they will be redelivered)",
                task.exception(),
                extra={"action": "ack_failed"},
            )

    async def drain(self) -> None:
        """Wait for background acks (called before the database closes)."""
        while self._acks:
            await asyncio.gather(*list(self._acks), return_exceptions=True)

    def release(self, lease: Lease) -> None:
        """The reply could not be written: the messages are unread again."""
        if lease._settled:
            return
        lease._settled = True
        if lease.messages:
            self._leased.get(lease.recipient, set()).difference_update(lease.ids)
            self.wakeups.notify(lease.recipient)
            logger.info(
                "recv reply not written; %d message(s) re-queued",
                len(lease.messages),
                extra={"action": "recv_requeued", "agent": lease.recipient},
            )

    async def recent(self, name: str, limit: int) -> list[Message]:
        return await self.store.recent(name, limit)

    async def unread(self, name: str) -> int:
        return await self.store.count_undelivered(name)

    # -- retention --------------------------------------------------------------------------

    async def sweep(self, keep_days: float) -> int:
        before = iso(self.clock.now() - keep_days * 86400)
        n = await self.store.sweep_delivered(before)
        if n:
            logger.info("retention: deleted %d delivered message(s)", n, extra={"action": "sweep"})
        return n

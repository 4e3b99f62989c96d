"""The durable message broker: send, recv (peek or park), recent, retention.

Invariants:
- A message is stored (committed) before `send` returns; ids are monotonic.
- `recv` hands out unread messages oldest first. They are *leased* until the holder either
  `ack`s them (the client acknowledged them: now marked delivered) or `release`s them (the
  reply was not written, the client gave them back, its connection died or went silent past
  the lease timeout: they are unread again and waiters wake). A lease can be split
  (`Lease.split`) to settle some of its messages; every message is settled exactly once.
  Who holds a lease, and when it times out, is the connection's business
  (`core/leases.py`). Delivery is therefore at-least-once; ids let clients drop duplicates.
- A parked recv waits on an in-process wake-up (a per-recipient version counter + futures),
  never a poll loop, and wakes the moment a message for it commits. A commit by another
  process on a shared PostgreSQL database arrives through LISTEN/NOTIFY (`core/store/pg/`):
  as `remote_rows` (the notification carried the row: it joins the index like a local
  commit, no read) or as `remote_committed` (recipient only: the index is dropped and
  reloaded from the store).
- A remote row can arrive after a load already read it (the notification is handled after
  the load's answer); it then joins the index only if not already there, not leased and not
  among the inbox's last `SETTLED_MAX` settled ids — beyond that window a duplicate is
  possible, which at-least-once delivery allows (ids let clients drop it).
- Unread index: per recipient, the broker keeps its unread, unleased messages in memory
  (`_Inbox.queue`), so a recv is a pop, not a query. The database stays the truth: the index
  is filled from it on first use and afterwards only by the store's `on_commit` hook (which
  runs in the same loop step as the COMMIT, so no read can see a row the index lacks or the
  other way round). An inbox over `INDEX_MAX_MESSAGES` / `INDEX_MAX_BYTES` drops its index and
  recv asks the store until the backlog shrinks again; memory stays bounded.
- Acks are batched: every reply written in one loop pass is marked delivered in one write.
- A paused recipient's messages queue: its recv parks as if the inbox were empty.
- Generations: the store stamps each message with its recipient's current generation and
  only serves rows of the current one; the index takes only current-generation rows and is
  dropped when the agent is destroyed.
- Who may send to whom is asked of `policy` (a callable the hive installs), in the core, so a
  bypassed harness cannot send where its config forbids.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from hyperhive import tracing
from hyperhive.clock import Clock, iso, parse_iso
from hyperhive.core.events import EventHub
from hyperhive.core.records import Message, NewMessage
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.store.base import MessageStore
from hyperhive.errors import BadRequest
from hyperhive.names import BROADCAST, OPERATOR, SYSTEM

logger = logging.getLogger(__name__)

SendPolicy = Callable[[str, str], Awaitable[None]]  # raises Forbidden to refuse (sender, to)

INDEX_MAX_MESSAGES = 1000  # per recipient; beyond it recv reads the store
INDEX_MAX_BYTES = 4 << 20  # of message bodies, per recipient
SETTLED_MAX = 512  # per recipient: recently acknowledged ids a late remote row must not revive


@dataclass
class Lease:
    recipient: str
    messages: list[Message]
    remaining: int
    _settled: bool = field(default=False, repr=False)

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.messages]

    def split(self, ids: Collection[int]) -> Lease:
        """Move the messages `ids` (those this lease holds) into a new, unsettled lease."""
        assert not self._settled
        taken = [m for m in self.messages if m.id in ids]
        self.messages = [m for m in self.messages if m.id not in ids]
        return Lease(self.recipient, taken, self.remaining)


class _Inbox:
    """One recipient's in-memory state: its unread index and its leased ids."""

    __slots__ = ("leased", "loadable", "pushes", "queue", "settled", "size")

    def __init__(self) -> None:
        self.queue: deque[Message] | None = None  # None: not loaded (or too big): ask the store
        self.size = 0  # bytes of bodies in `queue`
        self.leased: set[int] = set()
        self.pushes = 0  # commits seen for this recipient (detects a load racing a commit)
        self.loadable = True  # False while the backlog is known to be too big to index
        self.settled: dict[int, None] = {}  # the last SETTLED_MAX acknowledged ids, oldest first

    def settle(self, ids: Iterable[int]) -> None:
        """`ids` are delivered: no longer leased, remembered for late remote rows."""
        s = self.settled
        for i in ids:
            self.leased.discard(i)
            s[i] = None
        if len(s) > SETTLED_MAX:
            for i in list(s)[: len(s) - SETTLED_MAX]:
                del s[i]

    def push(self, m: Message) -> None:
        self.pushes += 1
        q = self.queue
        if q is None:
            return
        if len(q) >= INDEX_MAX_MESSAGES or self.size + len(m.body) > INDEX_MAX_BYTES:
            self.drop()
            return
        if m.id in self.leased:  # a load read the row before its commit hook ran
            return
        if q and q[-1].id >= m.id:  # commits resolve in id order; this keeps it if not
            self.merge([m])
        else:
            q.append(m)
            self.size += len(m.body)

    def take(self, n: int) -> list[Message]:
        q = self.queue
        assert q is not None
        out = [q.popleft() for _ in range(min(n, len(q)))]
        self.size -= sum(len(m.body) for m in out)
        return out

    def merge(self, msgs: Iterable[Message]) -> None:
        """Put messages back (released leases, failed acks), keeping id order."""
        if self.queue is None:
            return
        items = list(self.queue)
        for m in msgs:
            if all(x.id != m.id for x in items):
                bisect.insort(items, m, key=lambda x: x.id)
        self.queue = deque(items)
        self.size = sum(len(m.body) for m in items)
        if len(items) > INDEX_MAX_MESSAGES or self.size > INDEX_MAX_BYTES:
            self.drop()

    def discard(self, ids: Collection[int]) -> None:
        if self.queue is not None and ids:
            self.queue = deque(m for m in self.queue if m.id not in ids)
            self.size = sum(len(m.body) for m in self.queue)

    def drop(self) -> None:
        self.queue = None
        self.size = 0


class Wakeups:
    """Per-recipient version counters with waiters: `notify` bumps and wakes at once."""

    def __init__(self) -> None:
        self._version: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[bool]]] = {}

    def version(self, name: str) -> int:
        return self._version.get(name, 0)

    def waiting(self) -> set[str]:
        """Names with a parked waiter."""
        return {n for n, w in self._waiters.items() if w}

    def notify(self, name: str) -> None:
        self._version[name] = self._version.get(name, 0) + 1
        for fut in self._waiters.pop(name, ()):
            if not fut.done():
                fut.set_result(True)

    async def wait(self, name: str, seen: int, timeout: float) -> bool:
        """Wait until `name`'s version differs from `seen`; False on timeout."""
        if self.version(name) != seen:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        waiters = self._waiters.setdefault(name, set())
        waiters.add(fut)
        timer = loop.call_later(timeout, _expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()
            current = self._waiters.get(name)
            if current is not None:
                current.discard(fut)


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


def _operator_span(to: str) -> str | None:
    """A trace starts where the operator speaks: a short span, named on the message."""
    t = tracing.tracer(__name__)
    if t is None:
        return None
    with t.start_as_current_span(
        "operator message", attributes={"hyperhive.to": to, "hyperhive.sender": OPERATOR}
    ) as span:
        return tracing.traceparent_of(span)


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
        self._inboxes: dict[str, _Inbox] = {}
        self.policy: SendPolicy | None = None
        self._acks: list[Lease] = []  # written replies whose messages are not marked yet
        self._ack_tasks: set[asyncio.Task[None]] = set()
        # (recipient, seconds from send to a parked recv taking it): the wake latency (metrics)
        self.wake_observers: list[Callable[[str, float], None]] = []
        registry.on_change(self._agent_changed)

    def _agent_changed(self, name: str) -> None:
        """A registry change: wake a parked recv (e.g. unpause); a destroyed agent's unread
        index goes (mail for that incarnation must never reach a new one of its name)."""
        if self.registry.get(name) is None:
            self._inboxes.pop(name, None)
        self.wakeups.notify(name)

    def generation(self, name: str) -> int:
        """The recipient's current generation, as messages are stamped (0: not an agent)."""
        rec = self.registry.get(name)
        return rec.generation if rec is not None else 0

    def _inbox(self, name: str) -> _Inbox:
        ib = self._inboxes.get(name)
        if ib is None:
            ib = self._inboxes[name] = _Inbox()
        return ib

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

    async def send(
        self,
        sender: str,
        to: str,
        body: str,
        kind: str = "message",
        trace_parent: str | None = None,
    ) -> list[Message]:
        if not body:
            raise BadRequest("message body is empty")
        recipients = self._recipients(sender, to)
        if self.policy is not None and sender not in (OPERATOR, SYSTEM):
            for r in recipients if to != BROADCAST else [BROADCAST]:
                await self.policy(sender, r)
        if not recipients:
            return []
        if trace_parent is None and sender == OPERATOR and tracing.enabled():
            trace_parent = _operator_span(to)
        stored = await self.store.insert_messages(
            [NewMessage(sender, r, body, kind, trace_parent) for r in recipients],
            iso(self.clock.now()),
            on_commit=self._committed,
        )
        logger.debug(
            "send %s -> %s (%d)", sender, to, len(stored), extra={"action": "send", "agent": sender}
        )
        return stored

    def _committed(self, stored: list[Message]) -> None:
        """The store's on_commit hook: index, wake, publish — in the COMMIT's loop step."""
        for m in stored:
            if m.recipient_generation == self.generation(m.recipient):
                self._inbox(m.recipient).push(m)
            self.wakeups.notify(m.recipient)
            self.hub.publish(
                "message_sent",
                id=m.id,
                sender=m.sender,
                to=m.recipient,
                kind=m.kind,
                preview=m.body[:200],
                sent_at=m.sent_at,
            )

    def remote_committed(self, recipients: Collection[str] | None) -> None:
        """Another process (a node sharing a PostgreSQL database) committed messages for
        `recipients` (None: anyone, the wake-up channel reconnected): their indexes are dropped
        (and any load in flight invalidated), so the next recv reads the store, and parked
        recvs wake. Called by the storage's wake-up channel on the event loop."""
        if recipients is None:
            recipients = set(self._inboxes) | self.wakeups.waiting()
        for name in recipients:
            ib = self._inboxes.get(name)
            if ib is not None:
                ib.drop()
                ib.pushes += 1
                ib.loadable = True
            self.wakeups.notify(name)

    def remote_rows(self, rows: Iterable[Message]) -> None:
        """Another process committed `rows` (its notification carried them): each joins its
        recipient's index as a local commit would (unless a load, lease or ack already had it)
        and parked recvs wake. A row of a generation this node does not have for its
        recipient falls back to `remote_committed` (drop and re-read). Called by the
        storage's wake-up channel on the event loop."""
        for m in rows:
            ib = self._inboxes.get(m.recipient)
            if ib is not None:
                if m.recipient_generation != self.generation(m.recipient):
                    self.remote_committed((m.recipient,))
                    continue
                if m.id not in ib.settled:
                    ib.push(m)
            self.wakeups.notify(m.recipient)

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
        ib = self._inbox(name)
        parked = False
        while True:
            seen = self.wakeups.version(name)
            if not self._paused(name):
                lease = await self._take(name, ib, max_n)
                if lease is not None:
                    if parked and self.wake_observers:
                        self._observe_wake(name, lease)
                    return lease
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Lease(name, [], 0)
            parked = True
            await self.wakeups.wait(name, seen, remaining)

    def _observe_wake(self, name: str, lease: Lease) -> None:
        latency = max(0.0, self.clock.now() - parse_iso(lease.messages[-1].sent_at))
        for fn in self.wake_observers:
            fn(name, latency)

    async def _take(self, name: str, ib: _Inbox, max_n: int) -> Lease | None:
        if ib.queue is None and ib.loadable:
            await self._load(name, ib)
        if ib.queue is not None:
            if not ib.queue:
                return None
            rows = ib.take(max_n)
            ib.leased.update(m.id for m in rows)
            return Lease(name, rows, len(ib.queue))
        # a backlog too big to index: ask the store (leased rows excluded)
        rows, total = await self.store.undelivered(name, max_n, ib.leased)
        rows = [r for r in rows if r.id not in ib.leased]  # a concurrent recv took them
        if not rows:
            return None
        ib.leased.update(r.id for r in rows)
        remaining = max(total - len(rows), 0)
        ib.loadable = remaining <= INDEX_MAX_MESSAGES // 2
        return Lease(name, rows, remaining)

    async def _load(self, name: str, ib: _Inbox) -> None:
        """Fill the index from the store, unless the backlog is too big or a commit for this
        recipient landed while the store was being read (then the next recv tries again)."""
        pushes = ib.pushes
        rows, total = await self.store.undelivered(name, INDEX_MAX_MESSAGES, ib.leased)
        if ib.queue is not None or ib.pushes != pushes:
            return
        if total > len(rows):
            ib.loadable = False
            return
        rows = [r for r in rows if r.id not in ib.leased]
        size = sum(len(m.body) for m in rows)
        if size <= INDEX_MAX_BYTES:
            ib.queue, ib.size = deque(rows), size
        else:
            ib.loadable = False

    def ack_soon(self, lease: Lease) -> None:
        """The client acknowledged the lease: mark its messages delivered. Every lease
        acked in one loop pass goes into one write (tracked; `drain` waits for it)."""
        if lease._settled:
            return
        lease._settled = True
        if not lease.messages:
            return
        self._acks.append(lease)
        if len(self._acks) == 1:
            task = asyncio.get_running_loop().create_task(self._flush_acks(), name="broker-ack")
            self._ack_tasks.add(task)
            task.add_done_callback(self._ack_tasks.discard)

    async def ack(self, lease: Lease) -> None:
        """`ack_soon`, then wait until the messages are marked delivered."""
        self.ack_soon(lease)
        await self.drain()

    async def _flush_acks(self) -> None:
        await asyncio.sleep(0)  # let the rest of this loop pass's replies join
        leases, self._acks = self._acks, []
        ids = [i for lease in leases for i in lease.ids]
        at = iso(self.clock.now())
        try:
            await self.store.mark_delivered(ids, at)
        except Exception as exc:
            logger.error(
                "marking %d message(s) delivered failed: %r; they will be delivered again",
                len(ids),
                exc,
                extra={"action": "ack_failed"},
            )
            for lease in leases:
                self._requeue(lease)
            return
        for lease in leases:
            self._inbox(lease.recipient).settle(lease.ids)
            for m in lease.messages:
                self.hub.publish("message_delivered", id=m.id, to=m.recipient, delivered_at=at)

    async def drain(self) -> None:
        """Wait for pending acks (called before the database closes)."""
        while self._ack_tasks:
            await asyncio.gather(*list(self._ack_tasks), return_exceptions=True)

    async def _settle_acks(self) -> None:
        """Wait for the acks already in flight (not later ones: never starved by traffic)."""
        tasks = list(self._ack_tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def release(self, lease: Lease, why: str = "recv reply not written") -> None:
        """The messages are unread again (the reply was not written, the client gave them
        back, or its connection died or went silent): waiters wake."""
        if lease._settled:
            return
        lease._settled = True
        if lease.messages:
            self._requeue(lease)
            logger.info(
                "%s; %d message(s) re-queued",
                why,
                len(lease.messages),
                extra={"action": "recv_requeued", "agent": lease.recipient},
            )

    def _requeue(self, lease: Lease) -> None:
        ib = self._inbox(lease.recipient)
        ib.leased.difference_update(lease.ids)
        gen = self.generation(lease.recipient)  # a lease of a destroyed incarnation is dropped
        ib.merge(m for m in lease.messages if m.recipient_generation == gen)
        self.wakeups.notify(lease.recipient)

    async def mark_read(self, name: str, ids: Collection[int]) -> str | None:
        """Mark `name`'s unread messages `ids` delivered without a recv (the operator's inbox
        read on a page or with `hive inbox --mark-read`). Returns the time, None if no ids."""
        if not ids:
            return None
        at = iso(self.clock.now())
        await self.store.mark_delivered(ids, at)
        ib = self._inbox(name)
        ib.discard(set(ids))
        ib.settle(ids)
        for i in ids:
            self.hub.publish("message_delivered", id=i, to=name, delivered_at=at)
        return at

    async def adopt_mail(self, name: str) -> int:
        """A revived agent takes its previous incarnation's unread mail (only when the
        operator asks). The index is dropped (and any load in flight invalidated), so the
        next recv reads the store again; a parked recv wakes."""
        gen = self.generation(name)
        if gen <= 1:
            return 0
        n = await self.store.adopt_undelivered(name, gen - 1, gen)
        if n:
            ib = self._inbox(name)
            ib.drop()
            ib.pushes += 1
            ib.loadable = True
            self.wakeups.notify(name)
            logger.info(
                "%s took %d unread message(s) of its previous incarnation",
                name,
                n,
                extra={"action": "mail_adopted", "agent": name},
            )
        return n

    async def recent(self, name: str, limit: int) -> list[Message]:
        await self._settle_acks()  # read-your-acks: an acknowledged recv shows as delivered
        return await self.store.recent(name, limit)

    async def unread(self, name: str) -> int:
        """Messages waiting for `name`: undelivered and not leased to a recv (a batch a client
        holds unacknowledged is being read, as it was once written before leases were held)."""
        return (await self.unread_many([name]))[name]

    async def unread_many(self, names: Sequence[str]) -> dict[str, int]:
        """`unread` of each of `names`, counted in one store read (a status refresh)."""
        await self._settle_acks()  # acks in flight: not unread, no longer leased once written
        counts = await self.store.count_undelivered_many(names)
        return {n: max(counts[n] - len(self._inbox(n).leased), 0) for n in names}

    # -- retention --------------------------------------------------------------------------

    async def sweep(self, keep_days: float) -> int:
        before = iso(self.clock.now() - keep_days * 86400)
        n = await self.store.sweep_delivered(before)
        if n:
            logger.info("retention: deleted %d delivered message(s)", n, extra={"action": "sweep"})
        return n

"""Live events from every node: what one node's EventHub publishes that the dashboard shows
(`RELAYED_KINDS`: the message flow, questions, approvals, tool permissions, budget notices and
trips, agents' derived states such as a crash) is pushed to every other node of the hive and
published into their hubs as *relayed* events (`data.relayed` true, `data.node` the source).

Mechanism: PostgreSQL NOTIFY on the nodes channel (`NodeStore.publish`, the one the status rows
use, docs/multihost.md). Events published within `LINGER` of each other (or while the previous
push is in flight) travel together: one notification
carries as many as fit in `PAYLOAD_MAX` bytes (PostgreSQL refuses payloads over 8000). An
event too big alone travels *trimmed* (only its fields of at most `FIELD_MAX` bytes, plus
`trimmed: true`): every such event is about a database row (a question, an approval) the page
reads again anyway (the dashboard re-reads `/api/state` on every event).

Invariants:
- Each event reaches each other live node's hub exactly once while its listener is connected
  (one NOTIFY per batch, delivered once per LISTENing session), in the order its node
  published it (one pusher per node sends its batches one after the other; PostgreSQL
  delivers notifications in commit order).
- A relayed event is never relayed again (the hub gives relayed events only to listeners that
  ask: this one does not), and a node drops its own notifications.
- Nothing is pushed while no other node is live. While the database is away the events of
  that time are not relayed (logged, counted in `dropped`); the pages of the other nodes catch
  up on the state at their next event or heartbeat refresh. The queue is bounded (`QUEUE_MAX`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from hyperhive.core.events import HiveEvent

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.nodes import NodesFeature

logger = logging.getLogger(__name__)

RELAYED_KINDS = frozenset(
    {
        "message_sent",
        "message_delivered",
        "question_added",
        "question_resolved",
        "approval_added",
        "approval_resolved",
        "permission_added",
        "permission_resolved",
        "budget_warning",
        "budget_tripped",
        "budget_question",
        "budget_reset",
        "agent_state",
    }
)
PAYLOAD_MAX = 7800  # bytes of one NOTIFY payload (PostgreSQL's limit is 8000)
FIELD_MAX = 200  # bytes of one field of a trimmed event
LINGER = 0.1  # seconds a push waits for more events to join its batch (few notifications)
PREFIX = '{"e":['  # how an event push starts (a status row's push starts otherwise)
QUEUE_MAX = 20_000  # events waiting to be pushed; beyond it the oldest are dropped


def _dumps(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)


def _trim(kind: str, ts: str, data: dict[str, Any]) -> list[Any]:
    small = {k: v for k, v in data.items() if len(_dumps(v).encode()) <= FIELD_MAX}
    return [kind, ts, {**small, "trimmed": True}]


def batches(node: str, events: list[list[Any]]) -> list[tuple[str, int]]:
    """`events` ([kind, ts, data] each) as notification payloads of at most `PAYLOAD_MAX`
    bytes, in order: `{"e": [...], "o": node}` (`PREFIX` first: the status relay skips them), each with how many events it carries."""
    head = len(_join(node, []).encode())
    out: list[tuple[str, int]] = []
    cur: list[str] = []
    size = head
    for ev in events:
        one = _dumps(ev)
        n = len(one.encode())
        if head + n > PAYLOAD_MAX:
            one = _dumps(_trim(*ev))
            n = len(one.encode())
        if cur and size + n + 1 > PAYLOAD_MAX:
            out.append((_join(node, cur), len(cur)))
            cur, size = [], head
        cur.append(one)
        size += n + 1
    if cur:
        out.append((_join(node, cur), len(cur)))
    return out


def _join(node: str, parts: list[str]) -> str:
    return PREFIX + ",".join(parts) + '],"o":' + _dumps(node) + "}"


class EventRelay:
    def __init__(self, hive: Hive, nodes: NodesFeature) -> None:
        self.hive = hive
        self.nodes = nodes
        self._queue: deque[list[Any]] = deque()
        self._wake = asyncio.Event()
        self.sent = 0  # events pushed (tests, the benchmark)
        self.received = 0  # events relayed into this hub
        self.dropped = 0  # events not pushed (the database away, the queue full)
        self._own_tail = _join(nodes.node, [])[len(PREFIX) :]  # how this node's pushes end

    def start(self) -> None:
        self.hive.hub.add_listener(self._local)  # local events only (relayed=False)
        self.nodes.store.subscribe(self._received)
        self.hive.tasks.spawn("node-event-push", self._push_loop, restart=True)

    def _others_live(self) -> bool:
        me = self.nodes.node
        return any(self.nodes.is_live(n) for n in self.nodes.rows if n != me)

    def _local(self, ev: HiveEvent) -> None:
        if ev.kind not in RELAYED_KINDS or not self._others_live():
            return  # a single node (or every other one lost) queues nothing
        if len(self._queue) >= QUEUE_MAX:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append([ev.kind, ev.ts, ev.data])
        self._wake.set()

    async def _push_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(LINGER)  # let the events of the next moments join the batch
            self._wake.clear()
            events = list(self._queue)
            self._queue.clear()
            if not events or not self._others_live():
                continue  # nobody else to tell (a single node, or every other one lost)
            out = batches(self.nodes.node, events)
            for i, (payload, n) in enumerate(out):
                try:
                    await self.nodes.store.publish(payload)
                    self.sent += n
                except Exception as exc:  # the database away: this batch and the rest of
                    lost = sum(m for _, m in out[i:])  # the pass are not relayed (no reorder)
                    self.dropped += lost
                    logger.warning(
                        "event relay push failed (%d events not relayed): %r",
                        lost,
                        exc,
                        extra={"action": "event_relay_failed"},
                    )
                    break

    def _received(self, payload: str) -> None:
        if not payload.startswith(PREFIX) or payload.endswith(self._own_tail):
            return  # a status row (core/noderelay.py), or this node's own push
        try:
            doc = json.loads(payload)
            origin = str(doc["o"])
            events = list(doc["e"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("a bad event push: %r", exc)
            return
        if origin == self.nodes.node:
            return
        for ev in events:
            try:
                kind, ts, data = str(ev[0]), str(ev[1]), dict(ev[2])
            except (IndexError, TypeError, ValueError):
                logger.warning("a bad relayed event from %s", origin)
                continue
            self.received += 1
            self.hive.hub.publish_relayed(kind, ts, origin, data)

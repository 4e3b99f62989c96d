"""`core/eventrelay.py` without a database: how events are packed into notifications (the
8,000-byte payload limit, trimming, order) and that the hub gives relayed events only to the
listeners that ask for them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from hyperhive.core.eventrelay import FIELD_MAX, PAYLOAD_MAX, PREFIX, EventRelay, batches
from hyperhive.core.events import EventHub, HiveEvent
from hyperhive.errors import Unavailable
from tests.support.waiting import eventually


def test_batches_keep_order_and_fit_the_payload_limit() -> None:
    events = [["message_sent", "t", {"id": i, "preview": "é" * 150}] for i in range(200)]
    out = batches("node-b", events)
    assert len(out) > 1  # 200 events of ~300 bytes do not fit one notification
    ids = []
    for payload, n in out:
        assert payload.startswith(PREFIX)
        assert len(payload.encode()) <= PAYLOAD_MAX
        doc = json.loads(payload)
        assert doc["o"] == "node-b" and len(doc["e"]) == n
        ids += [e[2]["id"] for e in doc["e"]]
    assert ids == list(range(200))


def test_an_event_too_big_alone_travels_trimmed() -> None:
    big = {"id": 7, "agent": "alice", "diff": "x" * 20_000, "note": "short"}
    [(payload, n)] = batches("node-b", [["approval_added", "t", big]])
    assert n == 1 and len(payload.encode()) <= PAYLOAD_MAX
    [[kind, _, data]] = json.loads(payload)["e"]
    assert kind == "approval_added"
    assert data == {"id": 7, "agent": "alice", "note": "short", "trimmed": True}
    assert all(len(json.dumps(v)) <= FIELD_MAX for v in data.values())


def test_relayed_events_reach_only_listeners_that_ask() -> None:
    hub = EventHub()
    local: list[HiveEvent] = []
    both: list[HiveEvent] = []
    hub.add_listener(local.append)
    hub.add_listener(both.append, relayed=True)
    hub.publish("message_sent", id=1)
    ev = hub.publish_relayed("message_sent", "2026-12-07T00:00:00Z", "node-b", {"id": 2})
    assert ev.data == {"id": 2, "relayed": True, "node": "node-b"}
    assert ev.ts == "2026-12-07T00:00:00Z" and ev.seq == 2
    assert [e.data["id"] for e in local] == [1]
    assert [e.data["id"] for e in both] == [1, 2]
    assert [e.seq for e in hub.history(0)] == [1, 2]  # the page sees both


class _Store:
    def __init__(self) -> None:
        self.failing = True
        self.payloads: list[str] = []

    async def publish(self, payload: str) -> None:
        if self.failing:
            raise Unavailable("the database is away")
        self.payloads.append(payload)

    def subscribe(self, cb: object) -> None:
        return None


class _Nodes:
    node = "node-a"

    def __init__(self) -> None:
        self.rows = {"node-a": None, "node-b": None}
        self.store = _Store()

    def is_live(self, node: str) -> bool:
        return True


class _Tasks:
    def __init__(self) -> None:
        self.running: list[asyncio.Task[None]] = []

    def spawn(self, name: str, fn: Callable[[], Awaitable[None]], restart: bool) -> None:
        self.running.append(asyncio.create_task(fn(), name=name))


class _Hive:
    def __init__(self) -> None:
        self.hub = EventHub()
        self.tasks = _Tasks()


async def test_a_failed_push_is_counted_and_the_next_one_goes_out() -> None:
    hive, nodes = _Hive(), _Nodes()
    relay = EventRelay(hive, nodes)  # type: ignore[arg-type]
    relay.start()
    try:
        hive.hub.publish("message_sent", id=1)
        hive.hub.publish("turn_reported", agent="alice")  # not a dashboard event: stays here
        await eventually(lambda: relay.dropped == 1, what="the failed push counted")
        nodes.store.failing = False
        hive.hub.publish("message_sent", id=2)
        await eventually(lambda: relay.sent == 1, what="the next push sent")
        [payload] = nodes.store.payloads
        assert [e[2]["id"] for e in json.loads(payload)["e"]] == [2]
    finally:
        for task in hive.tasks.running:
            task.cancel()
        await asyncio.gather(*hive.tasks.running, return_exceptions=True)

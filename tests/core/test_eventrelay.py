"""`core/eventrelay.py` without a database: how events are packed into notifications (the
8,000-byte payload limit, trimming, order) and that the hub gives relayed events only to the
listeners that ask for them."""

from __future__ import annotations

import json

from hyperhive.core.eventrelay import FIELD_MAX, PAYLOAD_MAX, PREFIX, batches
from hyperhive.core.events import EventHub, HiveEvent


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

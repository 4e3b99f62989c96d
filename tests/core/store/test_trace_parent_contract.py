"""A message's trace context (`trace_parent`) is stored with it and read back, on every
backend; messages without one read back None."""

from __future__ import annotations

from hyperhive.core.records import NewMessage
from hyperhive.core.store.base import MessageStore

T0 = "2026-01-01T00:00:00.000000Z"
TP = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"


async def test_trace_parent_round_trips(messages: MessageStore) -> None:
    [traced, plain] = await messages.insert_messages(
        [NewMessage("alice", "bob", "a", trace_parent=TP), NewMessage("alice", "bob", "b")], T0
    )
    assert traced.trace_parent == TP and plain.trace_parent is None
    rows, _ = await messages.undelivered("bob", 10)
    assert [(m.body, m.trace_parent) for m in rows] == [("a", TP), ("b", None)]

"""Unread counts (`count_undelivered`, one per status row of every dashboard refresh), against
every backend, and answered on sqlite from the `messages_unread` index alone (issue #18: with
100,000 unread messages the count read every row and checked its generation with a correlated
subquery; a 100-agent page took 3.3 s to its first byte)."""

from __future__ import annotations

import sqlite3

from hyperhive.core.records import AgentRecord, NewMessage
from hyperhive.core.store.base import AgentStore, MessageStore
from hyperhive.core.store.sqlite import SqliteMessageStore

T0 = "2026-01-01T00:00:00.000000Z"


async def incarnate(agents: AgentStore, name: str) -> int:
    gen = await agents.next_generation(name)
    await agents.put_agent(AgentRecord(name=name, kind="agent", created_at=T0, generation=gen))
    return gen


async def test_counts_only_the_current_incarnations_undelivered_mail(
    agents: AgentStore, messages: MessageStore
) -> None:
    await incarnate(agents, "bob")
    await messages.insert_messages([NewMessage("alice", "bob", f"old {i}") for i in range(3)], T0)
    await incarnate(agents, "bob")
    new = await messages.insert_messages(
        [NewMessage("alice", "bob", f"new {i}") for i in range(5)], T0
    )
    await messages.insert_messages([NewMessage("bob", "operator", f"up {i}") for i in range(4)], T0)
    await messages.insert_messages([NewMessage("bob", "carol", "no such agent")], T0)
    await messages.mark_delivered([new[0].id, new[1].id], T0)
    assert await messages.count_undelivered("bob") == 3
    assert await messages.count_undelivered("operator") == 4  # no agent row: generation 0
    assert await messages.count_undelivered("carol") == 1
    assert await messages.count_undelivered("nobody") == 0


async def test_sqlite_counts_from_the_index_alone(
    agents: AgentStore, messages: MessageStore
) -> None:
    if not isinstance(messages, SqliteMessageStore):
        return  # the plan is sqlite's; the other backends ran the contract above
    await incarnate(agents, "bob")
    # the statement count_undelivered runs, captured, then explained
    seen: list[str] = []

    def capture(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(seen.append)

    def release(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(None)

    await messages.db.read(capture)
    try:
        await messages.count_undelivered("bob")
    finally:
        await messages.db.read(release)
    (sql,) = [s for s in seen if "count(*)" in s]

    def plan(conn: sqlite3.Connection) -> list[str]:
        return [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]

    plans = await messages.db.read(plan)
    assert any("COVERING INDEX messages_unread" in p for p in plans), plans
    assert not any("CORRELATED" in p for p in plans), plans

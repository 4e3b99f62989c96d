"""The `MessageStore` and `AgentStore` contracts, against every backend."""

from __future__ import annotations

from hyperhive.core.records import AgentRecord, Message, NewMessage
from hyperhive.core.store.base import AgentStore, MessageStore

T0, T1, T2 = (
    "2026-01-01T00:00:00.000000Z",
    "2026-01-02T00:00:00.000000Z",
    "2026-01-03T00:00:00.000000Z",
)


def to(recipient: str, body: str, sender: str = "alice") -> NewMessage:
    return NewMessage(sender=sender, recipient=recipient, body=body)


async def test_insert_numbers_rows_and_commits_them_once(messages: MessageStore) -> None:
    seen: list[list[Message]] = []
    rows = await messages.insert_messages([to("bob", "a"), to("carol", "b")], T0, seen.append)
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert rows[1].id > rows[0].id
    assert seen == [rows]
    assert rows[0] == Message(rows[0].id, "alice", "bob", "a", "message", T0)
    more = await messages.insert_messages([to("bob", "c")], T1)
    assert more[0].id > rows[1].id


async def test_undelivered_is_oldest_first_with_a_total_and_exclusions(
    messages: MessageStore,
) -> None:
    rows = await messages.insert_messages([to("bob", str(i)) for i in range(5)], T0)
    await messages.insert_messages([to("carol", "other")], T0)
    first, total = await messages.undelivered("bob", 2)
    assert [m.body for m in first] == ["0", "1"]
    assert total == 5
    rest, total = await messages.undelivered("bob", 10, exclude={rows[0].id, rows[2].id})
    assert [m.body for m in rest] == ["1", "3", "4"]
    assert total == 3
    assert await messages.count_undelivered("bob") == 5
    assert await messages.undelivered("nobody", 10) == ([], 0)


async def test_mark_delivered_once(messages: MessageStore) -> None:
    rows = await messages.insert_messages([to("bob", "a"), to("bob", "b")], T0)
    await messages.mark_delivered([rows[0].id], T1)
    await messages.mark_delivered([rows[0].id, 999_999], T2)  # already delivered / unknown
    assert await messages.count_undelivered("bob") == 1
    (newest, oldest) = await messages.recent("bob", 10)
    assert oldest.delivered_at == T1  # the first delivery time stays
    assert newest.delivered_at is None


async def test_recent_is_newest_first_addressed_to_the_participant(
    messages: MessageStore,
) -> None:
    await messages.insert_messages([to("bob", "1"), to("carol", "x"), to("bob", "2")], T0)
    await messages.insert_messages([to("alice", "from bob", sender="bob")], T0)
    assert [m.body for m in await messages.recent("bob", 10)] == ["2", "1"]
    assert [m.body for m in await messages.recent("bob", 1)] == ["2"]


async def test_sweep_deletes_only_old_delivered_rows(messages: MessageStore) -> None:
    old = await messages.insert_messages([to("bob", "old read"), to("bob", "old unread")], T0)
    new = await messages.insert_messages([to("bob", "new read")], T2)
    await messages.mark_delivered([old[0].id, new[0].id], T2)
    assert await messages.sweep_delivered(T1) == 1
    assert sorted(m.body for m in await messages.recent("bob", 10)) == ["new read", "old unread"]
    assert await messages.sweep_delivered(T1) == 0
    again = await messages.insert_messages([to("bob", "after")], T2)
    assert again[0].id > new[0].id  # ids are never reused


async def test_agents_upsert_list_by_name_and_delete(agents: AgentStore) -> None:
    bob = AgentRecord(name="bob", kind="agent", created_at=T0)
    mgr = AgentRecord(name="manager", kind="manager", created_at=T0, runtime="bwrap")
    await agents.put_agent(mgr)
    await agents.put_agent(bob)
    assert await agents.all_agents() == [bob, mgr]
    bob2 = AgentRecord(
        name="bob",
        kind="agent",
        created_at=T0,
        generation=2,
        paused=True,
        status_text="busy",
        status_set_at=T1,
        parent="manager",
        model="m",
    )
    await agents.put_agent(bob2)
    assert await agents.all_agents() == [bob2, mgr]
    await agents.delete_agent("bob")
    await agents.delete_agent("nobody")
    assert await agents.all_agents() == [mgr]

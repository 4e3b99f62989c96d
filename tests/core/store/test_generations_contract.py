"""The generations contract (spawn generations, migration 0004), against every backend: rows
are stamped with their agent's current generation, and an agent's unread mail, recent rows,
open questions and pending reminders are only those of its current incarnation."""

from __future__ import annotations

from hyperhive.core.records import AgentRecord, NewMessage
from hyperhive.core.store.base import AgentStore, MessageStore, QuestionStore, ReminderStore

T0 = "2026-01-01T00:00:00.000000Z"


async def incarnate(agents: AgentStore, name: str) -> int:
    gen = await agents.next_generation(name)
    await agents.put_agent(AgentRecord(name=name, kind="agent", created_at=T0, generation=gen))
    return gen


async def test_generations_are_never_reused(agents: AgentStore) -> None:
    assert await agents.next_generation("bob") == 1
    assert await agents.next_generation("bob") == 2
    await agents.delete_agent("bob")
    assert await agents.next_generation("bob") == 3
    assert await agents.next_generation("carol") == 1


async def test_mail_of_an_old_incarnation_is_not_the_new_ones(
    agents: AgentStore, messages: MessageStore
) -> None:
    first = await incarnate(agents, "bob")
    (old,) = await messages.insert_messages([NewMessage("alice", "bob", "to the first")], T0)
    assert old.recipient_generation == first
    (op,) = await messages.insert_messages([NewMessage("bob", "operator", "hi")], T0)
    assert op.recipient_generation == 0
    second = await incarnate(agents, "bob")
    await messages.insert_messages([NewMessage("alice", "bob", "to the second")], T0)
    rows, total = await messages.undelivered("bob", 10)
    assert [m.body for m in rows] == ["to the second"] and total == 1
    assert await messages.count_undelivered("bob") == 1
    assert [m.body for m in await messages.recent("bob", 10)] == ["to the second"]
    assert await messages.adopt_undelivered("bob", first, second) == 1
    rows, total = await messages.undelivered("bob", 10)
    assert [m.body for m in rows] == ["to the first", "to the second"] and total == 2


async def test_questions_and_reminders_of_an_old_incarnation_are_not_counted(
    agents: AgentStore, questions: QuestionStore, reminders: ReminderStore
) -> None:
    first = await incarnate(agents, "bob")
    q = await questions.insert("bob", "old?", [], False, T0, None)
    r = await reminders.insert("bob", "old", None, T0, T0)
    assert q.generation == first and r.generation == first
    await incarnate(agents, "bob")
    assert await questions.pending("bob") == []
    assert [x.id for x in await questions.pending()] == [q.id]  # the operator still sees it
    assert await reminders.count_pending("bob") == 0
    await reminders.insert("bob", "new", None, T0, T0)
    assert await reminders.count_pending("bob") == 1


async def test_grouped_counts_are_each_agents_own_count(
    agents: AgentStore, messages: MessageStore, reminders: ReminderStore
) -> None:
    # one status refresh asks for every agent's count at once: the same numbers, per agent
    await incarnate(agents, "bob")
    await incarnate(agents, "carol")
    await messages.insert_messages([NewMessage("alice", "bob", "old bob's")], T0)
    await reminders.insert("bob", "old bob's", None, T0, T0)
    await incarnate(agents, "bob")
    sent = await messages.insert_messages(
        [NewMessage("alice", "bob", f"new {i}") for i in range(3)]
        + [NewMessage("bob", "carol", "one"), NewMessage("bob", "operator", "up")],
        T0,
    )
    await messages.mark_delivered([sent[0].id], T0)
    for who in ("bob", "bob", "carol"):
        await reminders.insert(who, "new", None, T0, T0)
    names = ["bob", "carol", "operator", "nobody"]
    assert await messages.count_undelivered_many(names) == {
        "bob": 2,
        "carol": 1,
        "operator": 1,
        "nobody": 0,
    }
    assert {n: await messages.count_undelivered(n) for n in names} == (
        await messages.count_undelivered_many(names)
    )
    assert await reminders.count_pending_many(names) == {
        "bob": 2,
        "carol": 1,
        "operator": 0,
        "nobody": 0,
    }
    assert await messages.count_undelivered_many([]) == {}
    assert await reminders.count_pending_many([]) == {}

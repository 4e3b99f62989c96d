"""The `QuestionStore` and `ReminderStore` contracts, against every backend."""

from __future__ import annotations

import pytest

from hyperhive.core.store.base import QuestionStore, ReminderStore
from hyperhive.errors import BadRequest, NotFound
from hyperhive.wire.followups import QuestionRow

T0, T1, T2, T3 = (f"2026-01-0{d}T00:00:00.000000Z" for d in (1, 2, 3, 4))


async def ask(questions: QuestionStore, asker: str = "alice", deadline: str | None = None) -> int:
    q = await questions.insert(asker, "why?", ["yes", "no"], False, T0, deadline)
    return q.id


async def test_insert_and_get(questions: QuestionStore) -> None:
    q = await questions.insert("alice", "which?", ["a", "b"], True, T0, T2, target="bob")
    assert q.open
    assert (q.asker, q.question, q.options, q.multi, q.asked_at, q.deadline_at, q.target) == (
        "alice",
        "which?",
        ["a", "b"],
        True,
        T0,
        T2,
        "bob",
    )
    assert await questions.get(q.id) == q
    assert await questions.get(q.id + 1000) is None
    assert (await ask(questions)) > q.id


async def test_pending_is_oldest_first_and_by_asker(questions: QuestionStore) -> None:
    a1, b1, a2 = await ask(questions), await ask(questions, "bob"), await ask(questions)
    assert [q.id for q in await questions.pending()] == [a1, b1, a2]
    assert [q.id for q in await questions.pending("alice")] == [a1, a2]
    await questions.resolve(a1, T1, lambda q: "yes")
    assert [q.id for q in await questions.pending()] == [b1, a2]


async def test_resolve_wins_once_and_decide_runs_only_for_the_winner(
    questions: QuestionStore,
) -> None:
    qid = await ask(questions)
    calls: list[int] = []

    def decide(q: QuestionRow) -> str:
        calls.append(q.id)
        return f"answer {len(calls)}"

    row, won = await questions.resolve(qid, T1, decide)
    assert won and row.answer == "answer 1" and row.answered_at == T1 and not row.open
    row, won = await questions.resolve(qid, T2, decide)
    assert not won and row.answer == "answer 1" and row.answered_at == T1
    assert calls == [qid]
    with pytest.raises(NotFound):
        await questions.resolve(qid + 1000, T1, decide)


async def test_a_refusing_decide_changes_nothing(questions: QuestionStore) -> None:
    qid = await ask(questions)

    def refuse(q: QuestionRow) -> str:
        raise BadRequest("not an option")

    with pytest.raises(BadRequest):
        await questions.resolve(qid, T1, refuse)
    row = await questions.get(qid)
    assert row is not None and row.open


async def test_overdue_and_next_deadline(questions: QuestionStore) -> None:
    assert await questions.next_deadline() is None
    late = await ask(questions, deadline=T3)
    early = await ask(questions, deadline=T1)
    also_early = await ask(questions, deadline=T1)
    await ask(questions)  # no deadline: never overdue
    assert await questions.next_deadline() == T1
    assert await questions.overdue(T0) == []
    assert await questions.overdue(T2) == [early, also_early]
    assert await questions.overdue(T3, limit=1) == [early]
    await questions.resolve(early, T1, lambda q: "x")
    await questions.resolve(also_early, T1, lambda q: "x")
    assert await questions.overdue(T3) == [late]
    assert await questions.next_deadline() == T3


async def test_reminders_insert_get_count_and_due(reminders: ReminderStore) -> None:
    r2 = await reminders.insert("alice", "later", None, T2, T0)
    r1 = await reminders.insert("alice", "soon", "/state/r.txt", T1, T0)
    r3 = await reminders.insert("bob", "also soon", None, T1, T0)
    assert r1.status == "pending" and r1.attempts == 0 and r1.file_path == "/state/r.txt"
    assert await reminders.get(r1.id) == r1
    assert await reminders.get(r3.id + 1000) is None
    assert await reminders.count_pending("alice") == 2
    assert [r.id for r in await reminders.due(T1, 10)] == [r1.id, r3.id]
    assert [r.id for r in await reminders.due(T3, 2)] == [r1.id, r3.id]
    assert [r.id for r in await reminders.due(T3, 10)] == [r1.id, r3.id, r2.id]
    assert await reminders.next_due() == T1


async def test_reminders_delivered_and_failed_are_final(reminders: ReminderStore) -> None:
    assert await reminders.next_due() is None
    a = await reminders.insert("alice", "a", None, T1, T0)
    b = await reminders.insert("alice", "b", None, T1, T0)
    await reminders.mark_delivered([a.id], T2)
    row = await reminders.get(a.id)
    assert row is not None
    assert (row.status, row.delivered_at, row.attempts) == ("delivered", T2, 1)
    retried = await reminders.record_failure(b.id, "socket gone", T2)
    assert (retried.status, retried.attempts, retried.last_error, retried.due_at) == (
        "pending",
        1,
        "socket gone",
        T2,
    )
    assert await reminders.next_due() == T2
    failed = await reminders.record_failure(b.id, "still gone", None)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 2, "still gone")
    # final: neither a delivery nor another failure moves them
    await reminders.mark_delivered([b.id], T3)
    assert (await reminders.record_failure(a.id, "late", None)).status == "delivered"
    assert (await reminders.record_failure(b.id, "late", T3)).attempts == 2
    assert await reminders.count_pending("alice") == 0
    assert await reminders.due(T3, 10) == []
    assert await reminders.next_due() is None
    with pytest.raises(NotFound):
        await reminders.record_failure(b.id + 1000, "x", None)

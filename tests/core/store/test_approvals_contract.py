"""The `ApprovalStore` contract, against every backend."""

from __future__ import annotations

import pytest

from hyperhive.core.store.base import ApprovalStore
from hyperhive.errors import Conflict, NotFound
from hyperhive.wire.approvals import ApprovalRow, ApprovalStatus

T0, T1, T2 = (f"2026-01-0{d}T00:00:00.000000Z" for d in (1, 2, 3))


async def request(
    approvals: ApprovalStore, agent: str = "bob", kind: str = "config", by: str = "manager"
) -> ApprovalRow:
    return await approvals.insert(
        agent=agent, kind=kind, requested_by=by, requested_at=T0, commit_ref="abc"
    )


async def test_insert_get_and_pending(approvals: ApprovalStore) -> None:
    a = await approvals.insert(
        agent="bob",
        kind="spawn",
        requested_by="manager",
        requested_at=T0,
        description="a helper",
        fetched_sha="f00",
    )
    assert a.pending and a.status == "pending"
    assert (a.agent, a.kind, a.requested_by, a.description, a.fetched_sha, a.commit_ref) == (
        "bob",
        "spawn",
        "manager",
        "a helper",
        "f00",
        "",
    )
    assert await approvals.get(a.id) == a
    assert await approvals.get(a.id + 1000) is None
    b = await request(approvals, by="operator")
    assert b.id > a.id
    assert [r.id for r in await approvals.pending()] == [a.id, b.id]
    assert [r.id for r in await approvals.pending(requested_by="operator")] == [b.id]


async def test_one_pending_spawn_or_init_config_per_agent(approvals: ApprovalStore) -> None:
    first = await request(approvals, kind="spawn")
    with pytest.raises(Conflict, match=f"#{first.id}"):
        await request(approvals, kind="spawn")
    await request(approvals, kind="init_config")
    await request(approvals, agent="carol", kind="spawn")
    await request(approvals, kind="config")
    await request(approvals, kind="config")  # other kinds may queue up
    await approvals.decide(first.id, ApprovalStatus.DENIED, T1, "no")
    await request(approvals, kind="spawn")  # once resolved, a new one may wait


async def test_decide_wins_once(approvals: ApprovalStore) -> None:
    a = await request(approvals)
    row, won = await approvals.decide(a.id, ApprovalStatus.APPROVED, T1, "ok")
    assert won and (row.status, row.resolved_at, row.note) == ("approved", T1, "ok")
    row, won = await approvals.decide(a.id, ApprovalStatus.DENIED, T2, "no")
    assert not won and (row.status, row.resolved_at, row.note) == ("approved", T1, "ok")
    with pytest.raises(NotFound):
        await approvals.decide(a.id + 1000, ApprovalStatus.DENIED, T1, "")


async def test_decide_on_behalf_of_a_requester_sees_only_their_own(
    approvals: ApprovalStore,
) -> None:
    a = await request(approvals, by="manager")
    with pytest.raises(NotFound):
        await approvals.decide(a.id, ApprovalStatus.CANCELLED, T1, "", requested_by="alice")
    row, won = await approvals.decide(
        a.id, ApprovalStatus.CANCELLED, T1, "withdrawn", requested_by="manager"
    )
    assert won and row.status == "cancelled"


async def test_finish_moves_only_an_approved_row(approvals: ApprovalStore) -> None:
    a = await request(approvals)
    same = await approvals.finish(a.id, ApprovalStatus.FAILED, "too early")
    assert same.status == "pending" and same.note == ""
    await approvals.decide(a.id, ApprovalStatus.APPROVED, T1, "ok")
    done = await approvals.finish(a.id, ApprovalStatus.APPROVED, "applied", fetched_sha="beef")
    assert (done.status, done.note, done.fetched_sha) == ("approved", "applied", "beef")
    kept = await approvals.finish(a.id, ApprovalStatus.FAILED, "apply failed")
    assert (kept.status, kept.note, kept.fetched_sha) == ("failed", "apply failed", "beef")
    after = await approvals.finish(a.id, ApprovalStatus.APPROVED, "again")
    assert after.status == "failed"  # a failed row stays failed
    with pytest.raises(NotFound):
        await approvals.finish(a.id + 1000, ApprovalStatus.FAILED, "")


async def test_recent_is_every_pending_plus_the_newest_resolved(
    approvals: ApprovalStore,
) -> None:
    rows = [await request(approvals) for _ in range(5)]
    for r in rows[:3]:
        await approvals.decide(r.id, ApprovalStatus.DENIED, T1, "")
    ids = [r.id for r in rows]
    assert [r.id for r in await approvals.recent(2)] == ids[1:]
    assert [r.id for r in await approvals.recent(0)] == ids[3:]
    assert [r.id for r in await approvals.recent(10)] == ids

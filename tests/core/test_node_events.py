"""Live events from every node (issue #15): two hives in one process on one PostgreSQL database
(two nodes). What one node publishes that the dashboard shows reaches the other's EventHub
once, marked relayed, in order, and is never relayed back; the attention bar and the budget
breaker are hive-wide; a tool permission decided on the other node wakes its asker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from hyperhive.assembly import build_hive
from hyperhive.client.host import HostClient
from hyperhive.config import Dashboard, Defaults, HiveConfig, NodeCfg
from hyperhive.core.attention import gather
from hyperhive.core.budgets import RESUME_ONCE, BudgetsFeature
from hyperhive.core.events import HiveEvent
from hyperhive.core.hive import Hive
from hyperhive.core.nodes import NodesFeature
from hyperhive.core.permissions import PermissionsFeature
from hyperhive.core.status import status_row
from hyperhive.names import OPERATOR
from tests.support.waiting import eventually

CFG = HiveConfig(
    defaults=Defaults(runtime="external"),
    node=NodeCfg(heartbeat_seconds=0.2, lost_after_seconds=5.0),
    dashboard=Dashboard(listen="127.0.0.1:0"),
)


def nodes_of(hive: Hive) -> NodesFeature:
    f = hive.feature("nodes")
    assert isinstance(f, NodesFeature)
    return f


@asynccontextmanager
async def two_nodes(tmp: Path, url: str) -> AsyncIterator[tuple[Hive, Hive]]:
    from hyperhive.paths import HivePaths

    async with (
        build_hive(HivePaths(tmp / "a"), CFG, database=url, node="node-a") as a,
        build_hive(HivePaths(tmp / "b"), CFG, database=url, node="node-b") as b,
    ):
        for me, other in ((a, "node-b"), (b, "node-a")):
            await eventually(
                lambda me=me, other=other: (
                    nodes_of(me).is_live(other) and other in nodes_of(me).rows
                ),
                what=f"{other} live",
                timeout=60,
            )
        await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
        await eventually(
            lambda: a.registry.get("alice") is not None, what="a knows alice", timeout=60
        )
        await eventually(
            lambda: b.registry.get("alice") is not None, what="b knows alice", timeout=60
        )
        await eventually(lambda: nodes_of(b).owns("alice"), what="b runs alice", timeout=60)
        yield a, b


async def barrier(a: Hive, b: Hive) -> None:
    """Each node publishes a marker and waits for the other's: a node's events arrive in
    order, so everything either published before is on the other node now."""
    for src, dst in ((a, b), (b, a)):
        mark = f"barrier-{len(src.hub.history(0))}"
        src.hub.publish("budget_warning", agent=mark)
        await eventually(
            lambda dst=dst, mark=mark: events(dst, "budget_warning", agent=mark),
            what="the barrier",
            timeout=60,
        )


def events(hive: Hive, kind: str, **match: Any) -> list[HiveEvent]:
    return [
        ev
        for ev in hive.hub.history(0)
        if ev.kind == kind and all(ev.data.get(k) == v for k, v in match.items())
    ]


async def test_message_flow_crosses_nodes_once_in_order(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    async with two_nodes(short_tmp, pg_url()) as (a, b):
        # the operator on node B sends to alice (on B): node A's hub shows it, relayed
        sent = await HostClient(b.paths.host_sock).call("send", to="alice", body="from b")
        [mid] = sent["ids"]
        await eventually(lambda: events(a, "message_sent", id=mid), what="relayed to a", timeout=60)
        [ev] = events(a, "message_sent", id=mid)
        assert ev.data["relayed"] is True and ev.data["node"] == "node-b"
        assert ev.data["preview"] == "from b" and ev.data["to"] == "alice"
        # sent on A: on B once, relayed; on A once, its own (never relayed back)
        sent = await HostClient(a.paths.host_sock).call("send", to="alice", body="from a")
        [mid_a] = sent["ids"]
        await eventually(
            lambda: events(b, "message_sent", id=mid_a), what="relayed to b", timeout=60
        )
        # a burst, in order, each once
        ids = []
        for i in range(30):
            ids += [m.id for m in await b.broker.send("alice", OPERATOR, f"burst {i}")]
        await eventually(
            lambda: len(events(a, "message_sent", sender="alice")) >= 30,
            what="the burst on a",
            timeout=60,
        )
        # delivered on B (the operator reads its inbox there): a sees it
        await b.broker.mark_read(OPERATOR, ids[:1])
        await eventually(
            lambda: events(a, "message_delivered", id=ids[0]), what="delivered relayed", timeout=60
        )
        await barrier(a, b)  # a duplicate, had there been one, would be here by now
        got = [ev.data["id"] for ev in events(a, "message_sent", sender="alice")]
        assert got == ids  # exactly once each, in the order node B sent them
        assert [e.data.get("relayed") for e in events(a, "message_sent", id=mid_a)] == [None]
        assert len(events(b, "message_sent", id=mid_a)) == 1
        assert len(events(b, "message_sent", id=mid)) == 1
        assert not any(e.data.get("relayed") for e in events(b, "message_sent", id=mid))
        assert len(events(a, "message_delivered", id=ids[0])) == 1


async def _count(hive: Hive, kind: str) -> int:
    return next(i.count for i in await gather(hive) if i.kind == kind)


async def _count_is(hive: Hive, kind: str, n: int) -> bool:
    return await _count(hive, kind) == n


async def test_questions_and_permissions_across_nodes(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    async with two_nodes(short_tmp, pg_url()) as (a, b):
        q = await b.questions.ask("alice", "deploy?", ["yes", "no"])
        await eventually(
            lambda: events(a, "question_added", id=q.id), what="question on a", timeout=60
        )
        assert await _count(a, "questions") == 1
        await a.questions.answer(q.id, ["yes"])
        await eventually(
            lambda: events(b, "question_resolved", id=q.id, relayed=True),
            what="answer on b",
            timeout=60,
        )
        assert await _count(a, "questions") == 0
        # a tool permission asked on B (its harness waits there), decided on A
        perms_b = b.feature("permissions")
        perms_a = a.feature("permissions")
        assert isinstance(perms_b, PermissionsFeature) and isinstance(perms_a, PermissionsFeature)
        asking = asyncio.create_task(
            perms_b.ask("alice", harness="h1", key="k1", tool="Bash", tool_input={"command": "ls"})
        )
        try:
            await eventually(
                lambda: events(a, "permission_added", relayed=True), what="on a", timeout=60
            )
            [added] = events(a, "permission_added", relayed=True)
            assert await _count(a, "permissions") == 1
            await perms_a.decide(int(added.data["id"]), "allow")
            row = await asyncio.wait_for(asking, 60)  # woken on B by A's decision
            assert row.status.value == "allowed"
        finally:
            asking.cancel()
            await asyncio.gather(asking, return_exceptions=True)
        await eventually(
            lambda: events(b, "permission_resolved", relayed=True), what="on b", timeout=60
        )


async def test_budget_breaker_is_hive_wide(short_tmp: Path, pg_url: Callable[[], str]) -> None:
    async with two_nodes(short_tmp, pg_url()) as (a, b):
        bud_a, bud_b = a.feature("budgets"), b.feature("budgets")
        assert isinstance(bud_a, BudgetsFeature) and isinstance(bud_b, BudgetsFeature)
        assert await bud_b.trip("alice", "turns_per_hour", "alice's turns_per_hour limit", 10)
        # node A: the trip event, alice paused and tripped, counted in A's attention bar
        await eventually(
            lambda: events(a, "budget_tripped", agent="alice"), what="trip on a", timeout=60
        )

        async def paused_on_a() -> bool:
            row = await status_row(a, "alice")
            return bool(row.paused and row.budget_tripped)

        await eventually(paused_on_a, what="alice paused (tripped) on a", timeout=60)
        await eventually(lambda: _count_is(a, "budgets", 1), what="a counts the trip", timeout=60)

        async def question_of_trip() -> int | None:
            view = next(r for r in (await bud_a.rows()).agents if r.agent == "alice")
            assert view.tripped is not None and "turns_per_hour" in view.tripped.reason
            return view.tripped.question_id

        # the operator answers the breaker's question on node A; node B acts on it
        qid = await eventually(question_of_trip, what="the question in a's view", timeout=60)
        assert isinstance(qid, int)
        # a missed event heals (every trip event has arrived by now: the question's id is
        # known): the view follows the status rows node B pushes again
        bud_a._remote.clear()
        await eventually(lambda: "alice" in bud_a.tripped(), what="healed", timeout=60)
        await a.questions.answer(qid, [RESUME_ONCE])

        async def resumed() -> bool:
            rec = b.registry.get("alice")
            return rec is not None and not rec.paused and "alice" not in bud_b.tripped()

        await eventually(resumed, what="alice resumed by b", timeout=60)
        await eventually(lambda: _count_is(a, "budgets", 0), what="a's count back to 0", timeout=60)

        async def unpaused_on_a() -> bool:
            row = await status_row(a, "alice")
            return not row.paused and not row.budget_tripped

        await eventually(unpaused_on_a, what="alice shown resumed on a", timeout=60)


async def test_failed_agent_on_another_node_counts(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    from hyperhive.client.agent import NO_RETRY, AgentClient

    async with two_nodes(short_tmp, pg_url()) as (a, b):
        assert await _count(a, "failed_agents") == 0
        async with AgentClient(b.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
            await alice.call("report_state", state="failed", note="the turn failed")
            await eventually(
                lambda: events(a, "agent_state", agent="alice", state="failed", relayed=True),
                what="the failed state relayed to a",
                timeout=60,
            )
            await eventually(
                lambda: _count_is(a, "failed_agents", 1), what="a counts it", timeout=60
            )
            await alice.call("report_state", state="idle")
            await eventually(lambda: _count_is(a, "failed_agents", 0), what="back to 0", timeout=60)


async def test_approvals_across_nodes(short_tmp: Path, pg_url: Callable[[], str]) -> None:
    async with two_nodes(short_tmp, pg_url()) as (a, b):
        row = await b.approvals.request_spawn("zed", requested_by="operator", description="x")
        await eventually(
            lambda: events(a, "approval_added", id=row.id, relayed=True),
            what="approval on a",
            timeout=60,
        )
        assert await _count(a, "approvals") == 1
        await a.approvals.deny(row.id, "not now")
        await eventually(
            lambda: events(b, "approval_resolved", id=row.id, relayed=True),
            what="resolution on b",
            timeout=60,
        )
        assert await _count(b, "approvals") == 0


async def test_approval_acted_on_another_node_resolves_once_on_each(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    async with two_nodes(short_tmp, pg_url()) as (a, b):
        row = await b.approvals.request_spawn(
            "zoe", requested_by="operator", description="x", node="node-b"
        )
        await eventually(lambda: events(a, "approval_added", id=row.id), what="on a", timeout=60)
        await a.approvals.approve(row.id)  # clicked on A; B acts on it (or A, if it must)
        for hive in (a, b):
            await eventually(
                lambda hive=hive: events(hive, "approval_resolved", id=row.id),
                what="resolved",
                timeout=60,
            )
        await eventually(lambda: b.registry.get("zoe") is not None, what="zoe", timeout=60)
        await eventually(lambda: a.registry.get("zoe") is not None, what="zoe on a", timeout=60)
        await barrier(a, b)  # whatever either node published before has arrived on the other
        for hive in (a, b):
            assert len(events(hive, "approval_resolved", id=row.id)) == 1

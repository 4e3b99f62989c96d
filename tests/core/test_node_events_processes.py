"""Live events across nodes for real (issue #15): two `hive serve` processes on one PostgreSQL
database. What happens on node B — the operator's message, an agent's message, its question,
its budget breaker tripping — shows on node A's dashboard (history, `/api/attention`, the
agent's row), and the operator resolves the breaker from node A."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.core.budgets import RESUME_ONCE
from tests.support.daemon import DaemonProcess
from tests.support.nodes import CONFIG, all_peers_up, running_nodes, status_of
from tests.support.waiting import eventually

# the dashboards on free ports; the runaway guard trips an agent's 4th message in a minute
NODE_CONFIG = (
    CONFIG
    + """
[dashboard]
listen = "127.0.0.1:0"
[budgets]
runaway_messages_per_minute = 3
"""
)


@pytest.fixture
def two_nodes(short_tmp: Path, pg_url: Callable[[], str]) -> Iterator[tuple[DaemonProcess, ...]]:
    with running_nodes(short_tmp, pg_url(), ("node-a", "node-b"), NODE_CONFIG) as nodes:
        yield nodes


async def _dashboard_of(d: DaemonProcess, name: str) -> str:
    """The node's dashboard URL from its row (a node's first heartbeat can go out before its
    dashboard listens: the URL arrives with a later one)."""

    async def url() -> str | None:
        rows = (await HostClient(d.paths.host_sock).call("nodes"))["nodes"]
        return next((r.get("dashboard_url") for r in rows if r["name"] == name), None)

    found = await eventually(url, what=f"{name}'s dashboard URL", timeout=60)
    return str(found).rstrip("/")


async def test_events_of_node_b_on_node_a_dashboard(two_nodes: tuple[DaemonProcess, ...]) -> None:
    a, b = two_nodes
    host_a, host_b = HostClient(a.paths.host_sock), HostClient(b.paths.host_sock)
    await eventually(
        lambda: all_peers_up(a, {"node-a", "node-b"}), what="both nodes up", timeout=60
    )
    await host_a.call("spawn", name="alice", node="node-b")
    await eventually(lambda: all_peers_up(b, {"node-a", "node-b"}), what="b sees a", timeout=60)
    async with httpx.AsyncClient(
        base_url=await _dashboard_of(a, "node-a"), timeout=60, trust_env=False
    ) as dash:

        async def flow() -> list[dict[str, Any]]:
            r = await dash.get("/dashboard/history", params={"kind": "message_sent"})
            return [ev["data"] for ev in r.json()["events"]]

        async def attention(kind: str) -> int:
            items = (await dash.get("/api/attention")).json()["items"]
            return int(next(i["count"] for i in items if i["kind"] == kind))

        # the operator's message, sent on node B, in node A's message flow (once, relayed)
        [mid] = (await host_b.call("send", to="alice", body="hello from b"))["ids"]

        async def in_flow(mid: int) -> list[dict[str, Any]]:
            return [d for d in await flow() if d["id"] == mid]

        [seen] = await eventually(lambda: in_flow(mid), what="in a's flow", timeout=60)
        assert seen["node"] == "node-b" and seen["relayed"] is True
        async with AgentClient(b.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
            # alice (on B) asks the operator: node A's attention bar counts it
            await alice.call("ask_operator", question="may I?", options=["yes", "no"])
            await eventually(
                lambda: _is(attention("questions"), 1), what="a counts the question", timeout=60
            )
            # alice floods: her breaker trips on node B; node A shows her paused, tripped
            for i in range(4):
                await alice.call("send", to="operator", body=f"flood {i}")
        await eventually(lambda: _is(attention("budgets"), 1), what="a counts the trip", timeout=60)

        async def tripped_on_a() -> bool:
            row = await status_of(a, "alice")
            return bool(row.get("paused") and row.get("budget_tripped"))

        await eventually(tripped_on_a, what="alice paused by her breaker, on a", timeout=60)
        # the breaker's question, answered on node A: node B resumes alice
        qs = (await host_a.call("questions"))["questions"]
        [q] = [q for q in qs if "alice is paused" in q["question"]]
        await host_a.call("answer", id=q["id"], options=[RESUME_ONCE])

        async def resumed_on_a() -> bool:
            row = await status_of(a, "alice")
            return not row.get("paused") and not row.get("budget_tripped")

        await eventually(resumed_on_a, what="alice resumed, seen on a", timeout=60)
        await eventually(lambda: _is(attention("budgets"), 0), what="trip count 0", timeout=60)
        assert len(await in_flow(mid)) == 1  # never twice


async def _is(aw: Any, want: object) -> bool:
    return bool(await aw == want)

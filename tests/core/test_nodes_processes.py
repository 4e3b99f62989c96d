"""A hive across nodes for real: two `hive serve` processes with their own homes on one
PostgreSQL database (the throwaway test cluster). An agent spawned from node A onto node B,
mail from A woken on B, B killed with SIGKILL → seen lost on A, its agent `node lost`, the
message B's agent had leased (not acknowledged) unread again; B back → live, re-adopted, the
message delivered once acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from tests.support.daemon import DaemonProcess
from tests.support.nodes import CONFIG, all_peers_up, nodes_live, running_nodes, status_of
from tests.support.waiting import eventually


@pytest.fixture
def two_nodes(short_tmp: Path, pg_url: Callable[[], str]) -> Iterator[tuple[DaemonProcess, ...]]:
    with running_nodes(short_tmp, pg_url(), ("node-a", "node-b"), CONFIG) as nodes:
        yield nodes


async def test_two_nodes_one_hive_and_a_node_killed(two_nodes: tuple[DaemonProcess, ...]) -> None:
    a, b = two_nodes
    host_a = HostClient(a.paths.host_sock)
    await eventually(
        lambda: all_peers_up(a, {"node-a", "node-b"}), what="both nodes up", timeout=60
    )
    await host_a.call("spawn", name="alice", node="node-b")
    row = await status_of(a, "alice")
    assert row["node"] == "node-b"
    # mail sent on A wakes a recv parked on B (LISTEN/NOTIFY through the shared database)
    agent = AgentClient(b.paths.agent_sock("alice"), retry=NO_RETRY)
    try:
        parked = asyncio.create_task(agent.recv(wait_seconds=60, max=8))
        await eventually(lambda: _parked(b), what="recv parked on node-b", timeout=60)
        sent = await host_a.call("send", to="alice", body="across nodes")
        got = await parked
        assert [m["id"] for m in got["messages"]] == sent["ids"]
        # leased, never acknowledged: node-b dies now
        b.kill9()
    finally:
        await agent.aclose()
    await eventually(
        lambda: _equals(nodes_live(a), {"node-a": True, "node-b": False}),
        timeout=60,
        what="node-b seen lost",
    )
    row = await status_of(a, "alice")
    assert row["state"] == "node_lost" and row["unread"] == 1
    # node-b comes back: live again, it answers for its agent, and the mail is still there
    b.start()
    await eventually(
        lambda: _equals(nodes_live(a), {"node-a": True, "node-b": True}),
        what="node-b back",
        timeout=60,
    )
    async with AgentClient(b.paths.agent_sock("alice"), retry=NO_RETRY) as again:
        got = await again.recv(wait_seconds=30, max=8)
        assert [m["body"] for m in got["messages"]] == ["across nodes"]
        await again.ack()
    await eventually(lambda: _unread_is(a, "alice", 0), what="delivered after ack", timeout=60)


async def _equals(aw: Any, want: object) -> bool:
    return bool(await aw == want)


async def _unread_is(d: DaemonProcess, agent: str, n: int) -> bool:
    return bool((await status_of(d, agent)).get("unread") == n)


async def _parked(d: DaemonProcess) -> bool:
    row = await status_of(d, "alice")
    return bool(row.get("running"))

"""Nodes (core/nodes.py, core/nodeforward.py, web/peer.py): two hives in one process with
their own homes and databases, sharing one nodes store (the in-memory fake standing for the
shared database), reaching each other over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperhive.assembly import build_hive
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig, NodeCfg
from hyperhive.core.hive import Hive
from hyperhive.core.nodes import ENV, NodesFeature, host_node_name
from hyperhive.core.store.nodes import MemoryNodeStore, NodeRow
from hyperhive.errors import Forbidden, NotFound, NotSupported, Unavailable
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from tests.support.waiting import eventually

CFG = HiveConfig(
    defaults=Defaults(runtime="fake"),
    node=NodeCfg(heartbeat_seconds=0.1, lost_after_seconds=1.0),
)


def node_hive(home: Path, node: str, store: MemoryNodeStore, world: FakeWorld) -> Hive:
    return build_hive(
        HivePaths(home),
        CFG,
        runtime_factory=lambda name: FakeRuntime(world),
        crash_interval=3600,
        node=node,
        node_store=lambda hive: store,
    )


def nodes_of(hive: Hive) -> NodesFeature:
    feature = hive.feature("nodes")
    assert isinstance(feature, NodesFeature)
    return feature


@pytest.fixture
def store() -> MemoryNodeStore:
    return MemoryNodeStore()


@pytest.fixture
def worlds() -> tuple[FakeWorld, FakeWorld]:
    return FakeWorld(), FakeWorld()


@pytest.fixture
async def two(
    short_tmp: Path, store: MemoryNodeStore, worlds: tuple[FakeWorld, FakeWorld]
) -> AsyncIterator[tuple[Hive, Hive]]:
    async with (
        node_hive(short_tmp / "a", "node-a", store, worlds[0]) as a,
        node_hive(short_tmp / "b", "node-b", store, worlds[1]) as b,
    ):
        await eventually(lambda: all(n.peer_url for n in store._nodes.values()), what="peers")
        yield a, b


async def status(hive: Hive) -> dict[str, dict[str, Any]]:
    rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
    return {r["name"]: r for r in rows}


# -- identity ---------------------------------------------------------------------------------


async def test_node_name_from_argument_env_config_then_host(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def name_of(node: str | None, cfg: HiveConfig) -> str:
        async with build_hive(HivePaths(short_tmp / "h"), cfg, node=node) as h:
            return nodes_of(h).node

    plain = HiveConfig(defaults=Defaults(runtime="external"))
    named = HiveConfig(defaults=Defaults(runtime="external"), node=NodeCfg(name="from-toml"))
    monkeypatch.delenv(ENV, raising=False)
    assert await name_of(None, plain) == host_node_name()
    assert await name_of(None, named) == "from-toml"
    monkeypatch.setenv(ENV, "from-env")
    assert await name_of(None, named) == "from-env"
    assert await name_of("from-arg", named) == "from-arg"


async def test_single_node_hive_lists_itself(hive: Hive) -> None:
    host = HostClient(hive.paths.host_sock)
    await host.call("spawn", name="alice")
    answer = await host.call("nodes")
    me = nodes_of(hive).node
    assert answer["node"] == me
    [row] = answer["nodes"]
    assert row["name"] == me and row["live"] and row["this"]
    assert row["agents"] == 2  # the manager and alice
    assert row["mem_free_mb"] > 0 and row["peer_url"].startswith("http://127.0.0.1:")
    assert (await status(hive))["alice"]["node"] == me


# -- placement and forwarding ------------------------------------------------------------------


async def test_spawn_on_another_node_runs_there_only(
    two: tuple[Hive, Hive], worlds: tuple[FakeWorld, FakeWorld]
) -> None:
    a, b = two
    await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
    assert worlds[1].agents["alice"].running
    assert "alice" not in worlds[0].agents
    assert nodes_of(b).owner("alice") == "node-b"
    rows = await status(a)
    assert rows["alice"]["node"] == "node-b" and rows["alice"]["running"] is True
    with pytest.raises(NotFound, match="no node 'node-z'"):
        await HostClient(a.paths.host_sock).call("spawn", name="bob", node="node-z")


async def test_names_are_unique_across_nodes(two: tuple[Hive, Hive]) -> None:
    a, _b = two
    await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
    answer = await HostClient(a.paths.host_sock).request_raw(
        {"cmd": "spawn", "name": "alice", "node": "node-a"}
    )
    assert answer["ok"] is False and answer["code"] == "conflict" and "node-b" in answer["error"]


async def test_lifecycle_verbs_are_forwarded_to_the_owning_node(
    two: tuple[Hive, Hive], worlds: tuple[FakeWorld, FakeWorld]
) -> None:
    a, b = two
    host_a = HostClient(a.paths.host_sock)
    await host_a.call("spawn", name="alice", node="node-b")
    await host_a.call("stop", scope={"agent_names": ["alice", "manager"]}, graceful=True)
    assert not worlds[1].agents["alice"].running
    assert not worlds[0].agents["manager"].running  # the local part of the scope ran here
    await host_a.call("start", scope={"agent_names": ["alice"]})
    assert worlds[1].agents["alice"].running
    pid = worlds[1].agents["alice"].pid
    await host_a.call("restart", name="alice")
    assert worlds[1].agents["alice"].pid != pid
    await host_a.call("set_paused", name="alice", paused=True)
    rec = b.registry.get("alice")
    assert rec is not None and rec.paused
    logs = await host_a.call("logs", name="alice", source="harness", lines=5)
    assert logs["name"] == "alice"
    with pytest.raises(NotSupported, match="runs on node node-b: run `hive shell alice` there"):
        await host_a.call("shell_argv", name="alice")
    await host_a.call("destroy", name="alice")
    assert b.registry.get("alice") is None
    await eventually(lambda: "alice" not in nodes_of(b).placed, what="unplaced")


async def test_manager_tools_for_an_agent_elsewhere_are_forwarded(
    two: tuple[Hive, Hive], worlds: tuple[FakeWorld, FakeWorld]
) -> None:
    a, _ = two
    await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
    pid = worlds[1].agents["alice"].pid
    async with AgentClient(a.paths.agent_sock("manager"), retry=NO_RETRY) as manager:
        await manager.call("restart", name="alice")
        assert worlds[1].agents["alice"].pid != pid
        await manager.call("kill", name="alice")
        assert not worlds[1].agents["alice"].running
        await manager.call("start", name="alice")
        assert worlds[1].agents["alice"].running


async def test_default_placement_picks_the_live_node_with_most_free_memory(
    two: tuple[Hive, Hive],
) -> None:
    a, _ = two
    na = nodes_of(a)
    row = NodeRow("x", 0.0, 0.0)
    # pick reads the last refresh: set it by hand (the heartbeats would overwrite the store)
    na.rows = {
        "node-a": dataclasses.replace(row, name="node-a", mem_free_mb=100, agents=1),
        "node-b": dataclasses.replace(row, name="node-b", mem_free_mb=900, agents=5),
        "node-c": dataclasses.replace(row, name="node-c", mem_free_mb=5000),
    }
    na.lost = {"node-c"}
    assert na.pick() == "node-b"  # node-c has more, but is lost
    na.rows["node-a"] = dataclasses.replace(na.rows["node-a"], mem_free_mb=900)
    assert na.pick() == "node-a"  # a tie: fewer agents wins
    na.lost = set()
    assert na.pick() == "node-c"
    assert na.pick("node-a") == "node-a"


# -- the peer endpoint -------------------------------------------------------------------------


async def test_peer_endpoint_needs_the_hive_secret(two: tuple[Hive, Hive]) -> None:
    _a, b = two
    url = nodes_of(b).peer_url + "/peer/rpc"
    secret = await nodes_of(b).store.secret()
    async with httpx.AsyncClient(trust_env=False) as http:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": secret}):
            r = await http.post(url, json={"cmd": "list"}, headers=headers)
            assert r.status_code == 401
            assert r.json() == {
                "ok": False,
                "error": "peer requests need the hive secret",
                "code": Forbidden.code,
            }
        ok = await http.post(
            url, json={"cmd": "list"}, headers={"authorization": f"Bearer {secret}"}
        )
        assert ok.json() == {"ok": True, "agents": ["manager"]}
        bad = await http.post(
            url, json={"cmd": "nope"}, headers={"authorization": f"Bearer {secret}"}
        )
        assert bad.status_code == 400 and bad.json()["ok"] is False


# -- a node lost, and back ---------------------------------------------------------------------


async def test_a_lost_node_is_seen_and_its_agents_show_node_lost(
    short_tmp: Path, store: MemoryNodeStore, worlds: tuple[FakeWorld, FakeWorld]
) -> None:
    async with node_hive(short_tmp / "a", "node-a", store, worlds[0]) as a:
        async with node_hive(short_tmp / "b", "node-b", store, worlds[1]) as b:
            await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
            assert (await status(a))["alice"]["state"] != "node_lost"
        # node-b stopped beating (as if killed: its row stays); node-a sees it lost
        since = a.hub.last_seq
        await eventually(lambda: "node-b" in nodes_of(a).lost, what="node-b lost")
        kinds = {(e.kind, e.data.get("node")) for e in a.hub.history(since)}
        assert ("node_lost", "node-b") in kinds
        nodes = (await HostClient(a.paths.host_sock).call("nodes"))["nodes"]
        assert {n["name"]: n["live"] for n in nodes} == {"node-a": True, "node-b": False}
        # a's registry does not know alice (separate databases here): its status comes from
        # a's local view only when alice is in it; the placement still answers
        assert nodes_of(a).owner("alice") == "node-b"
        with pytest.raises(Unavailable, match="'node-b' is lost"):
            await HostClient(a.paths.host_sock).call("spawn", name="bob", node="node-b")
        with pytest.raises(Unavailable, match="node node-b is lost"):  # at once, no timeout
            await HostClient(a.paths.host_sock).call("restart", name="alice")
        # node-b comes back: seen live again, and it re-adopts its agent's sandbox
        async with node_hive(short_tmp / "b", "node-b", store, worlds[1]) as b2:
            await eventually(lambda: "node-b" not in nodes_of(a).lost, what="node-b back")
            assert worlds[1].agents["alice"].running
            assert b2.lifecycle.built_rev.get("alice") is not None
        del b


async def test_status_shows_node_lost_for_an_agent_of_a_lost_node(
    short_tmp: Path, store: MemoryNodeStore, worlds: tuple[FakeWorld, FakeWorld]
) -> None:
    async with node_hive(short_tmp / "a", "node-a", store, worlds[0]) as a:
        await a.spawn("alice")
        await eventually(lambda: nodes_of(a).placed.get("alice") == "node-a", what="placed")
        # the agent moves to a node that beat once and then died
        await store.heartbeat(
            dataclasses.replace(store._nodes["node-a"], name="node-gone", heartbeat_at=0.0)
        )
        await store.place("alice", "node-gone")
        row = await eventually(lambda: _row_if_lost(a, "alice"), what="alice shown as node lost")
        assert isinstance(row, dict) and row["node"] == "node-gone"


async def _row_if_lost(hive: Hive, name: str) -> dict[str, Any] | None:
    row = (await status(hive))[name]
    return row if row["state"] == "node_lost" else None

"""Races between this node's own placement/registry changes and what it reads back from the
shared database (core/nodes.py, core/registry.py), made deterministic by stores that hold a
call at a chosen point until the test releases it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hyperhive.assembly import build_hive
from hyperhive.clock import iso
from hyperhive.config import Defaults, HiveConfig, NodeCfg
from hyperhive.core.events import EventHub
from hyperhive.core.nodes import NodesFeature
from hyperhive.core.records import AgentRecord
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.store.memory import MemoryAgentStore
from hyperhive.core.store.nodes import MemoryNodeStore, NodeRow
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from tests.support.waiting import eventually

CFG = HiveConfig(
    defaults=Defaults(runtime="fake"),
    node=NodeCfg(heartbeat_seconds=3600, lost_after_seconds=7200),  # no beat interferes
)


class HeldNodeStore(MemoryNodeStore):
    """Holds `unplace` (before it writes) or `placements` (after it reads) when asked."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_unplace = False
        self.hold_read = False
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def _hold(self) -> None:
        self.held.set()
        await self.release.wait()

    async def unplace(self, agent: str) -> None:
        if self.hold_unplace:
            self.hold_unplace = False
            await self._hold()
        await super().unplace(agent)

    async def placements(self) -> dict[str, str]:
        snapshot = await super().placements()
        if self.hold_read:
            self.hold_read = False
            await self._hold()
        return snapshot


def nodes_of(hive: object) -> NodesFeature:
    feature = hive.feature("nodes")  # type: ignore[attr-defined]
    assert isinstance(feature, NodesFeature)
    return feature


def one_node(home: Path, store: HeldNodeStore):  # type: ignore[no-untyped-def]
    world = FakeWorld()
    return build_hive(
        HivePaths(home),
        CFG,
        runtime_factory=lambda name: FakeRuntime(world),
        crash_interval=3600,
        node="node-a",
        node_store=lambda hive: store,
    )


async def test_a_spawn_right_after_a_destroy_waits_for_its_unplace(short_tmp: Path) -> None:
    """Seen on PostgreSQL under load: destroy, then spawn the name again → "already exists
    (on node ...)": the destroy's unplace (deferred) had not run when the spawn placed it."""
    store = HeldNodeStore()
    async with one_node(short_tmp / "a", store) as hive:
        nodes = nodes_of(hive)
        await hive.spawn("alice")
        await eventually(lambda: nodes.placed.get("alice") == "node-a", what="placed")
        store.hold_unplace = True
        await hive.registry.remove("alice")  # the feature unplaces it in a task of its own
        place = asyncio.create_task(nodes.place_new("alice", "node-a"))
        await store.held.wait()  # that unplace is in flight
        store.release.set()
        await place  # before the fix: Conflict, the unplace had not written yet
        assert (await store.placements())["alice"] == "node-a"
        assert nodes.placed["alice"] == "node-a"


async def test_a_refresh_read_before_a_local_unplace_does_not_undo_it(short_tmp: Path) -> None:
    store = HeldNodeStore()
    async with one_node(short_tmp / "a", store) as hive:
        nodes = nodes_of(hive)
        await hive.spawn("alice")
        await eventually(lambda: nodes.placed.get("alice") == "node-a", what="placed")
        store.hold_read = True
        refresh = asyncio.create_task(nodes.refresh())
        await store.held.wait()  # its snapshot still has alice
        await nodes.unplace("alice")
        store.release.set()
        await refresh
        assert "alice" not in nodes.placed  # before the fix: the old snapshot put it back
        await nodes.refresh()
        assert "alice" not in nodes.placed


class HeldAgentStore(MemoryAgentStore):
    """Holds `delete_agent` after the row is gone (committed, the writer not yet resumed)."""

    def __init__(self) -> None:
        super().__init__()
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def delete_agent(self, name: str) -> None:
        await super().delete_agent(name)
        self.held.set()
        await self.release.wait()


async def test_a_sync_during_a_local_remove_leaves_it_to_the_remover() -> None:
    """Seen on PostgreSQL under load: a `KeyError` from `remove` — a sync read the table
    after the delete committed and removed the name before `remove` resumed."""
    store = HeldAgentStore()
    hub = EventHub()
    registry = AgentRegistry(store, hub)
    await registry.register("alice")
    remove = asyncio.create_task(registry.remove("alice"))
    await store.held.wait()
    assert await registry.sync() == []  # alice is being written here: not the sync's
    store.release.set()
    await remove  # before the fix: KeyError
    assert registry.get("alice") is None
    removed = [e for e in hub.history() if e.kind == "agent_removed"]
    assert len(removed) == 1


async def test_an_agent_another_node_placed_shows_its_node_right_after_a_refresh(
    short_tmp: Path,
) -> None:
    """Seen once in five fresh-clone runs under load (test_nodes_netns): A forwarded a spawn
    to B, refreshed, and its status still said A. The refresh's registry sync saw the new
    agent and claimed a turn to adopt its placement; the same refresh then dropped the
    store's placement of that name ("changed here meanwhile"), so until the adopting task
    ran `owner()` fell back to A. The memory store never suspends, so that task cannot run
    before `refresh()` returns: the owner must come from the refresh's own read."""
    store = HeldNodeStore()
    async with one_node(short_tmp / "a", store) as hive:
        nodes = nodes_of(hive)
        nodes.shared = True  # the agents table is written by another node too
        await store.heartbeat(
            NodeRow(
                name="node-b",
                heartbeat_at=time.time(),
                started_at=time.time(),
                load=0.0,
                mem_free_mb=1024,
                agents=1,
                peer_url="",
                dashboard_url="",
            )
        )
        # node B registers alice in the shared table and places her on itself
        await store.place("alice", "node-b", expect_free=True)
        await hive.registry._store.put_agent(  # as another node writes it
            AgentRecord(name="alice", kind="agent", created_at=iso(time.time()), generation=1)
        )
        await nodes.refresh()
        assert nodes.owner("alice") == "node-b"  # before the fix: node-a until the task ran
        assert not nodes.owns("alice")
        await eventually(lambda: "alice" not in nodes._chain, what="adoption done")
        assert nodes.owner("alice") == "node-b"
        assert (await store.placements())["alice"] == "node-b"

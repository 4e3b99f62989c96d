"""`AgentRegistry.sync`: a node's registry follows the agents table other nodes write."""

from __future__ import annotations

from hyperhive.core.events import EventHub
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.store.memory import MemoryAgentStore


async def test_sync_follows_another_registry_on_the_same_table() -> None:
    store = MemoryAgentStore()
    here, there = AgentRegistry(store, EventHub()), AgentRegistry(store, EventHub())
    hub = here._hub
    seen: list[str] = []
    here.on_change(seen.append)
    await there.register("alice", runtime="fake")
    since = hub.last_seq
    assert await here.sync() == ["alice"]
    assert here.get("alice") == there.get("alice")
    await there.update("alice", paused=True)
    assert await here.sync() == ["alice"]
    rec = here.get("alice")
    assert rec is not None and rec.paused
    await there.remove("alice")
    assert await here.sync() == ["alice"]
    assert here.get("alice") is None
    assert await here.sync() == []
    kinds = [(e.kind, e.data.get("paused")) for e in hub.history(since)]
    assert kinds == [
        ("agent_registered", None),
        ("agent_updated", True),
        ("agent_removed", None),
    ]
    assert seen == ["alice", "alice", "alice"]

"""A node lost with leases: delivery is written only on ack (`mark_delivered` runs from
`ack`, never from `recv`), so the messages a dead node's agent had leased but not acknowledged
are unread for whoever reads the database next; what it acknowledged stays delivered. Two
brokers over one storage stand for two nodes (the first one is abandoned, as kill -9 would)."""

from __future__ import annotations

from pathlib import Path

from hyperhive.clock import Clock
from hyperhive.core.broker import Broker
from hyperhive.core.events import EventHub
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.store.backend import SqliteStorage


async def test_leased_unacknowledged_messages_are_unread_after_the_node_dies(
    short_tmp: Path,
) -> None:
    async with SqliteStorage(short_tmp / "hive.db") as storage:
        hub = EventHub()
        registry = AgentRegistry(storage.agents, hub)
        await registry.load()
        await registry.register("alice", runtime="fake")
        dying = Broker(storage.messages, registry, hub, Clock())
        for i in range(5):
            await dying.send("operator", "alice", f"m{i}")
        acked = await dying.recv("alice", None, 2)
        await dying.ack(acked)
        await dying.drain()
        leased = await dying.recv("alice", None, 2)
        assert [m.body for m in leased.messages] == ["m2", "m3"]
        # the node dies here: its lease is never settled (no ack, no release)

        other = Broker(storage.messages, registry, EventHub(), Clock())
        assert await other.unread("alice") == 3
        lease = await other.recv("alice", None, 10)
        assert [m.body for m in lease.messages] == ["m2", "m3", "m4"]
        await other.ack(lease)
        await other.drain()
        assert await storage.messages.count_undelivered("alice") == 0
        delivered = await storage.messages.recent("alice", 10)
        assert sorted(m.body for m in delivered) == ["m0", "m1", "m2", "m3", "m4"]

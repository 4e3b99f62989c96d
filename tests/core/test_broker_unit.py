"""The broker and the agent registry over the in-memory stores: their logic without sockets
or a database (the socket-level behaviour is `test_broker.py`; the stores' own contract is
`tests/core/store/`). A fake also makes a store that fails on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest

from hyperhive.core import broker as broker_mod
from hyperhive.core.broker import Broker
from hyperhive.core.events import EventHub
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.store.memory import MemoryAgentStore, MemoryMessageStore
from hyperhive.errors import BadRequest, Conflict, NotFound


class FlakyMessageStore(MemoryMessageStore):
    """Fails the next `fail_marks` mark_delivered calls."""

    def __init__(self, agents: MemoryAgentStore | None = None) -> None:
        super().__init__(agents)
        self.fail_marks = 0

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        if self.fail_marks:
            self.fail_marks -= 1
            raise OSError("disk gone")
        await super().mark_delivered(ids, at)


async def make(
    store: type[MemoryMessageStore] = MemoryMessageStore,
) -> tuple[Broker, AgentRegistry, EventHub]:
    """A broker and registry over one in-memory backend (the message store reads recipients'
    generations from the same agent store, as the sqlite stores share one database)."""
    hub = EventHub()
    agents = MemoryAgentStore()
    registry = AgentRegistry(agents, hub)
    await registry.load()
    await registry.register("manager", "manager")
    await registry.register("alice")
    await registry.register("bob")
    return Broker(store(agents), registry, hub), registry, hub


async def test_send_then_recv_and_ack_delivers_once() -> None:
    broker, _, hub = await make()
    await broker.send("alice", "bob", "hello")
    lease = await broker.recv("bob", None, 10)
    assert [m.body for m in lease.messages] == ["hello"]
    assert (await broker.recv("bob", None, 10)).messages == []  # leased: not handed out twice
    await broker.ack(lease)
    assert await broker.unread("bob") == 0
    kinds = [e.kind for e in hub.history()]
    assert kinds.count("message_sent") == 1 and kinds.count("message_delivered") == 1


async def test_a_parked_recv_wakes_on_send() -> None:
    broker, _, _ = await make()
    parked = asyncio.ensure_future(broker.recv("bob", 60, 10))
    await asyncio.sleep(0)  # it parks: nothing unread yet
    assert not parked.done()
    await broker.send("alice", "bob", "wake up")
    lease = await asyncio.wait_for(parked, 10)
    assert [m.body for m in lease.messages] == ["wake up"]


async def test_a_released_lease_is_unread_again_in_order() -> None:
    broker, _, _ = await make()
    for body in ("1", "2", "3"):
        await broker.send("alice", "bob", body)
    first = await broker.recv("bob", None, 2)
    broker.release(first)
    again = await broker.recv("bob", None, 10)
    assert [m.body for m in again.messages] == ["1", "2", "3"]


async def test_a_failed_ack_puts_the_messages_back() -> None:
    broker, _, _ = await make(FlakyMessageStore)
    store = broker.store
    assert isinstance(store, FlakyMessageStore)
    await broker.send("alice", "bob", "important")
    lease = await broker.recv("bob", None, 10)
    store.fail_marks = 1
    await broker.ack(lease)
    assert await broker.unread("bob") == 1
    retry = await broker.recv("bob", None, 10)
    assert [m.body for m in retry.messages] == ["important"]
    await broker.ack(retry)
    assert await broker.unread("bob") == 0


async def test_a_paused_recipient_gets_nothing_until_unpaused() -> None:
    broker, registry, _ = await make()
    await registry.update("bob", paused=True)
    await broker.send("alice", "bob", "queued")
    assert (await broker.recv("bob", None, 10)).messages == []
    parked = asyncio.ensure_future(broker.recv("bob", 60, 10))
    await asyncio.sleep(0)
    assert not parked.done()
    await registry.update("bob", paused=False)  # the registry's change wakes the parked recv
    assert [m.body for m in (await asyncio.wait_for(parked, 10)).messages] == ["queued"]


async def test_a_backlog_over_the_index_cap_is_read_from_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broker_mod, "INDEX_MAX_MESSAGES", 4)
    broker, _, _ = await make()
    for i in range(10):
        await broker.send("alice", "bob", str(i))
    got: list[str] = []
    while len(got) < 10:
        lease = await broker.recv("bob", None, 3)
        assert lease.messages, "a backlog row was lost"
        got += [m.body for m in lease.messages]
        await broker.ack(lease)
    assert got == [str(i) for i in range(10)]
    assert await broker.unread("bob") == 0


async def test_send_refuses_an_empty_body_unknown_recipient_and_system() -> None:
    broker, _, _ = await make()
    with pytest.raises(BadRequest):
        await broker.send("alice", "bob", "")
    with pytest.raises(NotFound):
        await broker.send("alice", "nobody", "hi")
    with pytest.raises(BadRequest):
        await broker.send("alice", "system", "hi")
    sent = await broker.send("alice", "*", "all")
    assert sorted(m.recipient for m in sent) == ["bob", "manager"]


async def test_the_registry_persists_through_its_store() -> None:
    store = MemoryAgentStore()
    hub = EventHub()
    first = AgentRegistry(store, hub)
    await first.load()
    await first.register("manager", "manager")
    await first.register("alice", model="m")
    with pytest.raises(Conflict):
        await first.register("alice")
    with pytest.raises(Conflict):
        await first.register("boss", "manager")
    await first.update("alice", status_text="busy")
    await first.remove("manager")
    second = AgentRegistry(store, hub)  # a restarted daemon reads the same store
    await second.load()
    assert second.names() == ["alice"]
    rec = second.require("alice")
    assert (rec.model, rec.status_text) == ("m", "busy")

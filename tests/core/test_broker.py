"""Broker semantics through real sockets: send/recv/broadcast/operator inbox, wake-up, leases."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.core.hive import Hive
from hyperhive.errors import NotFound
from tests.support.waiting import eventually


async def test_send_recv_roundtrip(hive: Hive) -> None:
    await hive.spawn("alice")
    async with (
        AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice,
        AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr,
    ):
        sent = await alice.call("send", to="manager", body="hello")
        assert sent["recipients"] == ["manager"]
        got = await mgr.call("recv")
        assert [m["body"] for m in got["messages"]] == ["hello"]
        assert got["messages"][0]["from"] == "alice"  # identity = socket
        assert got["remaining"] == 0
        again = await mgr.call("recv")
        assert again["messages"] == []  # delivered once
        recent = await mgr.call("recent", limit=5)
        assert recent["rows"][0]["delivered_at"] is not None


async def test_sender_cannot_be_spoofed(hive: Hive) -> None:
    await hive.spawn("alice")
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        answer = await alice.request_answer(
            {"cmd": "send", "to": "manager", "body": "x", "from": "bob"}
        )
    assert answer.body["ok"] is False and "from" in answer.body["error"]


async def test_broadcast_reaches_everyone_but_sender(hive: Hive) -> None:
    for n in ("alice", "bob", "carol"):
        await hive.spawn(n)
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        sent = await alice.call("send", to="*", body="all hands")
    assert sorted(sent["recipients"]) == ["bob", "carol", "manager"]
    for n in ("bob", "carol", "manager"):
        async with AgentClient(hive.paths.agent_sock(n), retry=NO_RETRY) as c:
            got = await c.call("recv")
            assert [m["body"] for m in got["messages"]] == ["all hands"]
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        assert (await alice.call("recv"))["messages"] == []


async def test_operator_inbox_and_operator_send(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    await host.call("send", to="alice", body="from the human")
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        got = await alice.call("recv")
        assert got["messages"][0]["from"] == "operator"
        await alice.call("send", to="operator", body="hi human")
    inbox = await host.call("inbox")
    assert inbox["unread"] == 1 and inbox["rows"][0]["body"] == "hi human"
    await host.call("inbox", mark_read=True)
    assert (await host.call("inbox"))["unread"] == 0


async def test_unknown_recipient(hive: Hive) -> None:
    async with AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        with pytest.raises(NotFound, match="ghost"):
            await mgr.call("send", to="ghost", body="boo")


async def test_peek_returns_at_once_and_park_waits(hive: Hive) -> None:
    async with AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        # wait omitted = peek: it answers without parking (a parked recv with nothing to
        # deliver would outlast this guard, which is a hang guard, not a speed assertion)
        got = await asyncio.wait_for(mgr.call("recv"), 30)
        assert got["messages"] == []
        t0 = time.monotonic()
        got = await mgr.call("recv", wait_seconds=0.2)
        assert got["messages"] == []
        assert time.monotonic() - t0 >= 0.2  # it parked for its wait: a lower bound, never flaky


async def test_parked_recv_wakes_on_send_without_polling(hive: Hive) -> None:
    """The parked recv is woken by the send itself: the broker registers a waiter, the store
    is read once (loading the unread index before parking) and the woken recv takes the
    message from the index: no reads in a loop."""
    await hive.spawn("alice")
    reads = 0
    original = hive.broker.store.undelivered

    async def counting(*a: object, **k: object) -> object:
        nonlocal reads
        reads += 1
        return await original(*a, **k)  # type: ignore[arg-type]

    hive.broker.store.undelivered = counting  # type: ignore[method-assign]
    async with (
        AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr,
        AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice,
    ):
        parked = asyncio.create_task(mgr.call("recv", wait_seconds=60))
        await eventually(lambda: hive.broker.wakeups._waiters.get("manager"), what="parked recv")
        await alice.call("send", to="manager", body="wake up")
        got = await asyncio.wait_for(parked, 5)
    assert [m["body"] for m in got["messages"]] == ["wake up"]
    assert reads == 1


async def test_remaining_counts_unread(hive: Hive) -> None:
    host = HostClient(hive.paths.host_sock)
    for i in range(5):
        await host.call("send", to="manager", body=f"m{i}")
    async with AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        got = await mgr.call("recv", max=2)
        assert [m["body"] for m in got["messages"]] == ["m0", "m1"]
        assert got["remaining"] == 3
        whoami = await mgr.call("whoami")
        assert whoami["unread"] == 3


async def test_connection_killed_during_recv_redelivers(hive: Hive) -> None:
    """A recv whose connection dies loses nothing: the message is delivered again."""
    sock_path = str(hive.paths.agent_sock("manager"))
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(sock_path)
    raw.sendall(b'{"cmd":"recv","wait_seconds":60}\n')
    await eventually(lambda: hive.broker.wakeups._waiters.get("manager"), what="parked recv")
    raw.close()  # the client vanishes while parked
    host = HostClient(hive.paths.host_sock)
    await host.call("send", to="manager", body="precious")
    async with AgentClient(sock_path, retry=NO_RETRY) as mgr:
        got = await mgr.call("recv", wait_seconds=5)
    assert [m["body"] for m in got["messages"]] == ["precious"]


async def test_unwritten_reply_releases_lease(hive: Hive) -> None:
    """If the reply cannot be written, the leased messages go back unread."""
    host = HostClient(hive.paths.host_sock)
    await host.call("send", to="manager", body="again")
    lease = await hive.broker.recv("manager", 0, 8)
    assert lease.ids
    hive.broker.release(lease)
    lease2 = await hive.broker.recv("manager", 0, 8)
    assert lease2.ids == lease.ids
    await hive.broker.ack(lease2)
    assert (await hive.broker.recv("manager", 0, 8)).ids == []


async def test_paused_agent_queues(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    await host.call("set_paused", name="alice", paused=True)
    await host.call("set_paused", name="alice", paused=True)  # idempotent
    await host.call("send", to="alice", body="queued")
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        assert (await alice.call("recv"))["messages"] == []
        parked = asyncio.create_task(alice.call("recv", wait_seconds=30))
        await eventually(lambda: hive.broker.wakeups._waiters.get("alice"), what="parked recv")
        await host.call("set_paused", name="alice", paused=False)
        got = await asyncio.wait_for(parked, 5)
    assert [m["body"] for m in got["messages"]] == ["queued"]


async def test_retention_keeps_undelivered(hive: Hive) -> None:
    host = HostClient(hive.paths.host_sock)
    await host.call("send", to="manager", body="old delivered")
    await host.call("send", to="manager", body="old undelivered")
    lease = await hive.broker.recv("manager", 0, 1)
    await hive.broker.ack(lease)
    # 0-day retention: every delivered row is "old"
    hive.broker.clock = type(hive.broker.clock)()
    deleted = await hive.broker.sweep(keep_days=-1)
    assert deleted == 1
    rows = await hive.broker.recent("manager", 10)
    assert [r.body for r in rows] == ["old undelivered"]


async def test_dashboard_events_have_monotonic_seq(hive: Hive) -> None:
    since = hive.hub.last_seq
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    await host.call("send", to="alice", body="x")
    evs = hive.hub.history(since)
    kinds = [e.kind for e in evs]
    assert "agent_registered" in kinds and "message_sent" in kinds
    seqs = [e.seq for e in evs]
    assert seqs == list(range(since + 1, since + 1 + len(seqs)))
    sent = next(e for e in evs if e.kind == "message_sent")
    assert sent.data["to"] == "alice" and json.dumps(sent.to_json())

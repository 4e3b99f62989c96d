"""recv leases through real sockets: a batch is delivered only once the client acknowledges it
(`ack`, or its next `recv` on the same connection); closing, dying or `release` re-queues it;
a silent connection's lease times out."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest

from hyperhive.assembly import build_hive
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, Delivery, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually


async def _send(hive: Hive, *bodies: str, to: str = "manager") -> list[int]:
    host = HostClient(hive.paths.host_sock)
    ids: list[int] = []
    for b in bodies:
        ids.extend((await host.call("send", to=to, body=b))["ids"])
    return ids


def _raw_recv(
    path: str, request: bytes = b'{"cmd":"recv","max":8}\n'
) -> tuple[socket.socket, dict[str, object]]:
    """A bare client: write recv, read the whole reply line, keep the socket open."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(request)
    answer = json.loads(s.makefile("rb").readline())
    return s, answer


async def _delivered(hive: Hive, ids: list[int]) -> bool:
    rows = await hive.broker.recent("manager", 100)
    return all(r.delivered_at is not None for r in rows if r.id in ids)


async def test_reply_read_but_not_acked_comes_back_when_connection_closes(hive: Hive) -> None:
    """The bug: the reply reached the client's socket buffer, the client died before using it
    — the messages were already marked delivered and lost."""
    ids = await _send(hive, "one", "two")
    path = str(hive.paths.agent_sock("manager"))
    s, answer = await asyncio.to_thread(_raw_recv, path)
    assert [m["id"] for m in answer["messages"]] == ids  # type: ignore[index]
    s.close()  # gone without acknowledging
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        got = await mgr.call("recv", wait_seconds=5)
        assert [m["id"] for m in got["messages"]] == ids
        assert await mgr.ack() == ids
    await eventually(lambda: _delivered(hive, ids), what="delivered after ack")


async def test_ack_marks_delivered_and_nothing_comes_back(hive: Hive) -> None:
    ids = await _send(hive, "a", "b", "c")
    path = str(hive.paths.agent_sock("manager"))
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        got = await mgr.recv(max=8)
        assert [m["id"] for m in got["messages"]] == ids
        assert got["lease_seconds"] > 0
        assert await mgr.ack([ids[0], 999_999]) == [ids[0]]  # only what this connection holds
        assert await mgr.ack() == ids[1:]
        assert await mgr.ack() == []  # idempotent
    await eventually(lambda: _delivered(hive, ids), what="delivered")
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        assert (await mgr.recv())["messages"] == []


async def test_next_recv_acknowledges_the_previous_batch(hive: Hive) -> None:
    ids = await _send(hive, "x", "y")
    path = str(hive.paths.agent_sock("manager"))
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        first = await mgr.call("recv", max=1)  # a client that never sends ack
        assert [m["id"] for m in first["messages"]] == ids[:1]
        second = await mgr.call("recv", max=1)
        assert [m["id"] for m in second["messages"]] == ids[1:]
    # the connection closed holding the second batch: only the first was delivered
    await eventually(lambda: _delivered(hive, ids[:1]), what="first batch delivered")
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        again = await mgr.recv()
        assert [m["id"] for m in again["messages"]] == ids[1:]


async def test_release_re_offers_at_once(hive: Hive) -> None:
    ids = await _send(hive, "p", "q")
    path = str(hive.paths.agent_sock("manager"))
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        await mgr.recv()
        assert await mgr.release([ids[1]]) == [ids[1]]
        assert await mgr.ack() == [ids[0]]
        again = await mgr.recv()
        assert [m["id"] for m in again["messages"]] == [ids[1]]
        assert await mgr.release() == [ids[1]]
        assert [m["id"] for m in (await mgr.recv())["messages"]] == [ids[1]]


async def test_lease_count_is_visible_on_the_connection(hive: Hive) -> None:
    """An idle-timeout must not close a connection that holds a lease: the server tells."""
    await _send(hive, "held")
    server = hive._sockets["manager"]
    path = str(hive.paths.agent_sock("manager"))
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        await mgr.recv()
        assert server.leases_held() == 1
        await mgr.ack()
        assert server.leases_held() == 0


async def test_parked_recv_vanishing_leases_nothing(hive: Hive) -> None:
    path = str(hive.paths.agent_sock("manager"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b'{"cmd":"recv","wait_seconds":60}\n')
    await eventually(lambda: hive.broker.wakeups._waiters.get("manager"), what="parked recv")
    s.close()
    ids = await _send(hive, "later")
    async with AgentClient(path, retry=NO_RETRY) as mgr:
        assert [m["id"] for m in (await mgr.recv(wait_seconds=5))["messages"]] == ids


# -- lease timeout --------------------------------------------------------------------------


@pytest.fixture
async def quick_hive(paths: HivePaths) -> AsyncIterator[Hive]:
    cfg = HiveConfig(defaults=Defaults(runtime="external"), delivery=Delivery(lease_seconds=0.3))
    async with build_hive(paths, cfg) as h:
        yield h


async def test_silent_connection_lease_times_out(quick_hive: Hive) -> None:
    hive = quick_hive
    ids = await _send(hive, "stuck")
    path = str(hive.paths.agent_sock("manager"))
    s, answer = await asyncio.to_thread(_raw_recv, path)  # then silent, socket open
    try:
        assert answer["lease_seconds"] == 0.3
        async with AgentClient(path, retry=NO_RETRY) as other:

            async def back() -> list[object]:
                return list((await other.recv())["messages"])

            got = await eventually(back, 10, "the timed-out lease re-queued")
            assert [m["id"] for m in got] == ids  # type: ignore[index]
            assert await other.ack() == ids
        # the stuck client's late ack finds nothing: it no longer holds the lease
        s.sendall(b'{"cmd":"ack"}\n')
        late = json.loads(await asyncio.to_thread(s.makefile("rb").readline))
        assert late == {"ok": True, "ids": []}
    finally:
        s.close()


async def test_answers_match_their_wire_models(hive: Hive) -> None:
    from hyperhive.wire.agent import LeaseIdsOk, RecvOk, RenewOk

    await _send(hive, "shape")
    async with AgentClient(str(hive.paths.agent_sock("manager")), retry=NO_RETRY) as mgr:
        got = await mgr.recv()
        assert RecvOk.model_validate(got).lease_seconds == 600
        assert RenewOk.model_validate(await mgr.renew()).held == 1
        assert LeaseIdsOk.model_validate(await mgr.call("release")).ids
        again = await mgr.recv()  # the released message, offered again
        assert RecvOk.model_validate(again).lease_seconds == 600
        assert LeaseIdsOk.model_validate(await mgr.call("ack")).ids
        none = await mgr.recv()
        assert "lease_seconds" not in none and RecvOk.model_validate(none).messages == []


async def test_a_connection_holding_a_lease_is_not_idle(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    """The socket idle timeout closes silent connections, but not one holding a lease (its
    silence is judged by the lease timeout): a harness in a long turn keeps its message."""
    from tests.support.sockets import ask, closed, hive_with, with_sockets

    cfg = with_sockets(hive_config, idle_timeout_seconds=0.3)
    async with hive_with(paths, cfg) as hive:
        sock = str(paths.agent_sock("alice"))
        await hive.broker.send("operator", "alice", "in hand")
        holder = await asyncio.open_unix_connection(sock)
        got = await ask(holder, {"cmd": "recv"})
        [mid] = [m["id"] for m in got["messages"]]  # type: ignore[union-attr]
        idle = await asyncio.open_unix_connection(sock)  # silent from a later moment on
        assert (await ask(idle, {"cmd": "whoami"}))["ok"] is True
        assert await closed(idle[0])  # the idle timeout has passed for both
        assert (await ask(holder, {"cmd": "ack"}))["ids"] == [mid]
        holder[1].close()
        idle[1].close()

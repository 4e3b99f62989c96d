"""What one agent may hold of the daemon (`core/servers.py`, `[sockets]` in hive.toml): a cap
on its open connections, idle connections closed (parked ones never), and a listen backlog
that takes a burst of connects without EAGAIN (issue #12: 2,000 idle connections from one
agent used up the daemon's descriptors; 2,000 concurrent connects got ~800 EAGAIN)."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from pathlib import Path

import pytest

from hyperhive.config import HiveConfig, Sockets
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from tests.support.sockets import ask, closed, hive_with, with_sockets
from tests.support.waiting import eventually


async def test_one_agent_cannot_hold_more_than_its_connection_cap(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    async with hive_with(paths, with_sockets(hive_config, max_connections_per_agent=4)) as hive:
        sock = str(paths.agent_sock("alice"))
        held = [await asyncio.open_unix_connection(sock) for _ in range(4)]
        for conn in held:
            assert (await ask(conn, {"cmd": "whoami"}))["ok"] is True
        extra = await asyncio.open_unix_connection(sock)
        refused = await ask(extra, {"cmd": "whoami"})
        assert refused["ok"] is False and refused["code"] == "unavailable"
        assert "4 connections" in str(refused["error"])
        assert await closed(extra[0])
        assert hive.connections("alice") == 4
        # another agent is not affected, and a freed slot is usable again
        manager = await asyncio.open_unix_connection(str(paths.agent_sock("manager")))
        assert (await ask(manager, {"cmd": "whoami"}))["ok"] is True
        held[0][1].close()
        await eventually(lambda: hive.connections("alice") == 3, what="the slot to free")
        again = await asyncio.open_unix_connection(sock)
        assert (await ask(again, {"cmd": "whoami"}))["name"] == "alice"
        for _, w in [*held[1:], extra, manager, again]:
            w.close()


async def test_idle_connections_are_closed_but_parked_ones_are_not(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    async with hive_with(paths, with_sockets(hive_config, idle_timeout_seconds=0.3)) as hive:
        sock = str(paths.agent_sock("alice"))
        parked = await asyncio.open_unix_connection(sock)
        parked[1].write(b'{"cmd": "recv", "wait_seconds": 60}\n')
        await parked[1].drain()
        idle = await asyncio.open_unix_connection(sock)
        assert (await ask(idle, {"cmd": "whoami"}))["ok"] is True
        # the idle one is closed by the daemon (EOF, no stray line) ...
        assert await asyncio.wait_for(idle[0].read(), 30) == b""
        # ... while the parked recv, older than the idle one, still gets its mail
        await hive.broker.send("operator", "alice", "still there?")
        answer = json.loads(await asyncio.wait_for(parked[0].readline(), 10))
        assert [m["body"] for m in answer["messages"]] == ["still there?"]
        for _, writer in (parked, idle):  # closed and waited for: no ResourceWarning
            writer.close()
            await writer.wait_closed()


async def test_a_burst_of_connects_fits_the_listen_backlog(hive: Hive, short_tmp: Path) -> None:
    """300 connects while the daemon's loop cannot accept (this thread makes them without
    yielding): each one must land in the backlog (the old backlog of 100 refused ~200)."""
    socks: list[socket.socket] = []
    refused = 0
    try:
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            try:
                s.connect(str(hive.paths.host_sock))
            except BlockingIOError:
                refused += 1
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    raise
                refused += 1
    finally:
        for s in socks:
            s.close()
    assert refused == 0


def test_limits_are_config_values_with_defaults() -> None:
    limits = HiveConfig().sockets
    assert limits.max_connections_per_agent >= 16
    assert limits.idle_timeout_seconds >= 60
    assert limits.backlog >= 1024
    with pytest.raises(ValueError):
        Sockets(max_connections_per_agent=0)


async def test_a_client_whose_idle_connection_was_closed_reconnects_at_once(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    from hyperhive.client.agent import AgentClient

    async with hive_with(paths, with_sockets(hive_config, idle_timeout_seconds=0.3)) as hive:
        async with AgentClient(paths.agent_sock("alice")) as client:
            assert (await client.request_answer({"cmd": "whoami"})).retries == 0
            await eventually(lambda: hive.connections("alice") == 0, what="the idle close")
            again = await client.request_answer({"cmd": "whoami"})
            assert again.body["name"] == "alice" and again.retries == 0  # no 2 s backoff

"""The retrying client survives a daemon restart and reports how many retries it took."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hyperhive.client.agent import AgentClient, RetryPolicy, retry_note
from hyperhive.errors import Unavailable
from tests.support.daemon import DaemonProcess


async def test_client_survives_daemon_restart(short_tmp: Path) -> None:
    daemon = DaemonProcess(short_tmp / "h").start()
    try:
        # retries every 0.2 s until the daemon is back, however long its start takes under load
        # (a 6 s budget, the real schedule scaled by 0.1, gave up while it was still starting);
        # the budget is a hang guard
        patient = RetryPolicy((0.2,) * 600, 120.0)
        async with AgentClient(daemon.paths.agent_sock("manager"), retry=patient) as c:
            assert (await c.call("whoami"))["name"] == "manager"
            daemon.stop()
            restart = asyncio.get_running_loop().run_in_executor(None, daemon.start)
            answer = await c.request_answer({"cmd": "whoami"})
            await restart
        assert answer.body["ok"] is True
        assert answer.retries >= 1
        assert "unreachable" in retry_note(answer) and "went through" in retry_note(answer)
    finally:
        daemon.stop()


async def test_client_gives_up_after_its_retries(short_tmp: Path) -> None:
    # a budget far beyond the delays: the delays run out first, whatever the machine's load
    c = AgentClient(short_tmp / "nothing.sock", retry=RetryPolicy((0.01, 0.02), 60.0))
    with pytest.raises(Unavailable, match="after 2 retries"):
        await c.call("whoami")


async def test_client_gives_up_when_the_next_delay_would_exceed_the_budget(
    short_tmp: Path,
) -> None:
    # (a budget of 0.05 s with 0.01 s delays counted the attempts' own time: under load the
    # number of retries varied)
    c = AgentClient(short_tmp / "nothing.sock", retry=RetryPolicy((5.0, 5.0), 1.0))
    with pytest.raises(Unavailable, match="after 0 retries"):
        await c.call("whoami")


def test_default_schedule_is_2_4_8_16_30() -> None:
    p = RetryPolicy()
    assert p.delays == (2.0, 4.0, 8.0, 16.0, 30.0) and p.budget == 60.0


class ParkThenDrop:
    """A stand-in core: its first `drops` connections read a request, hold it `park` seconds
    (a parked `recv`) and close (the core restarting); later ones answer."""

    def __init__(self, path: Path, drops: int, park: float) -> None:
        self.path, self.drops, self.park = path, drops, park
        self.connections = 0

    async def on_conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await r.readline()
            if self.connections <= self.drops:
                await asyncio.sleep(self.park)  # the scripted park, not a wait for something
                return
            w.write(b'{"ok": true, "messages": []}\n')
            await w.drain()
            await r.readline()
        finally:
            w.close()


@pytest.mark.parametrize("outages", [1, 2])
async def test_parked_time_is_not_counted_as_outage(short_tmp: Path, outages: int) -> None:
    """A recv parked longer than the whole retry budget, then cut by a core restart (once, or
    twice within one call), goes through: the budget is spent on the outage, not the park, and
    the note reports the outage."""
    core = ParkThenDrop(short_tmp / "c.sock", drops=outages, park=0.8)
    server = await asyncio.start_unix_server(core.on_conn, path=str(core.path))
    try:
        policy = RetryPolicy((0.05, 0.1, 0.2), 0.5)
        async with AgentClient(core.path, retry=policy) as c:
            answer = await c.request_answer({"cmd": "recv", "wait_seconds": 180})
    finally:
        server.close()
    assert answer.body["ok"] is True
    assert answer.retries == outages and core.connections == outages + 1
    assert answer.waited < core.park  # the outages, without the parks


async def test_a_kept_connection_closed_as_the_request_went_out_is_replaced_at_once(
    short_tmp: Path,
) -> None:
    """The core's idle close can race the next request: the request reaches a connection the
    core is closing, and the EOF comes back instead of an answer. The client sends it again at
    once on a new connection — no retry counted, no backoff (the core never read it)."""
    sock = short_tmp / "core.sock"
    connections = 0

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await r.readline()
        w.write(b'{"ok": true, "name": "alice"}\n')
        await w.drain()
        await r.readline()  # the next request finds the connection closing: no answer
        w.close()

    server = await asyncio.start_unix_server(serve, path=str(sock))
    try:
        async with AgentClient(sock, retry=RetryPolicy((5.0,), 60.0)) as c:
            assert (await c.request_answer({"cmd": "whoami"})).retries == 0
            again = await c.request_answer({"cmd": "whoami"})
        assert again.body["name"] == "alice"
        assert (again.retries, again.waited) == (0, 0.0) and connections == 2
    finally:
        server.close()
        await server.wait_closed()

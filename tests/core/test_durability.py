"""Crash safety with a real daemon process: kill -9 during a burst loses no acknowledged send;
a second daemon on the same home is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.errors import HiveError
from tests.support.daemon import DaemonProcess
from tests.support.waiting import eventually


async def test_kill9_during_burst_loses_no_acknowledged_message(short_tmp: Path) -> None:
    daemon = DaemonProcess(short_tmp / "h").start()
    acked: list[int] = []
    bodies: dict[int, str] = {}
    try:

        async def burst() -> None:
            async with AgentClient(daemon.paths.agent_sock("manager"), retry=NO_RETRY) as c:
                i = 0
                while True:
                    body = f"m{i}"
                    answer = await c.call("send", to="operator", body=body)
                    acked.extend(answer["ids"])
                    bodies[answer["ids"][0]] = body
                    i += 1

        task = asyncio.create_task(burst())
        await eventually(lambda: len(acked) >= 300, 30, "300 acknowledged sends")
        daemon.kill9()
        try:
            await asyncio.wait_for(task, 10)
        except HiveError:
            pass  # the in-flight send saw the daemon die: not acknowledged, fine
        assert len(acked) >= 300
        daemon.start()
        from hyperhive.client.host import HostClient

        inbox = await HostClient(daemon.paths.host_sock).call("inbox", limit=1000)
        stored = {r["id"]: r["body"] for r in inbox["rows"]}
        missing = [i for i in acked if stored.get(i) != bodies[i]]
        assert missing == []
    finally:
        daemon.stop()


def test_second_daemon_on_same_home_is_refused(short_tmp: Path) -> None:
    import os
    import subprocess
    import sys

    first = DaemonProcess(short_tmp / "h").start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "hyperhive.cli", "serve"],
            env={**os.environ, "HIVE_HOME": str(first.paths.home)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode != 0
        assert "another hive daemon is already running" in second.stderr
        assert first.proc is not None and first.proc.poll() is None
    finally:
        first.stop()


async def test_daemon_kill9_gives_back_unacknowledged_leases_only(short_tmp: Path) -> None:
    """Leases live in memory: after a kill -9 of the daemon, what a client held without
    acknowledging is unread again; what it acknowledged (and the core recorded) is not."""
    daemon = DaemonProcess(short_tmp / "h").start()
    sock = daemon.paths.agent_sock("manager")
    try:
        async with AgentClient(sock, retry=NO_RETRY) as c:
            ids = [(await c.call("send", to="manager", body=f"b{i}"))["ids"][0] for i in range(5)]
            first = await c.recv(max=2)
            assert [m["id"] for m in first["messages"]] == ids[:2]
            assert await c.ack() == ids[:2]

            async def recorded() -> bool:
                rows = (await c.call("recent", limit=10))["rows"]
                return all(r.get("delivered_at") for r in rows if r["id"] in ids[:2])

            await eventually(recorded, 10, "the ack written")
            held = await c.recv(max=3)
            assert [m["id"] for m in held["messages"]] == ids[2:]
            daemon.kill9()  # with the client holding ids[2:] unacknowledged
        daemon.start()
        async with AgentClient(sock, retry=NO_RETRY) as c:
            again = await c.recv(max=32)
            assert [m["id"] for m in again["messages"]] == ids[2:]
            assert await c.ack() == ids[2:]
    finally:
        daemon.stop()

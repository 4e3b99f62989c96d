"""Crash safety with a real daemon process: kill -9 during a burst loses no acknowledged send;
a second daemon on the same home is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.errors import HiveError
from tests.daemon import DaemonProcess
from tests.waiting import eventually


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

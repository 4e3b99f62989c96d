"""`hive serve --dashboard HOST:PORT`: a real daemon subprocess serves the dashboard there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.daemon import DaemonProcess
from tests.support.waiting import eventually


async def test_serve_dashboard_option(short_tmp: Path) -> None:
    daemon = DaemonProcess(short_tmp / "h", "--dashboard", "127.0.0.1:0").start()
    try:
        found: list[str] = []

        def url() -> bool:
            m = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", daemon.log.read_text())
            if m:
                found.append(m.group(1))
            return bool(m)

        await eventually(url, 20, "the dashboard line in the daemon's output")
        async with httpx.AsyncClient(base_url=found[0]) as http:
            r = await http.get("/api/state")
            assert r.status_code == 200
            assert [c["name"] for c in r.json()["containers"]] == ["manager"]
    finally:
        daemon.stop()


def test_serve_refuses_a_bad_dashboard_address(short_tmp: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hyperhive.cli",
            "--home",
            str(short_tmp),
            "serve",
            "--dashboard",
            "7000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "is not HOST:PORT" in out.stderr

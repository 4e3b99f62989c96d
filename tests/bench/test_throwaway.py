"""Throwaway hives (benchmarks, the demo) must start while another hive runs on this host: they
take free ports, never the configured default dashboard port 7000."""

from __future__ import annotations

import contextlib
import errno
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperhive.bench.daemon import throwaway_daemon
from hyperhive.config import DEFAULT_DASHBOARD_PORT
from hyperhive.demo import demo_hive
from tests.support.waiting import eventually_sync


@contextlib.contextmanager
def default_port_held() -> Iterator[None]:
    """Port 7000 busy, as with another hive on the host: held here, or already held by one."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", DEFAULT_DASHBOARD_PORT))
        sock.listen(1)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
    try:
        yield
    finally:
        sock.close()


def bound_port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


async def test_the_demo_hive_takes_a_free_dashboard_port(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_DASHBOARD", raising=False)  # no test-wide override: the real default
    with default_port_held():
        async with demo_hive(short_tmp / "h", "external") as (hive, _sim):
            assert bound_port(hive.dashboard_url) != DEFAULT_DASHBOARD_PORT


def test_the_benchmark_daemon_takes_a_free_dashboard_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVE_DASHBOARD", raising=False)
    with default_port_held(), throwaway_daemon() as (paths, _pid):
        log = paths.home / "serve.log"
        found = eventually_sync(
            lambda: re.search(r"dashboard: (http://\S+)", log.read_text()), 30, "the dashboard"
        )
        assert isinstance(found, re.Match)
        assert bound_port(found.group(1)) != DEFAULT_DASHBOARD_PORT

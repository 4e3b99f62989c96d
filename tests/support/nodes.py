"""Helpers for multi-node tests: a node's hive.toml with fast heartbeats, and reads of a
running node's `nodes` and `agent_status` over its host socket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from hyperhive.client.host import HostClient
from tests.support.daemon import DaemonProcess

# fast beats so a test sees changes soon; the bound stays well above a loaded machine's stalls
CONFIG = """
[defaults]
runtime = "external"
[node]
heartbeat_seconds = 0.5
lost_after_seconds = 5.0
"""


async def nodes_live(d: DaemonProcess) -> dict[str, bool]:
    rows = (await HostClient(d.paths.host_sock).call("nodes"))["nodes"]
    return {r["name"]: r["live"] for r in rows}


async def status_of(d: DaemonProcess, agent: str) -> dict[str, Any]:
    rows = (await HostClient(d.paths.host_sock).call("agent_status"))["agent_statuses"]
    return next(r for r in rows if r["name"] == agent)


async def all_peers_up(d: DaemonProcess, names: set[str]) -> bool:
    """Every node in `names` is live and has told its peer URL (its endpoint serves)."""
    rows = (await HostClient(d.paths.host_sock).call("nodes"))["nodes"]
    up = {r["name"] for r in rows if r["live"] and r.get("peer_url")}
    return up == names


@contextmanager
def running_nodes(
    home: Path, url: str, names: tuple[str, ...], config: str = CONFIG
) -> Iterator[tuple[DaemonProcess, ...]]:
    """`hive serve` nodes on one database, each in `home/<name>`, started in order and stopped
    in reverse (also when a later one fails to start)."""
    with ExitStack() as stack:
        started = []
        for name in names:
            d = DaemonProcess(home / name, "--db", url, "--node", name, config=config).start()
            stack.callback(d.stop)
            started.append(d)
        yield tuple(started)

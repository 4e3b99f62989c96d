"""A node on "another host": node B runs in its own network namespace, joined to the host by a
veth pair. It reaches the database (through a relay on the host end: the test cluster listens
on loopback only) and node A's peer endpoint across that interface, and A reaches B's the same
way. Spawning onto B from A, mail from A woken on B, and B lost after SIGKILL all work over it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from tests.support.daemon import DaemonProcess
from tests.support.netns import TcpRelay, Veth
from tests.support.nodes import CONFIG, all_peers_up, nodes_live, status_of
from tests.support.postgres import SUPERUSER, PgCluster
from tests.support.waiting import eventually


async def test_a_node_in_its_own_network_namespace(
    short_tmp: Path, pg_url: Callable[[], str], pg_cluster: PgCluster
) -> None:
    url_a = pg_url()
    dbname = urlsplit(url_a).path.lstrip("/")
    with Veth() as veth, TcpRelay(veth.host_ip, pg_cluster.port) as relay:
        url_b = f"postgresql://{SUPERUSER}@{veth.host_ip}:{relay.port}/{dbname}"
        a = DaemonProcess(
            short_tmp / "a",
            *("--db", url_a, "--node", "node-a", "--peer-listen", f"{veth.host_ip}:0"),
            config=CONFIG,
        )
        b = DaemonProcess(
            short_tmp / "b",
            *("--db", url_b, "--node", "node-b", "--peer-listen", f"{veth.ns_ip}:0"),
            config=CONFIG,
            prefix=veth.exec_prefix,
        )
        a.start()
        try:
            before = veth.host_rx_bytes()
            b.start()
            try:
                await _run(a, b, veth)
            finally:
                b.stop()
            assert veth.host_rx_bytes() > before
        finally:
            a.stop()


async def _run(a: DaemonProcess, b: DaemonProcess, veth: Veth) -> None:
    host_a = HostClient(a.paths.host_sock)
    await eventually(
        lambda: all_peers_up(a, {"node-a", "node-b"}), what="both nodes up", timeout=60
    )
    rows = {r["name"]: r for r in (await host_a.call("nodes"))["nodes"]}
    assert rows["node-b"]["peer_url"].startswith(f"http://{veth.ns_ip}:")
    assert rows["node-a"]["peer_url"].startswith(f"http://{veth.host_ip}:")
    await host_a.call("spawn", name="alice", node="node-b")  # forwarded over the veth
    assert (await status_of(a, "alice"))["node"] == "node-b"
    async with AgentClient(b.paths.agent_sock("alice"), retry=NO_RETRY) as agent:
        parked = asyncio.create_task(agent.recv(wait_seconds=60, max=8))
        sent = await host_a.call("send", to="alice", body="over the wire")
        got = await parked
        assert [m["id"] for m in got["messages"]] == sent["ids"]
    logs = await host_a.call("logs", name="alice", source="harness", lines=3)
    assert logs["name"] == "alice"  # a lifecycle verb answered by node-b across the veth
    b.kill9()
    await eventually(lambda: _b_lost(a), timeout=60, what="node-b seen lost")
    assert (await status_of(a, "alice"))["state"] == "node_lost"


async def _b_lost(a: DaemonProcess) -> bool:
    return (await nodes_live(a)).get("node-b") is False

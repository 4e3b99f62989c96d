"""The whole hive from every node (core/noderelay.py): node B pushes its agents' status rows
through the shared PostgreSQL database; node A answers with them, and its status subscribers
(the dashboard, `subscribe_agent_status`) see each change as it happens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hyperhive.assembly import build_hive
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig, NodeCfg
from hyperhive.core.hive import Hive
from hyperhive.core.status import status_row
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually

CFG = HiveConfig(
    defaults=Defaults(runtime="external"),
    node=NodeCfg(heartbeat_seconds=0.5, lost_after_seconds=5.0),
)


async def test_status_of_an_agent_on_another_node_is_pushed(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    url = pg_url()
    async with (
        build_hive(HivePaths(short_tmp / "a"), CFG, database=url, node="node-a") as a,
        build_hive(HivePaths(short_tmp / "b"), CFG, database=url, node="node-b") as b,
    ):
        await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
        await eventually(
            lambda: a.registry.get("alice") is not None, what="a knows alice", timeout=60
        )
        since = a.hub.last_seq

        async def running_on_a() -> bool:
            row = await status_row(a, "alice")
            return row.running and row.node == "node-b"

        assert not await running_on_a()
        async with AgentClient(b.paths.agent_sock("alice"), retry=NO_RETRY) as agent:
            await agent.call("renew")  # connected: node-b's row says running
            await eventually(running_on_a, what="node-a sees alice running on node-b", timeout=60)
            relayed = [
                e
                for e in a.hub.history(since)
                if e.kind == "agent_updated" and e.data.get("relayed")
            ]
            assert relayed and relayed[-1].data["agent"] == "alice"
        await eventually(lambda: _not_running(a), what="node-a sees alice gone", timeout=60)


async def _not_running(hive: Hive) -> bool:
    return not (await status_row(hive, "alice")).running

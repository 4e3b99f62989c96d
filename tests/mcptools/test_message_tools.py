"""The message tools as the model sees them (the real MCP server over stdio): what `recv`
returned is acknowledged right after the tool returned, so it is delivered even though the
MCP server keeps its connection open for the rest of the turn."""

from __future__ import annotations

from hyperhive.client.host import HostClient
from hyperhive.core.hive import Hive
from tests.support.mcp import call, mcp_session
from tests.support.waiting import eventually


async def test_recv_tool_acknowledges_after_returning(hive: Hive) -> None:
    await hive.spawn("alice")
    [mid] = (await HostClient(hive.paths.host_sock).call("send", to="alice", body="hi"))["ids"]
    server = hive._sockets["alice"]

    async def delivered() -> bool:
        rows = await hive.broker.recent("alice", 5)
        return any(r.id == mid and r.delivered_at is not None for r in rows)

    async with mcp_session(hive, "alice") as s:
        err, text = await call(s, "recv")
        assert not err and f"#{mid} " in text and "from operator: hi" in text
        await eventually(delivered, 10, "the recv tool's batch acknowledged")
        assert server.leases_held() == 0
        err, text = await call(s, "recv")
        assert not err and text == "no new messages"

"""The manager's `search_history` tool over the real MCP server (stdio): hits as text, filters,
bad input as a tool error (never a crash), and no such tool for an agent."""

from __future__ import annotations

from hyperhive.client.host import HostClient
from hyperhive.core.hive import Hive
from tests.support.mcp import mcp_session


def text(result: object) -> str:
    return "".join(getattr(c, "text", "") for c in getattr(result, "content", []))


async def test_search_history_tool(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    await host.call("send", to="alice", body="we decided: the osprey plan wins")
    await host.call("send", to="manager", body="osprey budget approved")
    async with mcp_session(hive, "manager") as s:
        assert "search_history" in {t.name for t in (await s.list_tools()).tools}
        r = await s.call_tool("search_history", {"query": "osprey"})
        assert not r.is_error, text(r)
        out = text(r)
        assert "[message #2]" in out and "[message #1]" in out
        assert out.index("#2") < out.index("#1")  # newest first
        assert "**osprey**" in out
        r = await s.call_tool("search_history", {"query": "osprey", "agent": "alice"})
        assert "#1" in text(r) and "#2" not in text(r)
        r = await s.call_tool("search_history", {"query": "osprey", "kinds": ["turn"]})
        assert text(r) == "no match"
        r = await s.call_tool("search_history", {"query": "osprey", "since": "1h", "limit": 1})
        assert "#2" in text(r) and "#1" not in text(r)
        for bad in ({"query": "..."}, {"query": "x", "since": "later"}, {"query": "x", "limit": 0}):
            r = await s.call_tool("search_history", bad)
            assert r.is_error, bad
        r = await s.call_tool("search_history", {"query": "x", "agent": "../etc"})
        assert r.is_error and "name" in text(r)
    async with mcp_session(hive, "alice") as s:
        assert "search_history" not in {t.name for t in (await s.list_tools()).tools}

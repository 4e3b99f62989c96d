"""The real MCP tool server over stdio (official `mcp` client SDK), for one agent of a real hive."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from hyperhive.core.hive import Hive

REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def mcp_session(hive: Hive, name: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "hyperhive.mcptools", "--socket", str(hive.paths.agent_sock(name))],
        cwd=str(REPO),
    )
    err = await asyncio.to_thread(open, hive.paths.home / f"mcp-{name}.log", "w")
    with err:  # the server's stderr, for debugging a failure
        async with stdio_client(params, errlog=err) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, tool: str, **args: object) -> tuple[bool, str]:
    """(is_error, text) of one tool call."""
    result = await session.call_tool(tool, args)
    text = "\n".join(getattr(c, "text", "") for c in result.content)
    return bool(result.is_error), text

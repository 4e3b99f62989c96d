"""Build and run the hyperhive MCP server for one agent (flavor from the core's `whoami`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from mcp.server.mcpserver import MCPServer

from hyperhive.agentconfig import AgentConfig
from hyperhive.client.agent import AgentClient
from hyperhive.mcptools import followups, lifecycle, manager, messages, search
from hyperhive.mcptools.context import ToolContext

logger = logging.getLogger(__name__)

# Each module's `register(server, ctx)` adds its tools (checking `ctx.is_manager` for
# manager-only ones). Later features append their module here.
TOOL_MODULES: list[Callable[[MCPServer, ToolContext], None]] = [
    messages.register,
    followups.register,
    manager.register,
    lifecycle.register,
    search.register,
]


async def build(socket: str) -> tuple[MCPServer, ToolContext]:
    client = AgentClient(socket)
    who = await client.request({"cmd": "whoami"})
    cfg = await client.request({"cmd": "config"})
    ctx = ToolContext(
        client=client,
        name=who["name"],
        kind=who["kind"],
        manager=who["manager"],
        config=AgentConfig.model_validate(cfg["config"]),
    )
    server: MCPServer = MCPServer(
        name="hyperhive",
        instructions=f"hyperhive tools for {ctx.name} ({ctx.kind}).",
    )
    for register in TOOL_MODULES:
        register(server, ctx)
    return server, ctx


async def amain(socket: str, trace_file: str | None = None) -> None:
    server, ctx = await build(socket)
    ctx.trace_file = trace_file
    try:
        await server.run_stdio_async()
    finally:
        await ctx.flush_acks()
        await ctx.client.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hyperhive.mcptools")
    parser.add_argument("--socket", default="/run/hive/hive.sock")
    # where the harness keeps the running turn's traceparent (only when tracing is on)
    parser.add_argument("--trace-file", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(amain(args.socket, args.trace_file))

"""Manager-only day-to-day care: start, restart, kill, update (idempotent rebuild) of an agent.
No approval needed; the manager can never target itself (the core refuses)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from hyperhive.mcptools.context import ToolContext

ACTIONS = {
    "start": (
        "Start agent `name` (no-op if it runs). It gets a kick event telling it it was started.",
        "started",
    ),
    "restart": (
        "Restart agent `name` with the same config; its conversation continues.",
        "restarted",
    ),
    "kill": (
        "Kill agent `name` at once (its running turn is lost). You get a `killed` event.",
        "killed",
    ),
    "update": (
        "Rebuild agent `name`'s sandbox from its applied config (idempotent): use after an "
        "approved config change, or when it needs_update.",
        "rebuilt",
    ),
}


def register(server: MCPServer, ctx: ToolContext) -> None:
    if not ctx.is_manager:
        return
    for verb, (description, done) in ACTIONS.items():
        _add(server, ctx, verb, description, done)


def _add(server: MCPServer, ctx: ToolContext, verb: str, description: str, done: str) -> None:
    async def action(name: str) -> str:
        answer = await ctx.call(verb, name=name)
        return ctx.text(f"{name} {done}", answer)

    action.__name__ = verb
    server.tool(name=verb, description=description, structured_output=False)(action)

"""The manager's `search_history` tool: full-text search over the hive's messages, operator
questions and answers, approvals and every agent's turn history (the manager verb
`search_history`), so the manager can look up what was decided. Results come back as plain
text, one hit per block, matched words in **bold**."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from hyperhive.mcptools.context import ToolContext
from hyperhive.wire.search import parse_since


def format_hits(hits: list[dict[str, Any]]) -> str:
    if not hits:
        return "no match"
    blocks = []
    for h in hits:
        snippet = "".join(f"**{t}**" if on else str(t) for t, on in h["snippet"])
        head = f"[{h['kind']} #{h['ref']}] {h['ts'][:19]} {h['agent']}: {h['title']}"
        blocks.append(f"{head}\n{snippet.strip()}")
    return "\n\n".join(blocks)


def register(server: MCPServer, ctx: ToolContext) -> None:
    if not ctx.is_manager:
        return

    @server.tool(
        name="search_history",
        description=(
            "Full-text search of the hive's history: messages (body, sender, recipient), "
            "operator questions and their answers, approvals, and every agent's turns "
            '(prompts, replies, tool calls and results). Words are ANDed; "a phrase" in '
            "quotes matches in order; word* matches a prefix. Optional: agent (rows that "
            "agent took part in), kinds (any of message, turn, question, approval), since "
            "(e.g. 30m, 2h, 7d), limit (1..200, default 20). Newest first."
        ),
        structured_output=False,
    )
    async def search_history(
        query: str,
        agent: str | None = None,
        kinds: list[str] | None = None,
        since: str | None = None,
        limit: int = 20,
    ) -> str:
        seconds = parse_since(since) if since else None
        answer = await ctx.call(
            "search_history",
            query=query,
            agent=agent,
            kinds=kinds or None,
            since_seconds=seconds,
            limit=limit,
        )
        return ctx.text(format_hits(answer.body["hits"]), answer)

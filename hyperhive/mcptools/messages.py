"""Message tools: send, recv, recent."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from hyperhive import tracing
from hyperhive.mcptools.context import ToolContext
from hyperhive.sendpolicy import may_send, refusal


def format_rows(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        body = r["body"]
        if r.get("kind") == "event":
            try:
                ev = json.loads(body)
                body = f"[event {ev.get('event', '?')}] {json.dumps(ev, ensure_ascii=False)}"
            except ValueError:
                pass
        elif r.get("kind") == "reminder":
            body = f"[reminder] {body}"
        out.append(f"#{r['id']} {r['sent_at'][:19]}Z from {r['from']}: {body}")
    return "\n".join(out)


def register(server: MCPServer, ctx: ToolContext) -> None:
    @server.tool(
        name="send",
        description=(
            "Send a message. `to` is an agent name, 'operator' (the human's inbox on the "
            "dashboard) or '*' (every agent but you). Returns at once; replies arrive in your "
            "inbox (see recv)."
        ),
        structured_output=False,
    )
    async def send(to: str, body: str) -> str:
        allowed = ctx.config.allowed_recipients
        if not may_send(to, allowed, ctx.manager):
            raise ToolError(refusal(ctx.name, to, allowed, ctx.manager))
        answer = await ctx.call(
            "send", to=to, body=body, trace_parent=tracing.read_traceparent(ctx.trace_file)
        )
        ids = answer.body["ids"]
        who = ", ".join(answer.body["recipients"]) or "nobody"
        return ctx.text(f"sent (message id {', '.join(map(str, ids))}) to {who}", answer)

    @server.tool(
        name="recv",
        description=(
            "Take unread messages from your inbox. wait_seconds omitted or 0: look and return "
            "at once. wait_seconds > 0 (max 180): park until a message arrives or the time is "
            "up — this is how you wait; never sleep in Bash. max: at most this many (1-32)."
        ),
        structured_output=False,
    )
    async def recv(wait_seconds: float = 0, max: int = 8) -> str:
        answer = await ctx.call("recv", wait_seconds=wait_seconds, max=max)
        rows = answer.body["messages"]
        if not rows:
            return ctx.text("no new messages", answer)
        more = answer.body.get("remaining", 0)
        tail = f"\n({more} more unread)" if more else ""
        ctx.ack_after_return([r["id"] for r in rows])
        return ctx.text(format_rows(rows) + tail, answer)

    @server.tool(
        name="recent",
        description="Your latest inbox rows (read or not), newest first; for context, not to consume.",
        structured_output=False,
    )
    async def recent(limit: int = 20) -> str:
        answer = await ctx.call("recent", limit=limit)
        rows = answer.body["rows"]
        return ctx.text(format_rows(rows) if rows else "inbox is empty", answer)

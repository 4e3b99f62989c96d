"""Tools for what the agent waits on: ask_operator, remind, get_open_threads, cancel_thread,
set_status. Each is one request on the agent's socket; results are plain text."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from hyperhive.mcptools.context import ToolContext


def _delta(seconds: float) -> str:
    s = max(round(seconds), 0)
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days"


def register(server: MCPServer, ctx: ToolContext) -> None:
    @server.tool(
        name="ask_operator",
        description=(
            "Ask the human operator a question. Returns the question id at once: do NOT wait "
            "for the answer in this turn — carry on (or end the turn). The answer arrives "
            "later in your inbox as an event operator_answered {id, question, answer}. "
            "options: choices shown to the operator (they can always add free text); "
            "multi: true lets them pick several (answer = the picks and text joined with "
            "', '); ttl_seconds: after this long the answer is '[expired]'. A withdrawn "
            "question answers '[cancelled]'."
        ),
        structured_output=False,
    )
    async def ask_operator(
        question: str,
        options: list[str] | None = None,
        multi: bool = False,
        ttl_seconds: float | None = None,
    ) -> str:
        answer = await ctx.call(
            "ask_operator",
            question=question,
            options=options or [],
            multi=multi,
            ttl_seconds=ttl_seconds,
        )
        qid = answer.body["id"]
        expires = f" It expires at {answer.body['deadline_at'][:19]}Z." if ttl_seconds else ""
        return ctx.text(
            f"question #{qid} queued for the operator (thread q:{qid}).{expires} The answer "
            f"will arrive in your inbox as operator_answered with id {qid}.",
            answer,
        )

    @server.tool(
        name="remind",
        description=(
            "Schedule a message to yourself: it lands in your inbox later (from system, kind "
            "reminder) and wakes you like any message. Give exactly one of delay_seconds or "
            "at_unix_timestamp (seconds since the epoch, UTC). Messages over 4096 characters: "
            "write the text to a file under /state and pass file_path (absolute, under "
            "/state); the reminder then points to the file."
        ),
        structured_output=False,
    )
    async def remind(
        message: str,
        delay_seconds: float | None = None,
        at_unix_timestamp: float | None = None,
        file_path: str | None = None,
    ) -> str:
        answer = await ctx.call(
            "remind",
            message=message,
            delay_seconds=delay_seconds,
            at_unix_timestamp=at_unix_timestamp,
            file_path=file_path,
        )
        due = answer.body["due_at"][:19] + "Z"
        when = f" (in {_delta(delay_seconds)})" if delay_seconds is not None else ""
        return ctx.text(f"reminder #{answer.body['id']} set for {due}{when}", answer)

    @server.tool(
        name="get_open_threads",
        description=(
            "List what you opened and are still waiting on: unanswered operator questions "
            "(q:N) and pending requests (a:N), oldest first, with their ids for cancel_thread."
        ),
        structured_output=False,
    )
    async def get_open_threads() -> str:
        answer = await ctx.call("get_open_threads")
        threads = answer.body["threads"]
        if not threads:
            return ctx.text("no open threads", answer)
        lines = []
        for t in threads:
            deadline = f", expires {t['deadline_at'][:19]}Z" if t.get("deadline_at") else ""
            lines.append(f"{t['id']} (opened {t['opened_at'][:19]}Z{deadline}): {t['summary']}")
        return ctx.text("\n".join(lines), answer)

    @server.tool(
        name="cancel_thread",
        description=(
            "Withdraw one of your open threads by id (from get_open_threads, e.g. 'q:12'). "
            "A cancelled question answers '[cancelled]' in your inbox."
        ),
        structured_output=False,
    )
    async def cancel_thread(id: str) -> str:
        answer = await ctx.call("cancel_thread", id=id)
        note = answer.body.get("note")
        if answer.body["cancelled"]:
            return ctx.text(note or f"cancelled {id}", answer)
        return ctx.text(note or f"{id} was already resolved; nothing to cancel", answer)

    @server.tool(
        name="set_status",
        description=(
            "Set your status: one short line (at most 200 characters) saying what you are "
            "doing, shown to the operator on the dashboard. An empty text clears it."
        ),
        structured_output=False,
    )
    async def set_status(text: str) -> str:
        answer = await ctx.call("set_status", text=text)
        shown = answer.body.get("status_text")
        return ctx.text(f"status set: {shown}" if shown else "status cleared", answer)

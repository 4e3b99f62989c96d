"""Manager-only tools that go through the operator: request_spawn, request_init_config,
request_apply_commit. Each queues an approval and returns its id at once; the outcome arrives
later in the manager's inbox as `system` events."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from hyperhive.mcptools.context import ToolContext

_LATER = (
    "Do not wait for it in this turn. When the operator decides, approval_resolved "
    "{{id: {id}, status}} arrives in your inbox{more}. Until then it is your open thread a:{id} "
    "(cancel_thread withdraws it)."
)


def register(server: MCPServer, ctx: ToolContext) -> None:
    if not ctx.is_manager:
        return

    @server.tool(
        name="request_spawn",
        description=(
            "Ask the operator to create a new agent `name` (a-z, 0-9, '-'). Returns the "
            "approval id at once. On approval the core creates its config repo from the "
            "template if there is none (an existing one, e.g. from request_init_config or a "
            "destroyed agent's kept repo, is reused: its main head is what gets applied when "
            "nothing was applied before) and starts it; you then get spawned {agent, ok, note}. "
            "description: tell the operator what the agent is for. node: on a hive spread "
            "over several hosts, the node to run it on (default: where it is requested)."
        ),
        structured_output=False,
    )
    async def request_spawn(name: str, description: str = "", node: str = "") -> str:
        extra = {"node": node} if node else {}
        answer = await ctx.call("request_spawn", name=name, description=description, **extra)
        aid = answer.body["id"]
        return ctx.text(
            f"spawn of {name} queued for the operator as approval #{aid}. "
            + _LATER.format(id=aid, more=", then spawned {agent, ok, note}"),
            answer,
        )

    @server.tool(
        name="request_init_config",
        description=(
            "Ask the operator to create agent `name`'s config repo from the template without "
            "starting the agent, so you can prepare its config first. On approval you get "
            "config_ready {agent}: edit /agents/<name>/agent.toml (and role.md), commit with "
            "git, then request_apply_commit and request_spawn."
        ),
        structured_output=False,
    )
    async def request_init_config(name: str, description: str = "") -> str:
        answer = await ctx.call("request_init_config", name=name, description=description)
        aid = answer.body["id"]
        return ctx.text(
            f"config repo for {name} queued for the operator as approval #{aid}. "
            + _LATER.format(id=aid, more=", then config_ready {agent}"),
            answer,
        )

    @server.tool(
        name="request_apply_commit",
        description=(
            "Ask the operator to apply commit `sha` of agent `agent`'s config repo "
            "(/agents/<agent>, commit there first; `git rev-parse HEAD` gives the sha). The "
            "commit is pinned now: later commits do not change what gets applied. On "
            "approval its agent.toml is validated, applied, and a running agent is rebuilt; "
            "you get rebuilt {agent, ok, note}. A broken agent.toml fails the approval with "
            "the reason and leaves the running config as it was."
        ),
        structured_output=False,
    )
    async def request_apply_commit(agent: str, sha: str, description: str = "") -> str:
        answer = await ctx.call(
            "request_apply_commit", agent=agent, sha=sha, description=description
        )
        aid = answer.body["id"]
        pinned = answer.body["approval"].get("fetched_sha", sha)[:12]
        return ctx.text(
            f"commit {pinned} of {agent} pinned as proposal/{aid} and queued for the operator "
            f"as approval #{aid}. "
            + _LATER.format(id=aid, more=" (and rebuilt {agent, ok, note} if it runs)"),
            answer,
        )
